/**
 * Waypoint binding (`istio.io/use-waypoint`) to the `GatewayAddress` WDS carries. The rules live
 * in `gateway/binding.ts` (`bindWaypoint`, which also answers why a binding failed); these are
 * the narrow forms the WDS index and embedders use.
 */
import type { workload } from '@ambient-mesh/xds-types';
import {
  bindWaypoint,
  requestedWaypoint,
  type BindingKind,
  type BindingLookup,
  type WaypointRef,
} from '../gateway/binding.ts';
import type { KubeObject } from '../kube/objects.ts';

export type WaypointBindingKind = BindingKind;
export type { WaypointRef };
export type WaypointLookup = BindingLookup;

/** Which Gateway the object (else its namespace) points at via labels; `none` and self-managed opt out. */
export function waypointRefFor(
  obj: KubeObject,
  namespaceObj: KubeObject | undefined,
): WaypointRef | undefined {
  return requestedWaypoint(obj, namespaceObj);
}

/** The WDS waypoint for an object, or undefined when it has none or the Gateway cannot serve it yet. */
export function resolveWaypoint(
  obj: KubeObject,
  kind: WaypointBindingKind,
  lookup: WaypointLookup,
): workload.GatewayAddressInit | undefined {
  const b = bindWaypoint(obj, kind, lookup);
  return b.kind === 'bound' ? b.address : undefined;
}
