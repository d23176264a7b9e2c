/**
 * A managed Gateway's status, as upstream reports it (Istio 1.27 `gateway/conversion.go`,
 * `gatewaycommon/conversion.go`): `Accepted` and `Programmed` with upstream's reasons and
 * messages, and `addresses`.
 *
 * Programmed is decided from the generated Service: it exists and has a cluster IP. Upstream
 * also waits for ready endpoints behind it; ours does not (see docs/compatibility.md), so a
 * waypoint is Programmed as soon as its Service is, whether or not its pods run.
 *
 * Addresses: for waypoints the Service's cluster IPs and its hostname (upstream reports both);
 * for ingress gateways the LoadBalancer's external addresses, else the hostname once assigned.
 *
 * Listeners: one entry per listener with its `supportedKinds` and `attachedRoutes` (the routes
 * accepted on it). Waypoint listeners report no errors (`Accepted`, `Conflicted=False`
 * `NoConflicts`, `Programmed`, `ResolvedRefs`, each "No errors found"); ingress listeners are
 * checked as upstream does (`listener-status.ts`: certificateRefs, route kinds, protocol,
 * conflicts).
 */
import type { GatewayClassInfo } from './classes.ts';
import type {
  GatewayListener,
  GatewayListenerStatus,
  GatewayModel,
  GatewayStatusAddress,
  GatewayStatusCondition,
  RouteGroupKind,
} from './model.ts';
import { evaluateListener, listenerConflicts, protocolKinds, type ListenerRefs } from './listener-status.ts';

export const GatewayCondition = { accepted: 'Accepted', programmed: 'Programmed' } as const;
export const GATEWAY_OWNED_CONDITIONS: readonly string[] = [
  GatewayCondition.accepted,
  GatewayCondition.programmed,
];

/** What the status needs of the generated Service. */
export interface ServiceView {
  readonly name: string;
  readonly type: string;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly number[];
  readonly loadBalancer: readonly string[];
}

export interface GatewayStatus {
  readonly conditions: readonly GatewayStatusCondition[];
  readonly addresses: readonly GatewayStatusAddress[];
  readonly listeners: readonly GatewayListenerStatus[];
}

export const LISTENER_OWNED_CONDITIONS: readonly string[] = [
  'Accepted',
  'Conflicted',
  'Programmed',
  'ResolvedRefs',
];

/** Routes attached to one listener (`RouteAttachments.attachedRoutes`). */
export type AttachedRoutes = (listener: GatewayListener) => number;

/** The route kinds a listener's protocol takes (upstream's `GenerateSupportedKinds`). */
export function supportedKinds(protocol: string): RouteGroupKind[] {
  return protocolKinds(protocol);
}

/**
 * Every listener's status and the routes attached to it. With `refs` (ingress Gateways) each
 * listener is checked (`listener-status.ts`); without (waypoints) every listener has no errors.
 */
export function listenerStatuses(
  gw: GatewayModel,
  attached: AttachedRoutes,
  refs?: ListenerRefs,
): GatewayListenerStatus[] {
  const ok = (type: string, reason: string, status = 'True'): GatewayStatusCondition => ({
    type,
    status,
    reason,
    message: 'No errors found',
    observedGeneration: gw.generation,
  });
  const conflicts = refs === undefined ? undefined : listenerConflicts(gw.listeners);
  return gw.listeners.map(l => {
    if (refs !== undefined) {
      const e = evaluateListener(gw, l, refs, conflicts?.get(l.name));
      return {
        name: l.name,
        attachedRoutes: attached(l),
        supportedKinds: e.supportedKinds,
        conditions: e.conditions,
      };
    }
    return {
      name: l.name,
      attachedRoutes: attached(l),
      supportedKinds: supportedKinds(l.protocol),
      conditions: [
        ok('Accepted', 'Accepted'),
        ok('Conflicted', 'NoConflicts', 'False'),
        ok('Programmed', 'Programmed'),
        ok('ResolvedRefs', 'ResolvedRefs'),
      ],
    };
  });
}

const NO_ROUTES: AttachedRoutes = () => 0;

function joinHuman(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  if (items.length === 2) return `${items[0]} and ${items[1]}`;
  return `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1]}`;
}

function isIp(v: string): boolean {
  return /^[0-9.]+$/.test(v) || v.includes(':');
}

/** The status of a Gateway istiod manages, given its Service (undefined: not created yet). */
export function gatewayStatus(
  gw: GatewayModel,
  cls: GatewayClassInfo,
  svc: ServiceView | undefined,
  domain: string,
  attached: AttachedRoutes = NO_ROUTES,
  refs?: ListenerRefs,
  invalidParameters?: string,
): GatewayStatus {
  const gen = gw.generation;
  const listeners = listenerStatuses(gw, attached, cls.waypoint ? undefined : refs);
  // An unresolvable `spec.infrastructure.parametersRef`: `Accepted=False`, `InvalidParameters`
  // (Gateway API's reason), the message naming the reference.
  const accepted: GatewayStatusCondition =
    invalidParameters === undefined
      ? {
          type: GatewayCondition.accepted,
          status: 'True',
          reason: 'Accepted',
          message: 'Resource accepted',
          observedGeneration: gen,
        }
      : {
          type: GatewayCondition.accepted,
          status: 'False',
          reason: 'InvalidParameters',
          message: invalidParameters,
          observedGeneration: gen,
        };
  const programmed = (status: 'True' | 'False', reason: string, message: string): GatewayStatusCondition => ({
    type: GatewayCondition.programmed,
    status,
    reason,
    message,
    observedGeneration: gen,
  });
  const host = svc === undefined ? undefined : `${svc.name}.${gw.namespace}.svc.${domain}`;
  const clusterIPs = (svc?.clusterIPs ?? []).filter(ip => ip !== '' && ip !== 'None');
  if (svc === undefined || host === undefined || clusterIPs.length === 0) {
    const wanted = host ?? `${gw.name}.${gw.namespace}.svc.${domain}`;
    return {
      conditions: [
        accepted,
        programmed(
          'False',
          'AddressNotAssigned',
          `Failed to assign to any requested addresses: hostname "${wanted}" not found`,
        ),
      ],
      // Once reported an address is kept (upstream never removes it after going ready).
      addresses: gw.status.addresses,
      listeners,
    };
  }
  const listenerPorts = [...new Set(gw.listeners.map(l => l.port))].filter(p => svc.ports.includes(p));
  const internal = listenerPorts.map(p => `${host}:${p}`);
  const pending = svc.type === 'LoadBalancer' && svc.loadBalancer.length === 0;
  let addresses: GatewayStatusAddress[];
  if (svc.loadBalancer.length > 0) {
    addresses = svc.loadBalancer.map(v => ({ type: isIp(v) ? 'IPAddress' : 'Hostname', value: v }));
  } else {
    addresses = cls.addressTypes === 'both' ? clusterIPs.map(ip => ({ type: 'IPAddress', value: ip })) : [];
    if (!pending) addresses.push({ type: 'Hostname', value: host });
  }
  if (addresses.length === 0) addresses = [...gw.status.addresses];
  const cond = pending
    ? programmed(
        'False',
        'AddressNotAssigned',
        `Assigned to service(s) ${joinHuman(internal.length > 0 ? internal : [host])}, but failed to assign to all requested addresses: address pending for hostname "${host}"`,
      )
    : programmed(
        'True',
        'Programmed',
        internal.length > 0
          ? `Resource programmed, assigned to service(s) ${joinHuman(internal)}`
          : 'Resource programmed',
      );
  return { conditions: [accepted, cond], addresses, listeners };
}

/** The status of a Gateway of one of our classes that failed validation. */
export function invalidGatewayStatus(generation: number, errors: readonly string[]): GatewayStatus {
  return {
    conditions: [
      {
        type: GatewayCondition.accepted,
        status: 'False',
        reason: 'Invalid',
        message: errors.join('; '),
        observedGeneration: generation,
      },
      {
        type: GatewayCondition.programmed,
        status: 'False',
        reason: 'Invalid',
        message: 'Gateway is invalid and was not deployed',
        observedGeneration: generation,
      },
    ],
    addresses: [],
    listeners: [],
  };
}

function sameCondition(a: GatewayStatusCondition, b: GatewayStatusCondition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration
  );
}

/** Whether the Gateway already shows this status (so the write, and its watch event, is skipped). */
export function statusEqual(current: GatewayModel['status'], next: GatewayStatus): boolean {
  const owned = current.conditions.filter(c => GATEWAY_OWNED_CONDITIONS.includes(c.type));
  if (owned.length !== next.conditions.length) return false;
  for (const n of next.conditions) {
    const c = owned.find(o => o.type === n.type);
    if (c === undefined || !sameCondition(c, n)) return false;
  }
  return (
    current.addresses.length === next.addresses.length &&
    current.addresses.every(
      (a, i) => a.type === next.addresses.at(i)?.type && a.value === next.addresses.at(i)?.value,
    ) &&
    listenersEqual(current.listeners, next.listeners)
  );
}

function listenersEqual(
  current: readonly GatewayListenerStatus[],
  next: readonly GatewayListenerStatus[],
): boolean {
  return (
    current.length === next.length &&
    next.every((n, i) => {
      const c = current[i]!;
      if (
        c.name !== n.name ||
        c.attachedRoutes !== n.attachedRoutes ||
        JSON.stringify(c.supportedKinds) !== JSON.stringify(n.supportedKinds)
      )
        return false;
      const owned = c.conditions.filter(x => LISTENER_OWNED_CONDITIONS.includes(x.type));
      return (
        owned.length === n.conditions.length &&
        n.conditions.every(nc => {
          const cc = owned.find(o => o.type === nc.type);
          return cc !== undefined && sameCondition(cc, nc);
        })
      );
    })
  );
}
