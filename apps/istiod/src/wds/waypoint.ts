/**
 * Waypoint binding (`istio.io/use-waypoint`) to the `GatewayAddress` WDS carries.
 *
 * A waypoint is a Gateway of class `istio-waypoint` that has `status.addresses`; the object (or
 * else its namespace) names it with `istio.io/use-waypoint`, optionally in another namespace via
 * `istio.io/use-waypoint-namespace`. `none` opts out. The Gateway's `istio.io/waypoint-for` label
 * must accept the binding kind, and its HBONE listener must allow the object's namespace.
 */
import type { Gateway, KubeObject } from '../kube/objects.ts';
import { selectorMatches } from '../kube/objects.ts';
import { ipToBytes } from './ip.ts';
import { GATEWAY_MANAGED_BY_MESH, GatewayClassName, Label, Port, WaypointFor } from '@ambient-mesh/mesh-api';
import type { workload } from '@ambient-mesh/xds-types';

export const WAYPOINT_CLASS = GatewayClassName.waypoint;
export const USE_WAYPOINT_LABEL = Label.useWaypoint;
export const USE_WAYPOINT_NAMESPACE_LABEL = Label.useWaypointNamespace;
export const WAYPOINT_FOR_LABEL = Label.waypointFor;
export const MANAGED_LABEL = Label.gatewayManaged;
/** Gateways istiod's own controllers deploy (waypoints, east-west gateways) never bind to a waypoint. */
const SELF_MANAGED = new Set<string>([GATEWAY_MANAGED_BY_MESH, 'istio.io-eastwest-controller']);
const DEFAULT_HBONE_PORT = Port.hbone;

export type WaypointBindingKind = typeof WaypointFor.service | typeof WaypointFor.workload;

/** `namespace/name` of the waypoint the object asks for, or undefined for none. */
export interface WaypointRef {
  readonly namespace: string;
  readonly name: string;
}

/** Which Gateway the object (else its namespace) points at via labels; `none` and self-managed opt out. */
export function waypointRefFor(
  obj: KubeObject,
  namespaceObj: KubeObject | undefined,
): WaypointRef | undefined {
  const labels = obj.metadata?.labels ?? {};
  const managed = labels[MANAGED_LABEL];
  if (managed !== undefined && SELF_MANAGED.has(managed)) return undefined;
  const ns = obj.metadata?.namespace ?? '';
  const own = labels[USE_WAYPOINT_LABEL];
  const source = own !== undefined ? labels : (namespaceObj?.metadata?.labels ?? {});
  const name = source[USE_WAYPOINT_LABEL];
  if (name === undefined || name === '' || name === WaypointFor.none) return undefined;
  const wpNs = source[USE_WAYPOINT_NAMESPACE_LABEL];
  return { namespace: wpNs === undefined || wpNs === '' ? ns : wpNs, name };
}

export interface WaypointLookup {
  gateway(namespace: string, name: string): Gateway | undefined;
  namespace(name: string): KubeObject | undefined;
}

/** The WDS waypoint for an object, or undefined when it has none or the Gateway cannot serve it yet. */
export function resolveWaypoint(
  obj: KubeObject,
  kind: WaypointBindingKind,
  lookup: WaypointLookup,
): workload.GatewayAddressInit | undefined {
  const objNs = obj.metadata?.namespace ?? '';
  const ref = waypointRefFor(obj, lookup.namespace(objNs));
  if (ref === undefined) return undefined;
  const gw = lookup.gateway(ref.namespace, ref.name);
  if (gw?.spec.gatewayClassName !== WAYPOINT_CLASS) return undefined;
  const waypointFor = gw.metadata?.labels?.[WAYPOINT_FOR_LABEL] ?? WaypointFor.service;
  if (waypointFor !== WaypointFor.all && waypointFor !== kind) return undefined;
  const listener = gw.spec.listeners.find(l => l.protocol === 'HBONE');
  if (!namespaceAllowed(listener?.allowedRoutes?.namespaces, ref.namespace, objNs, lookup)) return undefined;
  const hboneMtlsPort = listener?.port ?? DEFAULT_HBONE_PORT;
  const addresses = gw.status?.addresses ?? [];
  const host = addresses.find(a => a.type === 'Hostname');
  if (host !== undefined)
    return { hostname: { namespace: ref.namespace, hostname: host.value }, hboneMtlsPort };
  for (const a of addresses) {
    const bytes = ipToBytes(a.value);
    if (bytes !== undefined) return { address: { network: '', address: bytes }, hboneMtlsPort };
  }
  return undefined;
}

function namespaceAllowed(
  rule: { readonly from?: string; readonly selector?: Parameters<typeof selectorMatches>[0] } | undefined,
  gatewayNs: string,
  objNs: string,
  lookup: WaypointLookup,
): boolean {
  const from = rule?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Same') return gatewayNs === objNs;
  if (from === 'Selector') {
    const labels = lookup.namespace(objNs)?.metadata?.labels ?? {};
    return selectorMatches(rule?.selector ?? {}, labels);
  }
  return false;
}
