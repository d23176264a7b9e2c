/**
 * Waypoint binding, as upstream decides it (Istio 1.27 `serviceregistry/ambient/waypoints.go`):
 * which waypoint serves a Service or a pod, or why none can.
 *
 * - The object's own `istio.io/use-waypoint` wins over its namespace's; `none` on the object opts
 *   it out even when the namespace names a waypoint. A pod's label governs traffic addressed to
 *   the pod (its Workload's waypoint), a Service's label traffic addressed to the Service.
 * - `istio.io/use-waypoint-namespace`, read from the same object as the name, points at a
 *   waypoint in another namespace; the waypoint's HBONE listener (`allowedRoutes.namespaces`)
 *   must admit the object's namespace.
 * - The waypoint's `istio.io/waypoint-for` (on the Gateway, else its GatewayClass; default
 *   `service`) must accept the kind: `service`, `workload`, `all`; `none` accepts neither.
 * - A waypoint is usable once its Gateway has status addresses (our deployment controller
 *   writes them when its Service is up); the WDS address prefers the hostname.
 * - Objects istiod's controllers deploy (waypoints, east-west gateways) never use a waypoint.
 *
 * The result is a tagged value; errors carry upstream's `istio.io/WaypointBound` reasons.
 */
import { GATEWAY_MANAGED_BY_MESH, GatewayClassName, Label, Port, WaypointFor } from '@ambient-mesh/mesh-api';
import type { workload } from '@ambient-mesh/xds-types';
import type { Gateway, KubeObject, LabelSelector, Service } from '../kube/objects.ts';
import { selectorMatches } from '../kube/objects.ts';
import { ipToBytes } from '../wds/ip.ts';

export type BindingKind = typeof WaypointFor.service | typeof WaypointFor.workload;
/** What a binding is computed for: a Service, a pod, or a ServiceEntry (`serviceentry`, bound as a Service). */
export type BindingTargetKind = BindingKind | 'serviceentry';

export interface WaypointRef {
  readonly namespace: string;
  readonly name: string;
}

export const WaypointBindingReason = {
  accepted: 'WaypointAccepted',
  notReady: 'WaypointIsNotReady',
  attachmentDenied: 'AttachmentDenied',
  unsupportedTrafficType: 'UnsupportedTrafficType',
} as const;
export type WaypointErrorReason = Exclude<
  (typeof WaypointBindingReason)[keyof typeof WaypointBindingReason],
  'WaypointAccepted'
>;

export type WaypointBinding =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'bound';
      readonly waypoint: WaypointRef;
      readonly address: workload.GatewayAddressInit;
    }
  | {
      readonly kind: 'error';
      readonly waypoint: WaypointRef;
      readonly reason: WaypointErrorReason;
      readonly message: string;
    };

export const NO_WAYPOINT: WaypointBinding = { kind: 'none' };

export interface BindingLookup {
  gateway(namespace: string, name: string): Gateway | undefined;
  namespace(name: string): KubeObject | undefined;
  /** The waypoint's Service, for its HBONE port; without it the port is 15008. */
  service?(namespace: string, name: string): Service | undefined;
  /** A GatewayClass's labels (its `istio.io/waypoint-for` default). */
  gatewayClassLabels?(name: string): Readonly<Record<string, string>> | undefined;
}

/** Gateways istiod's own controllers deploy never bind to a waypoint. */
const SELF_MANAGED = new Set<string>([GATEWAY_MANAGED_BY_MESH, 'istio.io-eastwest-controller']);
const WAYPOINT_CLASSES = new Set<string>([GatewayClassName.waypoint]);

/** The waypoint named by labels, or `none` (explicit opt-out), or undefined (no label). */
function useWaypoint(
  labels: Readonly<Record<string, string>>,
  defaultNamespace: string,
): WaypointRef | 'none' | undefined {
  const name = labels[Label.useWaypoint];
  if (name === undefined) return undefined;
  if (name === WaypointFor.none || name === '') return 'none';
  const ns = labels[Label.useWaypointNamespace];
  return { name, namespace: ns === undefined || ns === '' ? defaultNamespace : ns };
}

/** Which waypoint the object (else its namespace) asks for; undefined for none. */
export function requestedWaypoint(
  obj: KubeObject,
  namespaceObj: KubeObject | undefined,
): WaypointRef | undefined {
  const labels = obj.metadata?.labels ?? {};
  const managed = labels[Label.gatewayManaged];
  if (managed !== undefined && SELF_MANAGED.has(managed)) return undefined;
  const ns = obj.metadata?.namespace ?? '';
  const own = useWaypoint(labels, ns);
  if (own === 'none') return undefined;
  if (own !== undefined) return own;
  const inherited = useWaypoint(namespaceObj?.metadata?.labels ?? {}, ns);
  return inherited === 'none' ? undefined : inherited;
}

interface HboneListener {
  readonly port?: number;
  readonly allowedRoutes?: {
    readonly namespaces?: { readonly from?: string; readonly selector?: LabelSelector };
  };
}

function hboneListener(gw: Gateway): HboneListener | undefined {
  const listeners = gw.spec.listeners as readonly (HboneListener & { protocol?: string })[];
  return (
    listeners.find(l => l.protocol === 'HBONE' && l.port === Port.hbone) ??
    listeners.find(l => l.protocol === 'HBONE')
  );
}

function attachmentAllowed(gw: Gateway, objNs: string, lookup: BindingLookup): boolean {
  const rule = hboneListener(gw)?.allowedRoutes?.namespaces;
  const gwNs = gw.metadata?.namespace ?? '';
  switch (rule?.from ?? 'Same') {
    case 'All':
      return true;
    case 'Selector':
      return selectorMatches(rule?.selector ?? {}, lookup.namespace(objNs)?.metadata?.labels ?? {});
    default:
      return gwNs === objNs;
  }
}

/** The HBONE port of the waypoint's Service (appProtocol `hbone` or name `mesh`), else 15008. */
function hbonePort(gwNs: string, hostname: string | undefined, lookup: BindingLookup): number {
  if (hostname === undefined || lookup.service === undefined) return Port.hbone;
  const svcName = hostname.split('.')[0] ?? '';
  const svc = lookup.service(gwNs, svcName);
  const port = svc?.spec?.ports?.find(p => p.appProtocol === 'hbone' || p.name === 'mesh');
  return port?.port ?? Port.hbone;
}

function gatewayAddress(gw: Gateway, lookup: BindingLookup): workload.GatewayAddressInit | undefined {
  const ns = gw.metadata?.namespace ?? '';
  const addresses = gw.status?.addresses ?? [];
  const host = addresses.find(a => a.type === 'Hostname');
  if (host !== undefined) {
    return {
      hostname: { namespace: ns, hostname: host.value },
      hboneMtlsPort: hbonePort(ns, host.value, lookup),
    };
  }
  for (const a of addresses) {
    if (a.type !== undefined && a.type !== 'IPAddress') continue;
    const bytes = ipToBytes(a.value);
    if (bytes !== undefined)
      return { address: { network: '', address: bytes }, hboneMtlsPort: hbonePort(ns, undefined, lookup) };
  }
  return undefined;
}

/** Upstream's traffic type of a waypoint: the Gateway's label, else its class's, else `service`. */
export function waypointTrafficType(gw: Gateway, lookup: BindingLookup): string {
  const own = gw.metadata?.labels?.[Label.waypointFor];
  if (own !== undefined) return own;
  return lookup.gatewayClassLabels?.(gw.spec.gatewayClassName)?.[Label.waypointFor] ?? WaypointFor.service;
}

/** The waypoint binding of a Service (`service`) or pod (`workload`). */
export function bindWaypoint(obj: KubeObject, kind: BindingKind, lookup: BindingLookup): WaypointBinding {
  const objNs = obj.metadata?.namespace ?? '';
  const ref = requestedWaypoint(obj, lookup.namespace(objNs));
  if (ref === undefined) return NO_WAYPOINT;
  const name = `${ref.namespace}/${ref.name}`;
  const gw = lookup.gateway(ref.namespace, ref.name);
  const address =
    gw !== undefined && WAYPOINT_CLASSES.has(gw.spec.gatewayClassName)
      ? gatewayAddress(gw, lookup)
      : undefined;
  if (gw === undefined || address === undefined) {
    return {
      kind: 'error',
      waypoint: ref,
      reason: WaypointBindingReason.notReady,
      message: `waypoint "${name}" is not ready`,
    };
  }
  if (!attachmentAllowed(gw, objNs, lookup)) {
    return {
      kind: 'error',
      waypoint: ref,
      reason: WaypointBindingReason.attachmentDenied,
      message: `we are not permitted to attach to waypoint "${name}" (missing allowedRoutes?)`,
    };
  }
  const traffic = waypointTrafficType(gw, lookup);
  if (traffic !== WaypointFor.all && traffic !== kind) {
    // A workload that only inherits the namespace's label is not in error: the waypoint serves Services.
    if (kind === WaypointFor.workload && obj.metadata?.labels?.[Label.useWaypoint] === undefined)
      return NO_WAYPOINT;
    return {
      kind: 'error',
      waypoint: ref,
      reason: WaypointBindingReason.unsupportedTrafficType,
      message: `attempting to bind to traffic type "${kind}" which the waypoint "${name}" does not support`,
    };
  }
  return { kind: 'bound', waypoint: ref, address };
}

export const WAYPOINT_BOUND = 'istio.io/WaypointBound';

export interface WaypointBoundCondition {
  readonly type: typeof WAYPOINT_BOUND;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/**
 * Whether ingress gateways route to the object through its waypoint: its own
 * `istio.io/ingress-use-waypoint` label (not the namespace's), `true` in any case, as upstream.
 * `present` tells a label with another value apart from none (the condition message differs).
 */
export function ingressUseWaypoint(labels: Readonly<Record<string, string>> | undefined): {
  readonly present: boolean;
  readonly enabled: boolean;
} {
  const value = labels?.[Label.ingressUseWaypoint];
  return { present: value !== undefined, enabled: value?.toLowerCase() === 'true' };
}

/**
 * The `istio.io/WaypointBound` condition of a Service or ServiceEntry (upstream's
 * `ServiceInfo.GetConditions`, shared by both kinds); undefined removes it (no waypoint asked for).
 * `labels` are the object's own, for the ingress note in the message.
 */
export function waypointBoundCondition(
  binding: WaypointBinding,
  labels?: Readonly<Record<string, string>>,
): WaypointBoundCondition | undefined {
  switch (binding.kind) {
    case 'none':
      return undefined;
    case 'bound': {
      const ingress = ingressUseWaypoint(labels);
      const note = ingress.enabled
        ? '. Ingress traffic will traverse the waypoint'
        : ingress.present
          ? `. Ingress traffic is not using the waypoint, set the ${Label.ingressUseWaypoint} label to true if desired.`
          : '';
      return {
        type: WAYPOINT_BOUND,
        status: 'True',
        reason: WaypointBindingReason.accepted,
        message: `Successfully attached to waypoint ${binding.waypoint.namespace}/${binding.waypoint.name}${note}`,
      };
    }
    case 'error':
      return { type: WAYPOINT_BOUND, status: 'False', reason: binding.reason, message: binding.message };
  }
}
