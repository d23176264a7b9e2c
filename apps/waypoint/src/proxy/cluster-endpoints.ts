/**
 * The endpoints a request to a cluster may go to, by the cluster's discovery: inline (`STATIC`),
 * the `ClusterLoadAssignment` (`EDS`), the resolved addresses (`STRICT_DNS`/`LOGICAL_DNS`, see
 * `dns-clusters.ts`), or the original destination (`ORIGINAL_DST`).
 *
 * Original destination: upstream's waypoint terminates the HBONE CONNECT on an internal
 * listener that restores the CONNECT authority as the connection's local address, and Envoy's
 * `ORIGINAL_DST` cluster connects to that address. So here the endpoint is the CONNECT
 * authority (the address and port the client dialled: a ServiceEntry VIP for `resolution:
 * NONE`), reached over plain TCP.
 *
 * A cluster with TLS origination (`upstreamTls`) marks its endpoints outside the mesh with it:
 * the upstream pools then dial TLS to them.
 */
import type { ClusterConfig, Endpoint, UpstreamTls, WaypointConfig } from '../config/types.ts';
import type { DnsClusters } from './dns-clusters.ts';

/** The original destination of a tunnel as a plain-TCP endpoint. */
export function originalDestination(ip: string, port: number): Endpoint {
  return {
    address: ip,
    port,
    hboneAddress: ip,
    hbonePort: port,
    weight: 1,
    healthy: true,
    identity: undefined,
    workload: undefined,
    plaintext: true,
  };
}

const withTls = new WeakMap<readonly Endpoint[], { tls: UpstreamTls; endpoints: readonly Endpoint[] }>();

/**
 * The endpoints with the cluster's TLS origination on those outside the mesh (`plaintext`);
 * memoised per endpoint list, so a pool key stays the same object's key between requests.
 */
export function endpointsWithTls(
  cluster: ClusterConfig,
  endpoints: readonly Endpoint[],
): readonly Endpoint[] {
  const tls = cluster.upstreamTls;
  if (tls === undefined || endpoints.length === 0) return endpoints;
  const cached = withTls.get(endpoints);
  if (cached?.tls === tls) return cached.endpoints;
  const out = endpoints.map(e => (e.plaintext === true ? { ...e, tls } : e));
  withTls.set(endpoints, { tls, endpoints: out });
  return out;
}

export async function clusterEndpoints(
  cluster: ClusterConfig,
  config: WaypointConfig,
  dns: DnsClusters | undefined,
  destination: { readonly ip: string; readonly port: number },
): Promise<readonly Endpoint[]> {
  return endpointsWithTls(cluster, await discovered(cluster, config, dns, destination));
}

async function discovered(
  cluster: ClusterConfig,
  config: WaypointConfig,
  dns: DnsClusters | undefined,
  destination: { readonly ip: string; readonly port: number },
): Promise<readonly Endpoint[]> {
  switch (cluster.discovery.kind) {
    case 'dns':
      return dns?.endpoints(cluster.name) ?? (await dns?.ready(cluster.name)) ?? [];
    case 'original-dst':
      return [originalDestination(destination.ip, destination.port)];
    case 'eds':
    case 'static':
      return cluster.staticEndpoints ?? config.endpoints.get(cluster.edsName)?.endpoints ?? [];
  }
}
