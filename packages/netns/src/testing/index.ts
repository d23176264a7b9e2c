// Test helpers for packages whose namespaced tests need real network namespaces (root only):
// a pod/peer namespace pair joined by a veth, a lone namespace, and a bounded wait for an event.
// Not for production use.
export { createNetns, createPodNetns, ip, uniqueName } from './pod-netns.ts';
export type { PodNetns } from './pod-netns.ts';
export { nextEvent } from './wait-for.ts';
