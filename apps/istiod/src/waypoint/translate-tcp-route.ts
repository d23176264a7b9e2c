/**
 * TCPRoutes on a waypoint's TCP Service port (pure), as upstream's waypoint builds the
 * `tcp_proxy` of an `inbound-vip|<port>|tcp|<host>` chain (`listener_waypoint.go`
 * `buildWaypointNetworkFilters`, fed by the TCPRoute → VirtualService conversion):
 *
 * - the first rule of the oldest attached TCPRoute wins (a TCPRoute rule has no matches);
 * - backendRefs of weight 0 are dropped; one backend left is a plain `cluster`, more are
 *   `weighted_clusters` with their weights;
 * - a backendRef that did not resolve keeps its share, sent to the `BackendNotFound` cluster that
 *   never exists (connections on that share are refused; upstream sends it to `UnknownService`);
 * - a rule without a backend of weight > 0 refuses every connection (upstream's "zero-weight"
 *   destination).
 */
import { BACKEND_NOT_FOUND_CLUSTER } from './names.ts';
import type { ResolvedRoute } from './resolve-route.ts';
import { sortRoutesByAge } from './translate-route.ts';
import type { BackendTarget, RouteRule } from './types.ts';

/** One `tcp_proxy.weighted_clusters.clusters[]` entry (Envoy needs weight ≥ 1). */
export interface TcpClusterWeight {
  readonly name: string;
  readonly weight: number;
}

/** The rule that programs a TCP port: the oldest TCPRoute's first rule, if any route is attached. */
export function tcpRouteRule(routes: readonly ResolvedRoute[]): RouteRule | undefined {
  for (const r of sortRoutesByAge(routes.filter(r => r.route.kind === 'TCPRoute'))) {
    const rule = r.rules[0];
    if (rule !== undefined) return rule;
  }
  return undefined;
}

/**
 * The clusters of a TCPRoute rule on port `port` (backendRefs without a port use it): one entry
 * means a plain `cluster`; the weights are the backendRefs' as written.
 */
export function tcpRouteClusters(
  rule: RouteRule,
  port: number,
  clusterFor: (target: BackendTarget) => string,
): TcpClusterWeight[] {
  const out: TcpClusterWeight[] = [];
  for (const b of rule.backends) {
    if (b.weight <= 0) continue;
    const name = clusterFor({
      service: b.service,
      port: b.port === 0 ? port : b.port,
      ...(b.subset === undefined ? {} : { subset: b.subset }),
      ...(b.host === undefined ? {} : { host: b.host }),
    });
    const same = out.findIndex(c => c.name === name);
    if (same >= 0) out[same] = { name, weight: out[same]!.weight + b.weight };
    else out.push({ name, weight: b.weight });
  }
  if (rule.unresolvedWeight > 0) out.push({ name: BACKEND_NOT_FOUND_CLUSTER, weight: rule.unresolvedWeight });
  if (out.length === 0) return [{ name: BACKEND_NOT_FOUND_CLUSTER, weight: 1 }];
  return out;
}

/** The `tcp_proxy` config of a chain: its own cluster, or the TCPRoute's clusters. */
export function tcpProxyConfig(
  statPrefix: string,
  clusters: readonly TcpClusterWeight[] | undefined,
): object {
  if (clusters === undefined || clusters.length === 0) return { statPrefix, cluster: statPrefix };
  if (clusters.length === 1) return { statPrefix, cluster: clusters[0]!.name };
  return {
    statPrefix,
    weightedClusters: { clusters: clusters.map(c => ({ name: c.name, weight: c.weight })) },
  };
}
