/**
 * Outbound destination selection (docs/protocols.md#hbone-waypoint), pure: from the original destination the app dialled to
 * the next hop, the HBONE `:authority` and the identities the peer must present.
 *
 * 1. A service VIP with a waypoint goes to the service waypoint.
 * 2. A service VIP resolves to one endpoint (health policy and load-balancing preference
 *    honoured, port translated); no endpoint refuses the connection.
 * 3. A workload with a waypoint, reached by pod IP, goes to the workload waypoint unless the
 *    source is that waypoint.
 * 4. A workload speaking HBONE gets HBONE to `podIP:15008`; otherwise, and for unknown IPs,
 *    plain TCP passthrough.
 */
import { isIP } from 'node:net';
import { formatSocketAddress } from '@ambient-mesh/hbone';
import { Port, ZTUNNEL_INPOD_PORTS } from '@ambient-mesh/mesh-api';
import type { Endpoint, ProxyStateReader } from '../state/proxy-state.ts';
import type { GatewayAddress, LbScope, Service, Workload } from '../state/types.ts';

/** ztunnel's own in-pod ports; traffic to them is a self-call (docs/protocols.md#hbone-server, docs/protocols.md#redirection-ztunnel). */
export const PROXY_PORTS: ReadonlySet<number> = ZTUNNEL_INPOD_PORTS;
export const HBONE_PORT = Port.hbone;

export interface Destination {
  readonly address: string;
  readonly port: number;
}

export type OutboundRoute =
  | {
      readonly kind: 'hbone';
      readonly nextHop: string;
      /** The CONNECT `:authority`. */
      readonly target: string;
      readonly expectedIdentities: readonly string[];
      /** The workload actually reached (the waypoint pod when via a waypoint). */
      readonly workload: Workload;
      /** The intended service, when service-addressed. */
      readonly service: Service | undefined;
      readonly viaWaypoint: boolean;
    }
  | {
      readonly kind: 'passthrough';
      readonly address: string;
      readonly port: number;
      readonly workload: Workload | undefined;
      readonly service: Service | undefined;
    }
  | { readonly kind: 'reject'; readonly reason: string };

export interface RouteOptions {
  /** Uniform random numbers in [0, 1); injectable for deterministic tests. */
  readonly random?: () => number;
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

function scopeMatches(scope: LbScope, source: Workload, target: Workload): boolean {
  switch (scope) {
    case 'REGION':
      return source.locality.region === target.locality.region;
    case 'ZONE':
      return source.locality.zone === target.locality.zone;
    case 'SUBZONE':
      return source.locality.subzone === target.locality.subzone;
    case 'NODE':
      return source.node === target.node;
    case 'CLUSTER':
      return source.clusterId === target.clusterId;
    case 'NETWORK':
      return source.network === target.network;
  }
}

/** Endpoints usable from `source`, narrowed by the service's load-balancing preference. */
export function eligibleEndpoints(
  service: Service,
  endpoints: readonly Endpoint[],
  source: Workload,
): Endpoint[] {
  const lb = service.loadBalancing;
  const healthy = endpoints.filter(
    e =>
      e.workload.addresses.length > 0 &&
      e.workload.network === source.network &&
      (lb?.healthPolicy === 'ALLOW_ALL' || e.workload.status === 'HEALTHY'),
  );
  if (lb === undefined || lb.routingPreference.length === 0) return healthy;
  const rank = (e: Endpoint): number => {
    let n = 0;
    for (const scope of lb.routingPreference) {
      if (!scopeMatches(scope, source, e.workload)) break;
      n += 1;
    }
    return n;
  };
  if (lb.mode === 'STRICT') return healthy.filter(e => rank(e) === lb.routingPreference.length);
  const best = Math.max(-1, ...healthy.map(rank));
  return healthy.filter(e => rank(e) === best);
}

/** Service port → the workload's target port (workload override, then the Service, then as is). */
export function targetPort(service: Service, endpoint: Endpoint, servicePort: number): number {
  const own = endpoint.ports.find(p => p.servicePort === servicePort);
  if (own !== undefined && own.targetPort !== 0) return own.targetPort;
  const declared = service.ports.find(p => p.servicePort === servicePort);
  if (declared !== undefined && declared.targetPort !== 0) return declared.targetPort;
  return servicePort;
}

/**
 * The workload address to dial for a destination `like`: the first one of the same IP family,
 * else the first one (upstream's `ip_family_match`), so an IPv6 Service VIP reaches a dual-stack
 * endpoint over IPv6.
 */
export function addressOfFamily(addresses: readonly string[], like: string): string | undefined {
  const v6 = isIP(like) === 6;
  return addresses.find(ip => (isIP(ip) === 6) === v6) ?? addresses[0];
}

function pick<T>(items: readonly T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined;
  return items[Math.min(items.length - 1, Math.floor(random() * items.length))];
}

function identityList(...lists: (readonly string[])[]): string[] {
  return [...new Set(lists.flat().filter(id => id !== ''))];
}

function viaWaypoint(
  state: ProxyStateReader,
  source: Workload,
  gateway: GatewayAddress,
  original: Destination,
  service: Service | undefined,
  random: () => number,
): OutboundRoute {
  const target = formatSocketAddress(original.address, original.port);
  if (gateway.destination.kind === 'address') {
    const waypoint = state.workloadByAddress(gateway.destination.network, gateway.destination.address);
    if (waypoint === undefined)
      return { kind: 'reject', reason: `waypoint ${gateway.destination.address} is unknown` };
    return {
      kind: 'hbone',
      nextHop: formatSocketAddress(gateway.destination.address, gateway.hboneMtlsPort),
      target,
      expectedIdentities: [waypoint.identity],
      workload: waypoint,
      service,
      viaWaypoint: true,
    };
  }
  const waypointService = state.serviceByKey(
    `${gateway.destination.namespace}/${gateway.destination.hostname}`,
  );
  if (waypointService === undefined) {
    return { kind: 'reject', reason: `waypoint service ${gateway.destination.hostname} is unknown` };
  }
  const endpoint = pick(
    eligibleEndpoints(waypointService, state.endpoints(waypointService.key), source),
    random,
  );
  const ip =
    endpoint === undefined ? undefined : addressOfFamily(endpoint.workload.addresses, original.address);
  if (endpoint === undefined || ip === undefined) {
    return { kind: 'reject', reason: `no healthy waypoint endpoint for ${waypointService.hostname}` };
  }
  return {
    kind: 'hbone',
    nextHop: formatSocketAddress(ip, targetPort(waypointService, endpoint, gateway.hboneMtlsPort)),
    target,
    expectedIdentities: identityList(waypointService.subjectAltNames, [endpoint.workload.identity]),
    workload: endpoint.workload,
    service,
    viaWaypoint: true,
  };
}

/** True when `source` is one of the waypoint workloads `gateway` names (same identity and IP). */
function isFromWaypoint(
  state: ProxyStateReader,
  source: Pick<Workload, 'identity' | 'addresses'>,
  gateway: GatewayAddress,
): boolean {
  const waypoints: Workload[] = [];
  if (gateway.destination.kind === 'address') {
    const waypoint = state.workloadByAddress(gateway.destination.network, gateway.destination.address);
    if (waypoint !== undefined) waypoints.push(waypoint);
  } else {
    const key = `${gateway.destination.namespace}/${gateway.destination.hostname}`;
    for (const endpoint of state.endpoints(key)) waypoints.push(endpoint.workload);
  }
  return waypoints.some(
    w => w.identity === source.identity && w.addresses.some(ip => source.addresses.includes(ip)),
  );
}

/**
 * How an inbound connection relates to the destination's waypoint (its own, or a Service's it
 * belongs to): `from_waypoint` when the source is one of those waypoints (same identity and IP),
 * `bypassed` when it is not, undefined when the destination has no waypoint. Telemetry only:
 * as upstream, bypassing traffic is judged by policy, never refused for it.
 */
export function inboundWaypointHop(
  state: ProxyStateReader,
  destination: Workload,
  source: Pick<Workload, 'identity' | 'addresses'>,
): 'from_waypoint' | 'bypassed' | undefined {
  const gateways: GatewayAddress[] = [];
  if (destination.waypoint !== undefined) gateways.push(destination.waypoint);
  for (const key of Object.keys(destination.services)) {
    const waypoint = state.serviceByKey(key)?.waypoint;
    if (waypoint !== undefined) gateways.push(waypoint);
  }
  if (gateways.length === 0) return undefined;
  return gateways.some(g => isFromWaypoint(state, source, g)) ? 'from_waypoint' : 'bypassed';
}

export function routeOutbound(
  state: ProxyStateReader,
  source: Workload,
  original: Destination,
  options: RouteOptions = {},
): OutboundRoute {
  const random = options.random ?? Math.random;
  if (isIP(original.address) === 0) return { kind: 'reject', reason: `bad destination ${original.address}` };
  if (
    PROXY_PORTS.has(original.port) &&
    (isLoopback(original.address) || source.addresses.includes(original.address))
  ) {
    return { kind: 'reject', reason: `self-call to ztunnel port ${original.port}` };
  }
  let service = state.serviceByVip(source.network, original.address);
  let workload: Workload | undefined;
  let port = original.port;
  if (service !== undefined) {
    if (service.waypoint !== undefined)
      return viaWaypoint(state, source, service.waypoint, original, service, random);
    const endpoint = pick(eligibleEndpoints(service, state.endpoints(service.key), source), random);
    if (endpoint === undefined)
      return { kind: 'reject', reason: `no healthy upstream for ${service.hostname}` };
    workload = endpoint.workload;
    port = targetPort(service, endpoint, original.port);
  } else {
    workload = state.workloadByAddress(source.network, original.address);
    service = undefined;
    if (workload === undefined) {
      return {
        kind: 'passthrough',
        address: original.address,
        port,
        workload: undefined,
        service: undefined,
      };
    }
    if (workload.waypoint !== undefined && !isFromWaypoint(state, source, workload.waypoint)) {
      return viaWaypoint(state, source, workload.waypoint, original, undefined, random);
    }
  }
  const address =
    service === undefined
      ? original.address
      : (addressOfFamily(workload.addresses, original.address) ?? original.address);
  if (workload.tunnelProtocol !== 'HBONE') return { kind: 'passthrough', address, port, workload, service };
  return {
    kind: 'hbone',
    nextHop: formatSocketAddress(address, HBONE_PORT),
    target: formatSocketAddress(address, port),
    expectedIdentities: identityList(service?.subjectAltNames ?? [], [workload.identity]),
    workload,
    service,
    viaWaypoint: false,
  };
}
