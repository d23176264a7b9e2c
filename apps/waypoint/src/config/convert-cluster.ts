/**
 * `Cluster` → `ClusterConfig` and `ClusterLoadAssignment` → `EndpointSet`.
 *
 * Clusters: `EDS` (endpoints by `eds_cluster_config.service_name` or the cluster name) and
 * `STATIC` with an inline `load_assignment`; `STRICT_DNS` and `LOGICAL_DNS` with hostnames in
 * the inline `load_assignment` (resolved by `proxy/dns-clusters.ts`, `dns_lookup_family`,
 * `dns_refresh_rate`); `ORIGINAL_DST` (`CLUSTER_PROVIDED`: the request's original destination).
 * LB policies round robin, least request, random, ring hash and Maglev; the default-priority
 * circuit-breaker thresholds; consecutive-error outlier detection; the connect timeout.
 * Endpoints in the mesh are reached over HBONE (mTLS to the endpoint's port 15008), whatever
 * the cluster's transport socket says. Endpoints outside the mesh (DNS and original-dst
 * clusters, plain `EDS`/`STATIC` endpoints) get plain TCP, or TLS when the cluster's
 * `transport_socket` is `envoy.transport_sockets.tls` (TLS origination, `convert-upstream-tls.ts`;
 * what it cannot honour on a DNS or original-dst cluster is NACKed). The protocol of the request comes from
 * `typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`:
 * HTTP/2 (h2c prior knowledge) for `explicit_http_config.http2_protocol_options`, the downstream
 * request's protocol for `use_downstream_protocol_config`, HTTP/1.1 otherwise.
 *
 * Endpoints: socket addresses with weight and health (one with neither `tunnel` nor `istio`
 * metadata is outside the mesh, a ServiceEntry's `STATIC` address: plain TCP); metadata `istio.workload`
 * (`name;namespace;canonical-service;canonical-revision;cluster`) for the metric labels,
 * `istio.identity` for the SPIFFE identity the endpoint must present, and `tunnel.address`
 * (`ip:port`) for the HBONE next hop when it is not `<endpoint ip>:15008`.
 */
import { Port } from '@ambient-mesh/mesh-api';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { ProtoReader } from './proto-reader.ts';
import { convertUpstreamTls } from './convert-upstream-tls.ts';
import { DEFAULT_CIRCUIT_BREAKERS, DEFAULT_MAX_CONCURRENT_STREAMS } from './types.ts';
import type {
  CircuitBreakers,
  ClusterConfig,
  ClusterDiscovery,
  ConnectionLimits,
  DnsHost,
  DnsLookupFamily,
  Converted,
  Endpoint,
  EndpointSet,
  EndpointWorkload,
  LbPolicy,
  OutlierDetection,
  UpstreamProtocol,
  UpstreamTls,
} from './types.ts';

const LB_POLICIES: Record<string, LbPolicy> = {
  ROUND_ROBIN: 'round-robin',
  LEAST_REQUEST: 'least-request',
  RANDOM: 'random',
  RING_HASH: 'ring-hash',
  MAGLEV: 'maglev',
};

/** `outbound|80||reviews.default.svc.cluster.local`, `inbound-vip|80|http|reviews...`: the host part. */
export function serviceHostOf(clusterName: string): string | undefined {
  const parts = clusterName.split('|');
  if (parts.length !== 4) return undefined;
  const host = parts[3] ?? '';
  return host === '' ? undefined : host;
}

function convertThresholds(r: ProtoReader, cb: ProtoObject): CircuitBreakers {
  r.only(cb, 'circuit_breakers', ['thresholds'], ['per_host_thresholds']);
  const thresholds = r.list(cb, 'thresholds');
  const def = thresholds.find(t => (t.priority ?? 'DEFAULT') === 'DEFAULT');
  if (def === undefined) return DEFAULT_CIRCUIT_BREAKERS;
  const i = thresholds.indexOf(def);
  r.only(
    def,
    `circuit_breakers.thresholds[${i}]`,
    ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries'],
    ['track_remaining', 'retry_budget', 'max_connection_pools'],
  );
  return {
    maxConnections: r.wrappedNumber(def, 'max_connections') ?? DEFAULT_CIRCUIT_BREAKERS.maxConnections,
    maxPendingRequests:
      r.wrappedNumber(def, 'max_pending_requests') ?? DEFAULT_CIRCUIT_BREAKERS.maxPendingRequests,
    maxRequests: r.wrappedNumber(def, 'max_requests') ?? DEFAULT_CIRCUIT_BREAKERS.maxRequests,
    maxRetries: r.wrappedNumber(def, 'max_retries') ?? DEFAULT_CIRCUIT_BREAKERS.maxRetries,
  };
}

/** Envoy's defaults for `outlier_detection` fields left unset. */
export const OUTLIER_DEFAULTS = Object.freeze({
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
});

function convertOutlier(r: ProtoReader, o: ProtoObject): OutlierDetection {
  r.only(
    o,
    'outlier_detection',
    [
      'consecutive_5xx',
      'enforcing_consecutive_5xx',
      'consecutive_gateway_failure',
      'enforcing_consecutive_gateway_failure',
      'interval',
      'base_ejection_time',
      'max_ejection_time',
      'max_ejection_percent',
      'enforcing_success_rate',
    ],
    // Success-rate ejection is not implemented; its tuning has no effect (see the docs).
    ['success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor'],
  );
  // `enforcing_*` is a percentage chance of ejecting; the waypoint treats 0 as off and any other
  // value as always. Envoy enforces consecutive 5xx by default, gateway failures not.
  const enforcing5xx = r.wrappedNumber(o, 'enforcing_consecutive_5xx') ?? 100;
  const enforcingGateway = r.wrappedNumber(o, 'enforcing_consecutive_gateway_failure') ?? 0;
  const successRate = r.wrappedNumber(o, 'enforcing_success_rate');
  if (successRate !== undefined && successRate > 0)
    r.problem(
      'outlier_detection.enforcing_success_rate',
      'success-rate ejection is not supported (set it to 0)',
    );
  const percent = r.wrappedNumber(o, 'max_ejection_percent') ?? OUTLIER_DEFAULTS.maxEjectionPercent;
  if (percent > 100) r.problem('outlier_detection.max_ejection_percent', 'must be 0..100');
  const interval = r.durationMs(o, 'interval', 'outlier_detection') ?? OUTLIER_DEFAULTS.intervalMs;
  if (interval <= 0) r.problem('outlier_detection.interval', 'must be positive');
  return {
    consecutive5xx:
      enforcing5xx > 0 ? (r.wrappedNumber(o, 'consecutive_5xx') ?? OUTLIER_DEFAULTS.consecutive5xx) : 0,
    consecutiveGatewayFailure:
      enforcingGateway > 0
        ? (r.wrappedNumber(o, 'consecutive_gateway_failure') ?? OUTLIER_DEFAULTS.consecutiveGatewayFailure)
        : 0,
    intervalMs: interval,
    baseEjectionTimeMs:
      r.durationMs(o, 'base_ejection_time', 'outlier_detection') ?? OUTLIER_DEFAULTS.baseEjectionTimeMs,
    maxEjectionTimeMs:
      r.durationMs(o, 'max_ejection_time', 'outlier_detection') ?? OUTLIER_DEFAULTS.maxEjectionTimeMs,
    maxEjectionPercent: percent,
  };
}

export function convertCluster(name: string, version: string, o: ProtoObject): Converted<ClusterConfig> {
  const r = new ProtoReader();
  r.only(
    o,
    '',
    [
      'name',
      'type',
      'eds_cluster_config',
      'lb_policy',
      'connect_timeout',
      'circuit_breakers',
      'outlier_detection',
      'load_assignment',
      'typed_extension_protocol_options',
      'dns_lookup_family',
      'dns_refresh_rate',
      'original_dst_lb_config',
    ],
    // Transport settings: every upstream hop is HBONE. Stats and buffer sizes have no
    // counterpart here.
    [
      'transport_socket',
      'transport_socket_matches',
      'metadata',
      'common_lb_config',
      'per_connection_buffer_limit_bytes',
      'alt_stat_name',
      'filters',
      'cleanup_interval',
      // Ring sizes: the waypoint's ring has a fixed size per endpoint weight.
      'ring_hash_lb_config',
      'maglev_lb_config',
      // Node's resolver reports no TTL: the refresh rate alone decides (see the docs).
      'respect_dns_ttl',
      'dns_failure_refresh_rate',
    ],
  );
  const own = r.string(o, 'name');
  if (own !== undefined && own !== name)
    r.problem('name', `is ${JSON.stringify(own)}, not the resource name ${JSON.stringify(name)}`);
  const type = r.string(o, 'type') ?? 'STATIC';
  if (!SUPPORTED_TYPES.has(type))
    r.problem(
      'type',
      `${type} clusters are not supported (only EDS, STATIC, STRICT_DNS, LOGICAL_DNS and ORIGINAL_DST)`,
    );
  const lbText = r.string(o, 'lb_policy') ?? 'ROUND_ROBIN';
  // Envoy requires CLUSTER_PROVIDED on ORIGINAL_DST clusters (and accepts it nowhere else).
  const lbPolicy =
    type === 'ORIGINAL_DST' && lbText === 'CLUSTER_PROVIDED' ? 'round-robin' : LB_POLICIES[lbText];
  if (type === 'ORIGINAL_DST' && lbText !== 'CLUSTER_PROVIDED')
    r.problem('lb_policy', `is ${lbText}; an ORIGINAL_DST cluster needs CLUSTER_PROVIDED`);
  else if (lbPolicy === undefined) r.problem('lb_policy', `${lbText} is not supported`);
  const eds = r.object(o, 'eds_cluster_config');
  if (eds !== undefined) r.only(eds, 'eds_cluster_config', ['service_name'], ['eds_config']);
  const cb = r.object(o, 'circuit_breakers');
  const outlier = r.object(o, 'outlier_detection');
  const assignment = r.object(o, 'load_assignment');
  let staticEndpoints: Endpoint[] | undefined;
  let discovery: ClusterDiscovery = { kind: type === 'STATIC' ? 'static' : 'eds' };
  if (type === 'STATIC') {
    if (assignment === undefined) r.problem('load_assignment', 'a STATIC cluster needs a load_assignment');
    else staticEndpoints = endpointsFrom(r, assignment, 'load_assignment');
  } else if (type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    discovery = dnsDiscovery(r, o, type === 'STRICT_DNS' ? 'strict' : 'logical', assignment);
  } else if (type === 'ORIGINAL_DST') {
    discovery = { kind: 'original-dst' };
    if (assignment !== undefined) r.problem('load_assignment', 'an ORIGINAL_DST cluster takes no endpoints');
    const odl = r.object(o, 'original_dst_lb_config');
    if (odl !== undefined) {
      r.only(odl, 'original_dst_lb_config', ['use_http_header'], []);
      if (r.bool(odl, 'use_http_header') === true)
        r.problem(
          'original_dst_lb_config.use_http_header',
          'is not supported (the CONNECT authority is the destination)',
        );
    }
  }
  if (type !== 'ORIGINAL_DST' && r.object(o, 'original_dst_lb_config') !== undefined)
    r.problem('original_dst_lb_config', 'applies to ORIGINAL_DST clusters only');
  // TLS origination to the endpoints outside the mesh (all those of DNS and original-dst
  // clusters, the plain ones of EDS/STATIC clusters); HBONE endpoints keep their tunnel.
  let upstreamTls: UpstreamTls | undefined;
  const socket = r.object(o, 'transport_socket');
  const outside = discovery.kind === 'dns' || discovery.kind === 'original-dst';
  if (socket !== undefined && isTls(socket)) {
    if (outside) upstreamTls = convertUpstreamTls(r, socket, 'transport_socket');
    else {
      // An EDS cluster's socket may be upstream's in-mesh shape (SDS, tunnel matches): used when
      // the waypoint can honour it, else ignored as before (its mesh endpoints are HBONE anyway).
      const lenient = new ProtoReader();
      const tls = convertUpstreamTls(lenient, socket, 'transport_socket');
      if (lenient.problems.length === 0) upstreamTls = tls;
    }
  }
  if (
    outside &&
    r.list(o, 'transport_socket_matches').some(m => isTls(r.object(m, 'transport_socket') ?? {}))
  )
    r.problem(
      'transport_socket_matches',
      'TLS origination through transport_socket_matches is not supported for DNS and ORIGINAL_DST clusters (use transport_socket)',
    );
  const value: ClusterConfig = {
    name,
    version,
    edsName: (eds !== undefined ? r.string(eds, 'service_name') : undefined) || name,
    lbPolicy: lbPolicy ?? 'round-robin',
    connectTimeoutMs: r.durationMs(o, 'connect_timeout', '') ?? 10_000,
    circuitBreakers: cb === undefined ? DEFAULT_CIRCUIT_BREAKERS : convertThresholds(r, cb),
    outlierDetection: outlier === undefined ? undefined : convertOutlier(r, outlier),
    serviceHost: serviceHostOf(name),
    staticEndpoints,
    discovery,
    upstreamProtocol: upstreamProtocolOf(r, r.object(o, 'typed_extension_protocol_options')),
    ...(upstreamTls !== undefined ? { upstreamTls } : {}),
    ...connectionLimitsOf(r, r.object(o, 'typed_extension_protocol_options')),
  };
  return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, value };
}

const SUPPORTED_TYPES = new Set(['EDS', 'STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'ORIGINAL_DST']);

const DNS_FAMILIES: Record<string, DnsLookupFamily> = {
  AUTO: 'auto',
  V4_ONLY: 'v4-only',
  V6_ONLY: 'v6-only',
  V4_PREFERRED: 'v4-preferred',
  ALL: 'all',
};

/** Envoy's default `dns_refresh_rate`. */
export const DEFAULT_DNS_REFRESH_MS = 5_000;

/** Whether a `TransportSocket` is Envoy's TLS socket (TLS origination). */
function isTls(socket: ProtoObject): boolean {
  const name = typeof socket.name === 'string' ? socket.name : '';
  const config = socket.typed_config as ProtoObject | undefined;
  const t = config?.['@type'] ?? config?.type_url;
  const type = typeof t === 'string' ? t : '';
  return name === 'envoy.transport_sockets.tls' || name === 'tls' || type.endsWith('.UpstreamTlsContext');
}

/**
 * The `socket_address` of the endpoint at `ep` (its `address` object given), with the fields it may
 * carry besides address and port; a problem and `undefined` when it has none or it is incomplete.
 */
function socketAddressOf(
  r: ProtoReader,
  addr: ProtoObject,
  ep: string,
  optional: readonly string[],
): { readonly host: string; readonly port: number } | undefined {
  const socket = r.object(addr, 'socket_address');
  if (socket === undefined) {
    r.problem(`${ep}.endpoint.address`, 'only socket_address endpoints are supported');
    return undefined;
  }
  r.only(socket, `${ep}.endpoint.address.socket_address`, ['address', 'port_value'], optional);
  const host = r.string(socket, 'address') ?? '';
  const port = r.number(socket, 'port_value') ?? 0;
  if (host === '' || port <= 0 || port > 65535) {
    r.problem(`${ep}.endpoint.address.socket_address`, 'needs an address and a port 1..65535');
    return undefined;
  }
  return { host, port };
}

/** A DNS cluster's hosts (`load_assignment`, hostnames or IPs) and resolver settings. */
function dnsDiscovery(
  r: ProtoReader,
  o: ProtoObject,
  mode: 'strict' | 'logical',
  assignment: ProtoObject | undefined,
): ClusterDiscovery {
  const familyText = r.string(o, 'dns_lookup_family') ?? 'AUTO';
  const family = DNS_FAMILIES[familyText];
  if (family === undefined) r.problem('dns_lookup_family', `${familyText} is not supported`);
  const refreshMs = r.durationMs(o, 'dns_refresh_rate', '') ?? DEFAULT_DNS_REFRESH_MS;
  if (refreshMs <= 0) r.problem('dns_refresh_rate', 'must be positive');
  const hosts: DnsHost[] = [];
  const kind = mode === 'strict' ? 'STRICT_DNS' : 'LOGICAL_DNS';
  if (assignment === undefined) r.problem('load_assignment', `a ${kind} cluster needs a load_assignment`);
  else {
    r.only(assignment, 'load_assignment', ['cluster_name', 'endpoints'], ['policy', 'named_endpoints']);
    r.list(assignment, 'endpoints').forEach((locality, li) => {
      const lp = `load_assignment.endpoints[${li}]`;
      r.only(locality, lp, ['lb_endpoints', 'priority'], ['locality', 'load_balancing_weight', 'metadata']);
      if ((r.number(locality, 'priority') ?? 0) !== 0)
        r.problem(`${lp}.priority`, 'only priority 0 is supported');
      r.list(locality, 'lb_endpoints').forEach((lb, ei) => {
        const ep = `${lp}.lb_endpoints[${ei}]`;
        r.only(lb, ep, ['endpoint', 'load_balancing_weight'], ['health_status', 'metadata']);
        const endpoint = r.object(lb, 'endpoint') ?? {};
        r.only(endpoint, `${ep}.endpoint`, ['address'], ['health_check_config', 'hostname']);
        const socket = socketAddressOf(r, r.object(endpoint, 'address') ?? {}, ep, [
          'protocol',
          'ipv4_compat',
          'resolver_name',
        ]);
        if (socket === undefined) return;
        hosts.push({ ...socket, weight: r.wrappedNumber(lb, 'load_balancing_weight') ?? 1 });
      });
    });
    if (hosts.length === 0 && r.problems.length === 0)
      r.problem('load_assignment', `a ${kind} cluster needs at least one endpoint`);
  }
  return { kind: 'dns', mode, hosts, family: family ?? 'auto', refreshMs };
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** The upstream protocol from the cluster's `HttpProtocolOptions` (HTTP/1.1 when absent). */
function upstreamProtocolOf(r: ProtoReader, options: ProtoObject | undefined): UpstreamProtocol {
  if (options === undefined) return 'http1';
  const path = `typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"]`;
  for (const key of Object.keys(options)) {
    if (key !== HTTP_PROTOCOL_OPTIONS)
      r.problem(`typed_extension_protocol_options["${key}"]`, 'is not supported (only HttpProtocolOptions)');
  }
  const http = r.object(options, HTTP_PROTOCOL_OPTIONS);
  if (http === undefined) return 'http1';
  r.only(
    http,
    path,
    ['@type', 'type_url', 'explicit_http_config', 'use_downstream_protocol_config'],
    // Connection tuning (idle timeout, header limits) is the waypoint's own; HTTP/2 pools take
    // max_requests_per_connection (`connectionLimitsOf`). `auto_config` (ALPN) has no meaning
    // inside an HBONE tunnel: reported.
    [
      'common_http_protocol_options',
      'upstream_http_protocol_options',
      'http_filters',
      'header_validation_config',
    ],
  );
  const explicit = r.object(http, 'explicit_http_config');
  if (explicit !== undefined) {
    r.only(explicit, `${path}.explicit_http_config`, [
      'http_protocol_options',
      'http2_protocol_options',
      'http3_protocol_options',
    ]);
    if (r.object(explicit, 'http3_protocol_options') !== undefined)
      r.problem(`${path}.explicit_http_config.http3_protocol_options`, 'HTTP/3 upstream is not supported');
    return r.object(explicit, 'http2_protocol_options') !== undefined ? 'http2' : 'http1';
  }
  return r.object(http, 'use_downstream_protocol_config') !== undefined ? 'downstream' : 'http1';
}

/**
 * `max_requests_per_connection` (`common_http_protocol_options`) and the HTTP/2
 * `max_concurrent_streams`: the HTTP/2 pool's per-connection limits (`proxy/h2-pool.ts`).
 */
function connectionLimitsOf(
  r: ProtoReader,
  options: ProtoObject | undefined,
): { connectionLimits?: ConnectionLimits } {
  const http = options === undefined ? undefined : r.object(options, HTTP_PROTOCOL_OPTIONS);
  if (http === undefined) return {};
  const common = r.object(http, 'common_http_protocol_options');
  const h2 =
    r.object(r.object(http, 'explicit_http_config') ?? {}, 'http2_protocol_options') ??
    r.object(r.object(http, 'use_downstream_protocol_config') ?? {}, 'http2_protocol_options');
  const perConnection =
    common === undefined ? undefined : r.wrappedNumber(common, 'max_requests_per_connection');
  const streams = h2 === undefined ? undefined : r.wrappedNumber(h2, 'max_concurrent_streams');
  if (perConnection === undefined && streams === undefined) return {};
  if (streams !== undefined && streams < 1)
    r.problem(
      `typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"].http2_protocol_options.max_concurrent_streams`,
      'must be at least 1',
    );
  return {
    connectionLimits: {
      maxRequestsPerConnection: perConnection ?? 0,
      maxConcurrentStreams: streams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
    },
  };
}

/** A `google.protobuf.Struct` field's string value, in protobufjs's object form or plain JSON. */
function structString(struct: ProtoObject | undefined, key: string): string | undefined {
  if (struct === undefined) return undefined;
  const fields = struct.fields as Record<string, ProtoObject> | undefined;
  if (fields !== undefined && typeof fields === 'object') {
    // protobufjs's built-in Struct keeps its camelCase field names.
    const v = fields[key]?.stringValue ?? fields[key]?.string_value;
    return typeof v === 'string' ? v : undefined;
  }
  const v = struct[key];
  return typeof v === 'string' ? v : undefined;
}

function parseWorkload(text: string, path: string, r: ProtoReader): EndpointWorkload | undefined {
  const parts = text.split(';');
  if (parts.length < 2 || parts[0] === '' || parts[1] === '') {
    r.problem(
      path,
      `${JSON.stringify(text)} is not name;namespace;canonical-service;canonical-revision;cluster`,
    );
    return undefined;
  }
  return {
    name: parts[0] ?? '',
    namespace: parts[1] ?? '',
    canonicalService: parts[2] ?? '',
    canonicalRevision: parts[3] ?? '',
    cluster: parts[4] ?? '',
  };
}

function splitHostPort(text: string): { host: string; port: number } | undefined {
  const i = text.lastIndexOf(':');
  if (i <= 0) return undefined;
  const port = Number(text.slice(i + 1));
  let host = text.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : undefined;
}

function endpointsFrom(r: ProtoReader, o: ProtoObject, path: string): Endpoint[] {
  const out: Endpoint[] = [];
  r.list(o, 'endpoints').forEach((locality, li) => {
    const lp = `${path}.endpoints[${li}]`;
    r.only(locality, lp, ['lb_endpoints', 'priority'], ['locality', 'load_balancing_weight', 'metadata']);
    if ((r.number(locality, 'priority') ?? 0) !== 0)
      r.problem(`${lp}.priority`, 'only priority 0 is supported');
    r.list(locality, 'lb_endpoints').forEach((lb, ei) => {
      const ep = `${lp}.lb_endpoints[${ei}]`;
      r.only(lb, ep, ['endpoint', 'health_status', 'metadata', 'load_balancing_weight']);
      const endpoint = r.object(lb, 'endpoint') ?? {};
      r.only(
        endpoint,
        `${ep}.endpoint`,
        ['address'],
        ['health_check_config', 'hostname', 'additional_addresses'],
      );
      const addr = r.object(endpoint, 'address') ?? {};
      // Upstream's `main_internal` cluster points at an internal listener: the waypoint has
      // that hop built in, so such endpoints are accepted and not used.
      if (r.object(addr, 'envoy_internal_address') !== undefined) return;
      const socket = socketAddressOf(r, addr, ep, ['protocol', 'ipv4_compat']);
      if (socket === undefined) return;
      const { host: address, port } = socket;
      const filter = (r.object(r.object(lb, 'metadata') ?? {}, 'filter_metadata') ?? {}) as Record<
        string,
        ProtoObject
      >;
      const istio = filter.istio;
      const tunnel = filter.tunnel;
      const workloadText = structString(istio, 'workload');
      let hboneHost = address;
      let hbonePort: number = Port.hbone;
      let target = { host: address, port };
      // Upstream's form: the endpoint is the pod's HBONE address, `tunnel.destination` the
      // original destination (`ip:targetPort`) that becomes the CONNECT authority.
      const destination = structString(tunnel, 'destination');
      if (destination !== undefined) {
        const hp = splitHostPort(destination);
        if (hp === undefined)
          r.problem(`${ep}.metadata.tunnel.destination`, `${JSON.stringify(destination)} is not host:port`);
        else {
          target = hp;
          hbonePort = port;
        }
      }
      const tunnelAddress = structString(tunnel, 'address');
      if (tunnelAddress !== undefined) {
        const hp = splitHostPort(tunnelAddress);
        if (hp === undefined)
          r.problem(`${ep}.metadata.tunnel.address`, `${JSON.stringify(tunnelAddress)} is not host:port`);
        else ({ host: hboneHost, port: hbonePort } = hp);
      }
      const health = r.string(lb, 'health_status') ?? 'UNKNOWN';
      out.push({
        address: target.host,
        port: target.port,
        hboneAddress: hboneHost,
        hbonePort,
        weight: r.wrappedNumber(lb, 'load_balancing_weight') ?? 1,
        healthy: health === 'UNKNOWN' || health === 'HEALTHY' || health === 'DEGRADED',
        identity: structString(istio, 'identity'),
        workload:
          workloadText === undefined
            ? undefined
            : parseWorkload(workloadText, `${ep}.metadata.istio.workload`, r),
        // Neither `tunnel` nor `istio` metadata: an endpoint outside the mesh (a ServiceEntry's
        // `STATIC` address), dialled over plain TCP as upstream's waypoint does.
        ...(tunnel === undefined && istio === undefined ? { plaintext: true } : {}),
      });
    });
  });
  return out;
}

export function convertClusterLoadAssignment(
  name: string,
  version: string,
  o: ProtoObject,
): Converted<EndpointSet> {
  const r = new ProtoReader();
  r.only(o, '', ['cluster_name', 'endpoints'], ['policy', 'named_endpoints']);
  const own = r.string(o, 'cluster_name');
  if (own !== undefined && own !== name)
    r.problem('cluster_name', `is ${JSON.stringify(own)}, not the resource name ${JSON.stringify(name)}`);
  const endpoints = endpointsFrom(r, o, '');
  return r.problems.length > 0
    ? { ok: false, problems: r.problems }
    : { ok: true, value: { name, version, endpoints } };
}
