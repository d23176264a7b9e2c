/**
 * The waypoint's configuration store, with a single writer.
 *
 * `createWaypointState()` returns a reader and a mutator. Only the xDS handlers hold the
 * mutator. Every apply builds a new immutable `WaypointConfig` snapshot (copy on write), so a
 * request that took a snapshot keeps a consistent view while new requests see the change:
 * nothing open is dropped by an update. Resources are stored already validated.
 */
import type {
  ClusterConfig,
  EndpointSet,
  ListenerConfig,
  RouteTable,
  WaypointConfig,
} from '../config/types.ts';

export interface WaypointStateReader {
  /** The current snapshot; never mutated after it is returned. */
  snapshot(): WaypointConfig;
  /** Called after every change with the new snapshot. Returns an unsubscribe function. */
  onChange(listener: (config: WaypointConfig) => void): () => void;
}

export interface WaypointStateMutator {
  applyListeners(accepted: readonly ListenerConfig[], removed: readonly string[]): void;
  applyRoutes(accepted: readonly RouteTable[], removed: readonly string[]): void;
  applyClusters(accepted: readonly ClusterConfig[], removed: readonly string[]): void;
  applyEndpoints(accepted: readonly EndpointSet[], removed: readonly string[]): void;
}

const EMPTY: WaypointConfig = Object.freeze({
  listeners: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
});

function applied<T extends { readonly name: string }>(
  current: ReadonlyMap<string, T>,
  accepted: readonly T[],
  removed: readonly string[],
): ReadonlyMap<string, T> {
  if (accepted.length === 0 && !removed.some(n => current.has(n))) return current;
  const next = new Map(current);
  for (const name of removed) next.delete(name);
  for (const value of accepted) next.set(value.name, value);
  return next;
}

export function createWaypointState(): { state: WaypointStateReader; mutator: WaypointStateMutator } {
  let current = EMPTY;
  const listeners = new Set<(config: WaypointConfig) => void>();
  const commit = (next: WaypointConfig): void => {
    if (next === current) return;
    current = Object.freeze(next);
    for (const l of listeners) l(current);
  };
  const state: WaypointStateReader = {
    snapshot: () => current,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const mutator: WaypointStateMutator = {
    applyListeners(accepted, removed) {
      const next = applied(current.listeners, accepted, removed);
      if (next !== current.listeners) commit({ ...current, listeners: next });
    },
    applyRoutes(accepted, removed) {
      const next = applied(current.routes, accepted, removed);
      if (next !== current.routes) commit({ ...current, routes: next });
    },
    applyClusters(accepted, removed) {
      const next = applied(current.clusters, accepted, removed);
      if (next !== current.clusters) commit({ ...current, clusters: next });
    },
    applyEndpoints(accepted, removed) {
      const next = applied(current.endpoints, accepted, removed);
      if (next !== current.endpoints) commit({ ...current, endpoints: next });
    },
  };
  return { state, mutator };
}
