/**
 * The WDS index, the Gateway side's `WaypointBindings` and the waypoint index wired as the
 * composition root wires them (`app.ts`), for tests and benchmarks: the waypoint index takes its
 * bindings from WDS, and each object goes to the waypoint index first, then to WDS.
 */
import { WaypointBindingIndex } from '../gateway/waypoint-bindings.ts';
import type { KubeObject } from '../kube/objects.ts';
import { bindingSourceFrom } from '../waypoint/binding.ts';
import { WaypointIndex, isWaypointKind, type WaypointChange } from '../waypoint/waypoint-index.ts';
import type { WaypointIndexOptions } from '../waypoint/waypoint-index.ts';
import { compileAuthorizationPolicyObject } from '../wds/policies.ts';
import { ObjectKinds, WdsIndex, type ObjectKind } from '../wds/wds-index.ts';

export interface WaypointIndexes {
  readonly wds: WdsIndex;
  readonly bindings: WaypointBindingIndex;
  readonly waypoints: WaypointIndex;
  /** Feeds one object to both indexes; returns every waypoint change it caused, merged. */
  readonly upsert: (kind: string, obj: KubeObject) => WaypointChange;
  readonly delete: (kind: string, obj: KubeObject) => WaypointChange;
}

const WDS_KINDS: ReadonlySet<string> = new Set(Object.values(ObjectKinds));

export function waypointIndexes(
  options: Partial<Omit<WaypointIndexOptions, 'bindings'>> = {},
): WaypointIndexes {
  const bindings = new WaypointBindingIndex();
  const wds = new WdsIndex({
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    domain: options.domain ?? 'cluster.local',
    rootNamespace: options.rootNamespace ?? 'istio-system',
    compilePolicy: compileAuthorizationPolicyObject,
    onWaypointBinding: (target, binding) => {
      bindings.record(target.kind, target.key, binding);
    },
  });
  const waypoints = new WaypointIndex({
    domain: 'cluster.local',
    ...options,
    bindings: bindingSourceFrom(bindings),
  });
  bindings.onChange(changed => {
    waypoints.bindingsChanged(changed);
  });
  const feed = (kind: string, obj: KubeObject, deleted: boolean): WaypointChange => {
    const waypointSet = new Set<string>();
    const changes = new Map<string, Set<string>>();
    const off = waypoints.onChange(change => {
      for (const w of change.waypoints) waypointSet.add(w);
      for (const [typeUrl, names] of change.changes) {
        let all = changes.get(typeUrl);
        if (all === undefined) changes.set(typeUrl, (all = new Set()));
        for (const n of names) all.add(n);
      }
    });
    try {
      if (isWaypointKind(kind)) {
        if (deleted) waypoints.delete(kind, obj);
        else waypoints.upsert(kind, obj);
      }
      if (WDS_KINDS.has(kind)) {
        if (deleted) wds.delete(kind as ObjectKind, obj);
        else wds.upsert(kind as ObjectKind, obj);
      }
    } finally {
      off();
    }
    return { waypoints: waypointSet, changes };
  };
  return {
    wds,
    bindings,
    waypoints,
    upsert: (kind, obj) => feed(kind, obj, false),
    delete: (kind, obj) => feed(kind, obj, true),
  };
}
