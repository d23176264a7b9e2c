/**
 * `WaypointBindings`: which Services, ServiceEntries and pods each waypoint serves, for the waypoint's own xDS
 * (its inbound routes and clusters are built from the Services bound to it). Fed by the WDS
 * index's `onWaypointBinding` hook, so it always agrees with what ztunnels are told.
 */
import type { BindingTargetKind, WaypointBinding } from './binding.ts';

/** The read side the waypoint xDS generator consumes. Keys are `namespace/name`. */
export interface WaypointBindings {
  /** Services bound to the waypoint (`istio.io/WaypointBound=True`). */
  services(waypoint: string): ReadonlySet<string>;
  /** Pods whose Workload names the waypoint. */
  workloads(waypoint: string): ReadonlySet<string>;
  /** ServiceEntries bound to the waypoint (`istio.io/WaypointBound=True`). */
  serviceEntries(waypoint: string): ReadonlySet<string>;
  /** The waypoint a Service, pod or ServiceEntry is bound to, if any. */
  waypointOf(kind: BindingTargetKind, key: string): string | undefined;
  /** Every waypoint that serves at least one object. */
  waypoints(): readonly string[];
  /** Called after each change with the waypoints whose set changed; returns an unsubscribe. */
  onChange(listener: (waypoints: ReadonlySet<string>) => void): () => void;
}

const EMPTY: ReadonlySet<string> = new Set();

export class WaypointBindingIndex implements WaypointBindings {
  readonly #byWaypoint: Record<BindingTargetKind, Map<string, Set<string>>> = {
    service: new Map(),
    workload: new Map(),
    serviceentry: new Map(),
  };
  readonly #byTarget: Record<BindingTargetKind, Map<string, string>> = {
    service: new Map(),
    workload: new Map(),
    serviceentry: new Map(),
  };
  readonly #listeners = new Set<(waypoints: ReadonlySet<string>) => void>();

  /** Records one object's binding (the WDS index's hook). */
  record(kind: BindingTargetKind, key: string, binding: WaypointBinding): void {
    const next =
      binding.kind === 'bound' ? `${binding.waypoint.namespace}/${binding.waypoint.name}` : undefined;
    const prev = this.#byTarget[kind].get(key);
    if (prev === next) return;
    const changed = new Set<string>();
    if (prev !== undefined) {
      const set = this.#byWaypoint[kind].get(prev);
      set?.delete(key);
      if (set?.size === 0) this.#byWaypoint[kind].delete(prev);
      changed.add(prev);
    }
    if (next === undefined) this.#byTarget[kind].delete(key);
    else {
      this.#byTarget[kind].set(key, next);
      let set = this.#byWaypoint[kind].get(next);
      if (set === undefined) this.#byWaypoint[kind].set(next, (set = new Set()));
      set.add(key);
      changed.add(next);
    }
    for (const l of [...this.#listeners]) l(changed);
  }

  services(waypoint: string): ReadonlySet<string> {
    return this.#byWaypoint.service.get(waypoint) ?? EMPTY;
  }

  workloads(waypoint: string): ReadonlySet<string> {
    return this.#byWaypoint.workload.get(waypoint) ?? EMPTY;
  }

  serviceEntries(waypoint: string): ReadonlySet<string> {
    return this.#byWaypoint.serviceentry.get(waypoint) ?? EMPTY;
  }

  waypointOf(kind: BindingTargetKind, key: string): string | undefined {
    return this.#byTarget[kind].get(key);
  }

  waypoints(): readonly string[] {
    return [
      ...new Set([
        ...this.#byWaypoint.service.keys(),
        ...this.#byWaypoint.workload.keys(),
        ...this.#byWaypoint.serviceentry.keys(),
      ]),
    ].sort();
  }

  onChange(listener: (waypoints: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
