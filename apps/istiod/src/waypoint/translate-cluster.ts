/**
 * DestinationRule traffic policy to Envoy `Cluster`s, and endpoints to `ClusterLoadAssignment`s
 * (pure).
 *
 * One EDS cluster per Service port (`inbound-vip|<port>|http|<host>`) and one per subset
 * (`inbound-vip|<port>|http/<subset>|<host>`); a subset's traffic policy overrides the rule's,
 * field group by field group, as upstream merges them. Defaults are upstream's: round robin,
 * 10 s connect timeout, circuit-breaker thresholds at the uint32 maximum (none), no outlier detection.
 */
import { ADS_CONFIG_SOURCE, EnvoyType, duration, struct, typedConfig } from './envoy-protos.ts';
import type { ConsistentHash, TrafficPolicy } from './types.ts';

/** Upstream's "no limit" circuit-breaker threshold. */
export const MAX_THRESHOLD = 4_294_967_295;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Upstream's outlier detection defaults when a field is unset. */
const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;
const DEFAULT_BASE_EJECTION_MS = 30_000;
const DEFAULT_MAX_EJECTION_PERCENT = 10;
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** `subset` fields replace the base's per group (loadBalancer, connectionPool, outlierDetection). */
export function mergeTrafficPolicy(
  base: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
): TrafficPolicy {
  return { ...(base ?? {}), ...(subset ?? {}) };
}

function lbPolicy(tp: TrafficPolicy): { lbPolicy: string; extra: Record<string, unknown> } {
  const lb = tp.loadBalancer;
  if (lb?.consistentHash !== undefined) {
    const ring = lb.consistentHash.minimumRingSize;
    return {
      lbPolicy: 'RING_HASH',
      extra: ring !== undefined ? { ringHashLbConfig: { minimumRingSize: ring } } : {},
    };
  }
  // Upstream's default (no DestinationRule, or `simple` unset) is LEAST_REQUEST, as is LEAST_CONN.
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lbPolicy: 'ROUND_ROBIN', extra: {} };
    case 'RANDOM':
      return { lbPolicy: 'RANDOM', extra: {} };
    case 'PASSTHROUGH':
      return { lbPolicy: 'CLUSTER_PROVIDED', extra: {} };
    default:
      return { lbPolicy: 'LEAST_REQUEST', extra: {} };
  }
}

/** The route `hash_policy` of a consistentHash load balancer. */
export function hashPolicy(ch: ConsistentHash | undefined): object[] | undefined {
  if (ch === undefined) return undefined;
  switch (ch.kind) {
    case 'header':
      return [{ header: { headerName: ch.header } }];
    case 'cookie':
      return [
        {
          cookie: {
            name: ch.name,
            ...(ch.path !== undefined ? { path: ch.path } : {}),
            ...(ch.ttlMs !== undefined ? { ttl: duration(ch.ttlMs) } : {}),
          },
        },
      ];
    case 'sourceIp':
      return [{ connectionProperties: { sourceIp: true } }];
    case 'queryParameter':
      return [{ queryParameter: { name: ch.name } }];
  }
}

export interface ClusterInput {
  readonly name: string;
  readonly trafficPolicy: TrafficPolicy;
  /** gRPC ports speak HTTP/2 upstream. */
  readonly http2: boolean;
  /**
   * Ports that declare HTTP speak HTTP/1.1 upstream (Envoy's default: protocol options only when
   * there are common options to carry); others use the downstream protocol.
   */
  readonly http1?: boolean;
  /** TCP ports: no HTTP protocol options. */
  readonly tcp: boolean;
}

export function buildCluster(input: ClusterInput): object {
  const tp = input.trafficPolicy;
  const pool = tp.connectionPool ?? {};
  const { lbPolicy: policy, extra } = lbPolicy(tp);
  const cluster: Record<string, unknown> = {
    name: input.name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: ADS_CONFIG_SOURCE, serviceName: input.name },
    connectTimeout: duration(pool.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    lbPolicy: policy,
    ...extra,
    circuitBreakers: {
      thresholds: [
        {
          maxConnections: pool.maxConnections ?? MAX_THRESHOLD,
          maxPendingRequests: pool.http1MaxPendingRequests ?? MAX_THRESHOLD,
          maxRequests: pool.http2MaxRequests ?? MAX_THRESHOLD,
          maxRetries: pool.maxRetries ?? MAX_THRESHOLD,
          trackRemaining: true,
        },
      ],
    },
  };
  if (!input.tcp) {
    const common: Record<string, unknown> = {};
    if (pool.maxRequestsPerConnection !== undefined && pool.maxRequestsPerConnection > 0)
      common.maxRequestsPerConnection = pool.maxRequestsPerConnection;
    if (pool.idleTimeoutMs !== undefined) common.idleTimeout = duration(pool.idleTimeoutMs);
    // `maxConcurrentStreams` bounds the streams per HTTP/2 connection, where HTTP/2 is spoken.
    const streams =
      pool.maxConcurrentStreams !== undefined && pool.maxConcurrentStreams > 0
        ? { maxConcurrentStreams: pool.maxConcurrentStreams }
        : undefined;
    const hasCommon = Object.keys(common).length > 0;
    const options = {
      ...(hasCommon ? { commonHttpProtocolOptions: common } : {}),
      ...(input.http2
        ? { explicitHttpConfig: { http2ProtocolOptions: streams ?? {} } }
        : input.http1 === true
          ? { explicitHttpConfig: { httpProtocolOptions: {} } }
          : {
              useDownstreamProtocolConfig:
                streams === undefined ? {} : { httpProtocolOptions: {}, http2ProtocolOptions: streams },
            }),
    };
    if (input.http2 || input.http1 !== true || hasCommon)
      cluster.typedExtensionProtocolOptions = {
        [HTTP_PROTOCOL_OPTIONS]: typedConfig(EnvoyType.httpProtocolOptions, options),
      };
  }
  const od = tp.outlierDetection;
  if (
    od !== undefined &&
    (od.consecutive5xxErrors !== undefined || od.consecutiveGatewayErrors !== undefined)
  ) {
    const c5xx = od.consecutive5xxErrors ?? 0;
    const cgw = od.consecutiveGatewayErrors ?? 0;
    cluster.outlierDetection = {
      ...(c5xx > 0
        ? { consecutive_5xx: c5xx, enforcingConsecutive_5xx: 100 }
        : { enforcingConsecutive_5xx: 0 }),
      ...(cgw > 0 ? { consecutiveGatewayFailure: cgw, enforcingConsecutiveGatewayFailure: 100 } : {}),
      interval: duration(od.intervalMs ?? DEFAULT_OUTLIER_INTERVAL_MS),
      baseEjectionTime: duration(od.baseEjectionTimeMs ?? DEFAULT_BASE_EJECTION_MS),
      maxEjectionPercent: od.maxEjectionPercent ?? DEFAULT_MAX_EJECTION_PERCENT,
      enforcingSuccessRate: 0,
    };
    if (od.minHealthPercent !== undefined)
      cluster.commonLbConfig = { healthyPanicThreshold: { value: od.minHealthPercent } };
  }
  return cluster;
}

export interface EndpointInput {
  readonly ip: string;
  /** The workload's port behind the Service port (its target port). */
  readonly targetPort: number;
  readonly hbonePort: number;
  readonly healthy: boolean;
  /** `name;namespace;canonical-service;canonical-revision;cluster` (upstream's `istio.workload`). */
  readonly workload?: string;
  /** The SPIFFE ID the endpoint's ztunnel presents for it. */
  readonly identity?: string;
  /**
   * False for a pod outside the ambient mesh (no `ambient.istio.io/redirection: enabled`): the
   * ingress gateway reaches it directly. Waypoint clusters ignore it.
   */
  readonly inMesh?: boolean;
  /**
   * True for an address that is no pod (a selector-less Service's hand-written EndpointSlice):
   * outside the mesh, so every cluster, a waypoint's too, reaches it plainly at `ip:targetPort`.
   */
  readonly external?: boolean;
}

/** `ip:port`, with an IPv6 address in brackets. */
const hostPort = (ip: string, port: number): string =>
  ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;

/**
 * A `ClusterLoadAssignment` with one locality of the given endpoints, each at its IP and HBONE port,
 * with the tunnel destination `destinationOf` gives it in the `tunnel` filter metadata and its
 * workload and identity (when known) in the `istio` filter metadata.
 */
function hboneLoadAssignment(
  clusterName: string,
  sorted: readonly EndpointInput[],
  destinationOf: (e: EndpointInput) => string | undefined,
): object {
  return {
    clusterName,
    endpoints: sorted.length === 0 ? [] : [{ lbEndpoints: sorted.map(e => lbEndpoint(e, destinationOf(e))) }],
  };
}

/**
 * One endpoint: with a tunnel destination, at its HBONE port with the `tunnel` filter metadata;
 * without, plainly at `ip:targetPort`. The `istio` metadata carries its workload and identity.
 */
function lbEndpoint(e: EndpointInput, destination: string | undefined): object {
  const istio =
    e.workload === undefined && e.identity === undefined
      ? {}
      : {
          istio: struct({
            ...(e.workload === undefined ? {} : { workload: e.workload }),
            ...(e.identity === undefined ? {} : { identity: e.identity }),
          }),
        };
  return {
    endpoint: {
      address: {
        socketAddress: { address: e.ip, portValue: destination === undefined ? e.targetPort : e.hbonePort },
      },
    },
    healthStatus: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
    metadata: {
      filterMetadata: {
        ...(destination === undefined ? {} : { tunnel: struct({ destination }) }),
        ...istio,
      },
    },
  };
}

function sortEndpoints(endpoints: readonly EndpointInput[]): EndpointInput[] {
  return [...endpoints].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.targetPort - b.targetPort));
}

/**
 * The `ClusterLoadAssignment` of a cluster: each backend pod at its IP and HBONE port, with the
 * original destination (`ip:targetPort`) in the `tunnel` filter metadata, as upstream sends it;
 * an `external` address (no pod) plainly at `ip:targetPort`.
 */
export function buildLoadAssignment(clusterName: string, endpoints: readonly EndpointInput[]): object {
  return hboneLoadAssignment(clusterName, sortEndpoints(endpoints), e =>
    e.external === true ? undefined : hostPort(e.ip, e.targetPort),
  );
}

/**
 * The `ClusterLoadAssignment` of an ingress gateway's `outbound|...` cluster: a pod in the ambient
 * mesh (`inMesh`) at its HBONE port with the `tunnel` destination `ip:targetPort`, as the waypoint's
 * endpoints; a pod outside the mesh plainly at `ip:targetPort`, without tunnel metadata.
 */
export function buildIngressLoadAssignment(clusterName: string, endpoints: readonly EndpointInput[]): object {
  return hboneLoadAssignment(clusterName, sortEndpoints(endpoints), e =>
    e.inMesh === false || e.external === true ? undefined : hostPort(e.ip, e.targetPort),
  );
}

/**
 * The `ClusterLoadAssignment` an ingress gateway gets for a Service labelled
 * `istio.io/ingress-use-waypoint=true` (upstream's ingress waypoint routing): each pod of the
 * Service's waypoint at its HBONE port, with the Service's VIP and port as the tunnel
 * destination, so the waypoint applies the Service's L7 policy before the backends see the request.
 */
export function buildIngressWaypointLoadAssignment(
  clusterName: string,
  waypointPods: readonly EndpointInput[],
  vip: string,
  port: number,
): object {
  const destination = hostPort(vip, port);
  const sorted = [...waypointPods].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  return hboneLoadAssignment(clusterName, sorted, () => destination);
}
