/**
 * A ServiceEntry served by a waypoint (`istio.io/use-waypoint` on the entry or its namespace) to
 * the waypoint's filter chains, route configurations and clusters (pure), as upstream's waypoint
 * builds them for a ServiceEntry (`listener_waypoint.go`, `cluster_waypoint.go`):
 *
 * - one `inbound-vip|<port>|<http|tcp>|<host>` filter chain, route configuration (HTTP ports) and
 *   cluster per host and port; the chain matches the host's VIPs (`spec.addresses`, else the
 *   auto-allocated ones in `status.addresses`);
 * - the cluster follows the entry's resolution (upstream's `convertResolution`): `DNS` →
 *   `STRICT_DNS` and `DNS_ROUND_ROBIN` → `LOGICAL_DNS`, with the endpoints (else the host
 *   itself) inline in `load_assignment`; `STATIC` → `EDS`, the `ClusterLoadAssignment` listing
 *   the inline endpoints' IPs; `NONE` → `ORIGINAL_DST` (`CLUSTER_PROVIDED`), no endpoints.
 *
 * A DestinationRule for the host (its `trafficPolicy`, `portLevelSettings` for the port) shapes
 * the cluster; its `tls` (`SIMPLE`/`MUTUAL`: TLS origination) becomes the cluster's
 * `transport_socket` (`translate-upstream-tls.ts`).
 *
 * Hosts without a VIP (wildcards, `NONE` without `spec.addresses`, a VIP not allocated yet) have
 * nothing for the chain to match and are left out until they have one.
 */
import { duration } from './envoy-protos.ts';
import type { ServiceProtocol } from './resolve-route.ts';
import { inboundVipName } from './names.ts';
import { buildCluster } from './translate-cluster.ts';
import type { TrafficPolicy } from './types.ts';
import {
  hostAddresses,
  serviceEntryEndpoints,
  type EntryPort,
  type ValidServiceEntry,
} from '../wds/service-entry.ts';

/** Upstream's default `meshConfig.dnsRefreshRate`. */
export const DNS_REFRESH_RATE_MS = 60_000;

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP_PROXY']);
const H2_PROTOCOLS = new Set(['HTTP2', 'GRPC', 'GRPC-WEB']);

/** An entry port's protocol: HTTP ports and HTTP/2/gRPC ports are L7, every other (or none) TCP. */
export function entryPortProtocol(protocol: string): ServiceProtocol {
  const p = protocol.toUpperCase();
  if (HTTP_PROTOCOLS.has(p)) return 'http';
  if (H2_PROTOCOLS.has(p)) return 'grpc';
  return 'tcp';
}

/** One host and port of an entry the waypoint serves. */
export interface EntryTarget {
  /** `inbound-vip|<port>|<http|tcp>|<host>`: filter chain, route configuration and cluster. */
  readonly name: string;
  readonly host: string;
  readonly port: EntryPort;
  readonly protocol: ServiceProtocol;
  readonly vips: readonly string[];
}

/** The hosts and ports of an entry the waypoint builds resources for (wildcard hosts left out). */
export function serviceEntryTargets(entry: ValidServiceEntry): EntryTarget[] {
  const out: EntryTarget[] = [];
  for (const host of entry.hosts) {
    if (host.startsWith('*')) continue;
    const vips = hostAddresses(entry, host);
    // Without a VIP ztunnel cannot tell the host's traffic apart: nothing reaches the waypoint.
    if (vips.length === 0) continue;
    for (const port of entry.ports) {
      const protocol = entryPortProtocol(port.protocol);
      out.push({ name: inboundVipName(port.number, protocol, host), host, port, protocol, vips });
    }
  }
  return out;
}

/** The Envoy cluster discovery type for the entry's resolution. */
export function entryClusterType(
  entry: ValidServiceEntry,
): 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST' {
  switch (entry.resolution) {
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    case 'NONE':
      return 'ORIGINAL_DST';
    default:
      return 'EDS';
  }
}

interface EntryEndpoint {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

/** The endpoints of one host and port: inline endpoints (their port for the port's name, else the target port), else the host. */
export function entryEndpoints(entry: ValidServiceEntry, target: EntryTarget): EntryEndpoint[] {
  return serviceEntryEndpoints(entry)
    .filter(e => e.hosts.includes(target.host) && e.endpoint.address !== '')
    .map(e => ({
      address: e.endpoint.address,
      port: e.endpoint.ports[target.port.name] ?? target.port.targetPort,
      weight: e.endpoint.weight,
    }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
}

function loadAssignment(name: string, endpoints: readonly EntryEndpoint[]): object {
  return {
    clusterName: name,
    endpoints:
      endpoints.length === 0
        ? []
        : [
            {
              lbEndpoints: endpoints.map(e => ({
                endpoint: { address: { socketAddress: { address: e.address, portValue: e.port } } },
                ...(e.weight > 0 ? { loadBalancingWeight: e.weight } : {}),
              })),
            },
          ],
  };
}

/**
 * The cluster of one host and port, and (for `EDS`) its `ClusterLoadAssignment`. DNS clusters
 * carry their endpoints inline; `ORIGINAL_DST` has none.
 */
export function buildServiceEntryCluster(
  entry: ValidServiceEntry,
  target: EntryTarget,
  trafficPolicy: TrafficPolicy = {},
  transportSocket?: object,
): { readonly cluster: object; readonly loadAssignment?: object } {
  const base: Record<string, unknown> = {
    ...(buildCluster({
      name: target.name,
      trafficPolicy,
      http2: target.protocol === 'grpc',
      tcp: target.protocol === 'tcp',
    }) as Record<string, unknown>),
    ...(transportSocket !== undefined ? { transportSocket } : {}),
  };
  const type = entryClusterType(entry);
  if (type === 'EDS') {
    return { cluster: base, loadAssignment: loadAssignment(target.name, entryEndpoints(entry, target)) };
  }
  const { edsClusterConfig: _eds, ...rest } = base;
  if (type === 'ORIGINAL_DST') return { cluster: { ...rest, type, lbPolicy: 'CLUSTER_PROVIDED' } };
  return {
    cluster: {
      ...rest,
      type,
      dnsLookupFamily: 'V4_ONLY',
      dnsRefreshRate: duration(DNS_REFRESH_RATE_MS),
      respectDnsTtl: true,
      loadAssignment: loadAssignment(target.name, entryEndpoints(entry, target)),
    },
  };
}
