export { KubeClient, MergePatch, StrategicMergePatch, JsonPatch, ApplyPatch } from './client.ts';
export type { Query, RequestOptions, ApplyOptions, DeleteOptions, WatchOptions } from './client.ts';
export { loadKubeConfig, loadKubeContext } from './kubeconfig.ts';
export type { LoadKubeConfigOptions, KubeContext } from './kubeconfig.ts';
export type { KubeConfigHandle, KubeCluster } from './kube-config.ts';
export { Informer, clientSource } from './informer.ts';
export type { InformerOptions, InformerHandlers, ListWatchSource } from './informer.ts';
export type { ReadonlyCache } from './cache.ts';
export { Backoff } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { systemTimers, sleep } from './timers.ts';
export type { Timers } from './timers.ts';
export { mergeConditions, ownedConditionsEqual, patchStatusConditions } from './conditions.ts';
export type { Condition, MergeConditionsOptions, PatchStatusConditionsOptions } from './conditions.ts';
export { ResourceResolver, knownResourceType, resourcePath, objectKey } from './resources.ts';
export type { KubeObject, KubeList, ResourceType, PathParts } from './resources.ts';
export { parseWatchLines } from './watch-stream.ts';
export type { WatchEvent, WatchEventType } from './watch-stream.ts';
export {
  KubeError,
  KubeErrorCode,
  KubeApiError,
  KubeUnreachableError,
  httpStatusOf,
  isNotFound,
  isConflict,
  isAlreadyExists,
  isForbidden,
  isGone,
  isInvalid,
  isTransient,
} from './errors.ts';
export type { KubeStatus } from './errors.ts';
export { PortForwarder, PORT_FORWARD_TIMEOUT_MS } from './port-forward.ts';
export type {
  PodRef,
  PodHttpAnswer,
  PodHttpRequestOptions,
  PortForwarderOptions,
  LocalAddress,
  PortForwarding,
} from './port-forward.ts';
export { LeaderElector, alwaysLeader, leasePath, microTime } from './leader-election.ts';
export type {
  Leadership,
  Lease,
  LeaseSpec,
  LeaseClient,
  LeaderElectorOptions,
  LeaderElectorLogger,
} from './leader-election.ts';
