/**
 * The waypoint's domain model: what the converters make of Envoy's `Listener`,
 * `RouteConfiguration`, `Cluster` and `ClusterLoadAssignment`. Every value here has been
 * validated; nothing downstream looks at a proto again. All fields are readonly.
 */
import type { TelemetryCondition, TelemetryValue } from '@ambient-mesh/mesh-api';

/** Envoy's `StringMatcher`. Regexes are compiled once, at conversion. */
export type StringMatch =
  | {
      readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains';
      readonly value: string;
      readonly ignoreCase: boolean;
    }
  | { readonly kind: 'regex'; readonly regex: RegExp };

/** `HeaderMatcher`: `:method`, `:authority`, `:path` and `:scheme` are pseudo-headers here too. */
export interface HeaderMatch {
  readonly name: string;
  readonly match: StringMatch | { readonly kind: 'present'; readonly present: boolean };
  readonly invert: boolean;
}

/** `QueryParameterMatcher`. */
export interface QueryMatch {
  readonly name: string;
  readonly match: StringMatch | { readonly kind: 'present' };
}

export type PathMatch =
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'regex'; readonly regex: RegExp }
  /** `path_separated_prefix`: the prefix, then the end of the path or `/`. */
  | { readonly kind: 'separated-prefix'; readonly value: string };

export interface RouteMatch {
  readonly path: PathMatch;
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatch[];
  readonly query: readonly QueryMatch[];
}

export interface HeaderValueOption {
  readonly name: string;
  readonly value: string;
  /** Envoy's `append_action`: add beside existing values, replace them, or add only when absent. */
  readonly mode: 'append' | 'overwrite' | 'if-absent';
}

export interface HeaderMods {
  readonly add: readonly HeaderValueOption[];
  readonly remove: readonly string[];
}

export interface RetryPolicy {
  /** Envoy's `retry_on` conditions, e.g. `5xx`, `gateway-error`, `connect-failure`, `reset`, `retriable-status-codes`. */
  readonly retryOn: ReadonlySet<string>;
  readonly numRetries: number;
  /** 0: no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  readonly requestHeaders: HeaderMods;
  readonly responseHeaders: HeaderMods;
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'query'; readonly name: string };

export interface ForwardAction {
  readonly kind: 'forward';
  /** One entry for `cluster`, several for `weighted_clusters`. */
  readonly clusters: readonly WeightedCluster[];
  readonly totalWeight: number;
  /** 0: no route timeout (Envoy's default is 15 s; istiod sets 0). */
  readonly timeoutMs: number;
  /**
   * How a gRPC request's `grpc-timeout` header (its deadline) sets the timeout: `replace` is
   * `max_grpc_timeout` (what istiod emits: the header, or no limit without one, replaces
   * `timeout`), `limit` is `max_stream_duration.grpc_timeout_header_max` (the header, when sent,
   * also limits the stream). `maxMs` caps the header's value; 0 means no cap. Undefined: the
   * header is not read.
   */
  readonly grpcTimeout: { readonly mode: 'replace' | 'limit'; readonly maxMs: number } | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: { readonly regex: RegExp; readonly substitution: string } | undefined;
  readonly hostRewrite: string | undefined;
  readonly hashPolicy: readonly HashPolicy[];
  /** `request_mirror_policies`: fire-and-forget copies (absent: none). */
  readonly mirrors?: readonly MirrorPolicy[];
}

/** One `request_mirror_policies` entry: the cluster and the share of requests (`runtime_fraction`). */
export interface MirrorPolicy {
  readonly cluster: string;
  /** Parts per million mirrored (1,000,000 when `runtime_fraction` is unset, as Envoy). */
  readonly perMillion: number;
}

/**
 * Envoy's local rate limit (`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`):
 * one token bucket per config instance (the filter's own, or a route's `typed_per_filter_config`).
 */
export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** Absent: the config limits nothing (a filter that only carries per-route configs). */
  readonly bucket:
    | { readonly maxTokens: number; readonly tokensPerFill: number; readonly fillIntervalMs: number }
    | undefined;
  /** `filter_enabled.default_value` (absent: 0, as Envoy: the filter is off). */
  readonly enabledPerMillion: number;
  /** `filter_enforced.default_value` (absent: 0: limited requests are only counted). */
  readonly enforcedPerMillion: number;
  /** `status.code` (default 429). */
  readonly status: number;
  /** `response_headers_to_add`, on the rate-limited responses. */
  readonly responseHeaders: HeaderMods;
}

/** One `envoy.filters.http.local_ratelimit` filter of a chain. */
export interface LocalRateLimitFilter {
  /** The filter's name: the key of its per-route config. */
  readonly name: string;
  readonly config: LocalRateLimitConfig;
  /** True when it comes before the JWT and RBAC filters (EnvoyFilter `INSERT_FIRST`/`INSERT_BEFORE` with no subfilter). */
  readonly beforeAuth: boolean;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly prefixRewrite: string | undefined;
  /** `regex_rewrite` of the path (RE2 references already as `$N`). */
  readonly regexRewrite?: { readonly regex: RegExp; readonly substitution: string } | undefined;
  readonly status: 301 | 302 | 303 | 307 | 308;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'direct-response';
  readonly status: number;
  readonly body: string;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

/**
 * Envoy's HTTP fault filter (`envoy.extensions.filters.http.fault.v3.HTTPFault`): a fixed delay
 * and/or an abort, each applied to a share of the requests (`perMillion` of 1,000,000).
 */
export interface FaultConfig {
  readonly delay: { readonly fixedDelayMs: number; readonly perMillion: number } | undefined;
  readonly abort: { readonly httpStatus: number; readonly perMillion: number } | undefined;
}

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  readonly requestHeaders: HeaderMods;
  readonly responseHeaders: HeaderMods;
  /** `typed_per_filter_config["envoy.filters.http.fault"]`: replaces the filter's own config. */
  readonly fault: FaultConfig | undefined;
  /** `typed_per_filter_config` of local rate limit filters, by filter name (absent: none). */
  readonly localRateLimit?: ReadonlyMap<string, LocalRateLimitConfig>;
}

export interface VirtualHost {
  readonly name: string;
  /** Envoy's domain forms: exact, `*.suffix`, `prefix.*`, `*`; lowercased. */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly requestHeaders: HeaderMods;
  readonly responseHeaders: HeaderMods;
}

export interface RouteTable {
  readonly name: string;
  readonly version: string;
  readonly virtualHosts: readonly VirtualHost[];
  readonly requestHeaders: HeaderMods;
  readonly responseHeaders: HeaderMods;
}

// RBAC (the HTTP filter's `rules`, Envoy semantics).

export type Permission =
  | { readonly kind: 'any' }
  | { readonly kind: 'and' | 'or'; readonly rules: readonly Permission[] }
  | { readonly kind: 'not'; readonly rule: Permission }
  | { readonly kind: 'header'; readonly header: HeaderMatch }
  | { readonly kind: 'path'; readonly match: StringMatch }
  | { readonly kind: 'destination-port'; readonly port: number }
  /** The CONNECT destination (service VIP or pod IP). */
  | { readonly kind: 'destination-ip'; readonly cidr: Cidr };

export type Principal =
  | { readonly kind: 'any' }
  | { readonly kind: 'and' | 'or'; readonly ids: readonly Principal[] }
  | { readonly kind: 'not'; readonly id: Principal }
  | { readonly kind: 'authenticated'; readonly match: StringMatch | undefined }
  /** `source_ip`, `direct_remote_ip`, `remote_ip`: the HBONE peer's address. */
  | { readonly kind: 'remote-ip'; readonly cidr: Cidr }
  | { readonly kind: 'header'; readonly header: HeaderMatch }
  /** Envoy's `MetadataMatcher` on the request's dynamic metadata (e.g. the JWT payload). */
  | { readonly kind: 'metadata'; readonly metadata: MetadataMatch };

/** Envoy's `ValueMatcher` (the subset istiod emits: string, present, bool, list `one_of`, or). */
export type ValueMatch =
  | { readonly kind: 'string'; readonly match: StringMatch }
  | { readonly kind: 'present'; readonly present: boolean }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'list-one-of'; readonly match: ValueMatch }
  | { readonly kind: 'or'; readonly matches: readonly ValueMatch[] };

export interface MetadataMatch {
  /** The filter namespace, e.g. `envoy.filters.http.jwt_authn`. */
  readonly filter: string;
  /** Keys into the filter's struct, e.g. `payload`, `iss`. */
  readonly path: readonly string[];
  readonly value: ValueMatch;
  readonly invert: boolean;
}

// JWT authentication (`envoy.filters.http.jwt_authn`).

export type JwksSource =
  | { readonly kind: 'local'; readonly jwks: { readonly keys: readonly Record<string, unknown>[] } }
  | {
      readonly kind: 'remote';
      readonly uri: string;
      readonly cacheDurationMs: number;
      readonly timeoutMs: number;
    };

export interface JwtProvider {
  readonly name: string;
  /** Empty: any issuer. */
  readonly issuer: string;
  /** Empty: any audience. */
  readonly audiences: readonly string[];
  readonly jwks: JwksSource;
  /** Keep the token in the request sent upstream (otherwise the header it came in is removed). */
  readonly forward: boolean;
  /** Token locations; all empty: `Authorization: Bearer <token>` and `?access_token=`. */
  readonly fromHeaders: readonly { readonly name: string; readonly prefix: string }[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  /** Header the base64url payload is forwarded in. */
  readonly forwardPayloadHeader: string | undefined;
  /** Key of the payload in the filter's dynamic metadata. */
  readonly payloadInMetadata: string | undefined;
  /** Claims whose space-delimited string is split into a list in the metadata. */
  readonly spaceDelimitedClaims: readonly string[];
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly clockSkewSeconds: number;
}

export type JwtRequirement =
  | {
      readonly kind: 'provider';
      readonly provider: string;
      readonly audiences: readonly string[] | undefined;
    }
  | { readonly kind: 'any' | 'all'; readonly requirements: readonly JwtRequirement[] }
  | { readonly kind: 'allow-missing' }
  | { readonly kind: 'allow-missing-or-failed' };

export interface JwtRule {
  readonly match: RouteMatch;
  readonly requires: JwtRequirement | undefined;
}

export interface JwtAuthnFilter {
  readonly name: string;
  readonly providers: ReadonlyMap<string, JwtProvider>;
  /** First matching rule wins; no match: no requirement. */
  readonly rules: readonly JwtRule[];
  readonly bypassCorsPreflight: boolean;
}

export interface RbacPolicy {
  readonly name: string;
  /** Any permission and any principal must match. */
  readonly permissions: readonly Permission[];
  readonly principals: readonly Principal[];
}

export interface RbacRules {
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  readonly policies: readonly RbacPolicy[];
}

/** One `envoy.filters.http.rbac` filter: `rules` enforced, `shadowRules` only logged. */
export interface RbacFilter {
  readonly name: string;
  readonly rules: RbacRules | undefined;
  readonly shadowRules: RbacRules | undefined;
  /** `shadow_rules_stat_prefix`: the shadow result's dynamic metadata keys start with it. */
  readonly shadowRulesStatPrefix?: string;
}

/** The ext_authz service of an `envoy.filters.http.ext_authz` filter (see convert-ext-authz.ts). */
export type ExtAuthzService =
  | {
      readonly kind: 'http';
      readonly cluster: string;
      readonly pathPrefix: string;
      readonly timeoutMs: number;
      /** Extra headers sent to the authorization service (`authorization_request.headers_to_add`). */
      readonly headersToAdd: readonly (readonly [string, string])[];
      /** Authorization response headers set on the upstream request on allow (none when absent). */
      readonly allowedUpstreamHeaders: readonly StringMatch[] | undefined;
      /** Authorization response headers sent to the client on deny (all when absent). */
      readonly allowedClientHeaders: readonly StringMatch[] | undefined;
      /** Authorization response headers sent to the client on allow (none when absent). */
      readonly allowedClientHeadersOnSuccess: readonly StringMatch[] | undefined;
    }
  | {
      readonly kind: 'grpc';
      readonly cluster: string;
      readonly authority: string;
      readonly timeoutMs: number;
    };

export interface ExtAuthzFilter {
  readonly name: string;
  readonly service: ExtAuthzService;
  /** Request headers sent to the authorization service beyond the defaults (`allowed_headers`). */
  readonly allowedHeaders: readonly StringMatch[] | undefined;
  readonly failureModeAllow: boolean;
  /** The status when the service fails (default 403). */
  readonly statusOnError: number;
  /** Only requests whose dynamic metadata matches are checked (`filter_enabled_metadata`). */
  readonly enabledMetadata: MetadataMatch | undefined;
}

// Listeners.

export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefixLength: number;
}

export interface FilterChainMatch {
  readonly destinationPort: number | undefined;
  readonly prefixRanges: readonly Cidr[];
  /**
   * `server_names` (TLS SNI), lowercased: exact names and `*.suffix` wildcards. Empty or absent:
   * any SNI (the listener's default among its TLS chains).
   */
  readonly serverNames?: readonly string[];
  /**
   * `transport_protocol`: `tls` on a chain without a transport socket is TLS passthrough (the
   * ClientHello picks the chain, the stream is relayed encrypted).
   */
  readonly transportProtocol?: 'tls' | 'raw_buffer';
  /**
   * `application_protocols`: what the listener's `http_inspector` found (`http/1.0`, `http/1.1`,
   * `h2c`). A chain with them matches only a stream sniffed as one of them; absent: any stream.
   */
  readonly applicationProtocols?: readonly string[];
}

/** A certificate and its key (PEM), inline in the listener (istiod does not use SDS here). */
export interface TlsCertificate {
  readonly certificateChain: string;
  readonly privateKey: string;
}

/** The `envoy.transport_sockets.tls` `DownstreamTlsContext` of a filter chain. */
export interface DownstreamTls {
  readonly certificates: readonly TlsCertificate[];
  /** `common_tls_context.alpn_protocols`; empty: `h2`, `http/1.1` (what istiod's gateways offer). */
  readonly alpn: readonly string[];
  /**
   * `require_client_certificate` with `validation_context.trusted_ca` (PEM): clients must present
   * a certificate that chains to this CA (Istio's MUTUAL).
   */
  readonly clientCa?: string;
}

export interface HttpChain {
  readonly kind: 'http';
  readonly statPrefix: string;
  /** RDS name, or an inline table. */
  readonly routes: { readonly rds: string } | { readonly inline: RouteTable };
  /** The JWT filters (run before RBAC, in filter order). */
  readonly jwt: readonly JwtAuthnFilter[];
  /** The RBAC filters, in filter order; all must allow. */
  readonly rbac: readonly RbacFilter[];
  /** The ext_authz filters (run first: istiod puts CUSTOM before jwt_authn, DENY, ALLOW). */
  readonly extAuthz?: readonly ExtAuthzFilter[];
  /**
   * The `envoy.filters.http.fault` filter, when the chain has it: its own config (empty when
   * istiod sends `{}`; each route's `typed_per_filter_config` then says what to inject).
   */
  readonly fault: FaultConfig | undefined;
  /** The `envoy.filters.http.local_ratelimit` filters, in filter order (absent: none). */
  readonly localRateLimits?: readonly LocalRateLimitFilter[];
  /** How the request path is normalised before routing, RBAC and forwarding (policy-engine's modes). */
  readonly pathNormalization: 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
  /** The HCM's `tracing` (OpenTelemetry provider), when set. */
  readonly tracing?: TracingConfig;
  /** The HCM's `access_log` (file loggers), when set: it replaces the built-in access log. */
  readonly accessLog?: readonly AccessLogConfig[];
  /** The `istio.stats` filter's metric overrides, when the chain has the filter. */
  readonly stats?: StatsConfig;
}

/** One `envoy.access_loggers.file` entry of the HCM's `access_log`. */
export interface AccessLogConfig {
  /** `/dev/stdout`, `/dev/stderr`, `/dev/null` or a file (appended to). */
  readonly path: string;
  /** Envoy's format string (text), or JSON keys to format strings. */
  readonly format:
    | { readonly kind: 'text'; readonly text: string }
    | { readonly kind: 'json'; readonly fields: Readonly<Record<string, string>> };
  /** The CEL `ExpressionFilter` (the supported subset): a line is written only when it holds. */
  readonly filter?: TelemetryCondition;
}

/** The `istio.stats` filter's `metrics[]`, per metric (`requests_total`... without `istio_`). */
export interface StatsConfig {
  readonly metrics: ReadonlyMap<string, MetricOverrideConfig>;
}

export interface MetricOverrideConfig {
  readonly drop: boolean;
  readonly tagsToRemove: readonly string[];
  /** Added or replaced tags: name → value expression. */
  readonly dimensions: ReadonlyMap<string, TelemetryValue>;
}

/**
 * The HCM's `tracing` with the `envoy.tracers.opentelemetry` provider: spans exported over OTLP
 * to the collector cluster's endpoint, sampled at `random_sampling` when the request carries no
 * sampling decision.
 */
export interface TracingConfig {
  /** OTLP over gRPC (`grpc_service.envoy_grpc`) or over HTTP (`http_service`). */
  readonly protocol: 'grpc' | 'http';
  /** The collector's cluster. */
  readonly cluster: string;
  /** OTLP/HTTP: the request path (default `/v1/traces`). */
  readonly httpPath: string;
  /** The spans' `service.name`. */
  readonly serviceName: string;
  /** `random_sampling` in percent (0..100; Envoy's default 100). */
  readonly samplingPercent: number;
  /** `custom_tags`: literal values and request headers. */
  readonly customTags: readonly TracingTag[];
  /** `max_path_tag_length` (Envoy's default 256). */
  readonly maxPathTagLength: number;
}

export type TracingTag =
  | { readonly tag: string; readonly kind: 'literal'; readonly value: string }
  | { readonly tag: string; readonly kind: 'header'; readonly name: string; readonly defaultValue: string };

/** One `tcp_proxy.weighted_clusters.clusters[]` entry. */
export interface TcpClusterWeight {
  readonly name: string;
  readonly weight: number;
}

export interface TcpChain {
  readonly kind: 'tcp';
  readonly statPrefix: string;
  /** `tcp_proxy.cluster`, or the first of `weighted_clusters` (what admin and logs show). */
  readonly cluster: string;
  /** `tcp_proxy.weighted_clusters` (a TCPRoute's backends): each connection picks one by weight. */
  readonly weightedClusters?: readonly TcpClusterWeight[];
  /** The `istio.stats` network filter's metric overrides (before `tcp_proxy`), when the chain has it. */
  readonly stats?: StatsConfig;
}

export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly action: HttpChain | TcpChain;
  /** TLS termination (`transport_socket`); absent: plaintext. */
  readonly tls?: DownstreamTls;
}

/** A listener's `address.socket_address`: a port the gateway binds on the pod. */
export interface SocketAddress {
  readonly host: string;
  readonly port: number;
}

export interface ListenerConfig {
  readonly name: string;
  readonly version: string;
  /**
   * `address.socket_address`: bound as a TCP port in router mode (an ingress gateway); a
   * waypoint serves every listener behind HBONE and ignores it.
   */
  readonly address?: SocketAddress;
  readonly chains: readonly FilterChain[];
  readonly defaultChain: FilterChain | undefined;
  /**
   * The `envoy.filters.listener.http_inspector` listener filter: how long to wait for the
   * stream's first bytes (`listener_filters_timeout`, Envoy's default 15 s). On timeout the
   * stream goes on without an application protocol (`continue_on_listener_filters_timeout`).
   */
  readonly httpInspector?: { readonly timeoutMs: number };
}

// Clusters and endpoints.

export type LbPolicy = 'round-robin' | 'least-request' | 'random' | 'ring-hash' | 'maglev';

export interface CircuitBreakers {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

/** Envoy's defaults for `thresholds` (1024 each, 3 retries). */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakers = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

/**
 * Envoy's `outlier_detection` (consecutive errors only; success-rate and failure-percentage
 * ejection are not implemented). A host is ejected as soon as it reaches a consecutive-error
 * threshold, for `baseEjectionTimeMs` × the number of times it was ejected (at most
 * `maxEjectionTimeMs`), while no more than `maxEjectionPercent` of the hosts are ejected.
 */
export interface OutlierDetection {
  /** Consecutive 5xx (and local-origin failures) before ejection; 0: off. */
  readonly consecutive5xx: number;
  /** Consecutive 502/503/504 (and local-origin failures) before ejection; 0: off. */
  readonly consecutiveGatewayFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
}

export interface ClusterConfig {
  readonly name: string;
  readonly version: string;
  /** The ClusterLoadAssignment name (EDS `service_name`, or the cluster name). */
  readonly edsName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly circuitBreakers: CircuitBreakers;
  readonly outlierDetection: OutlierDetection | undefined;
  /** The Kubernetes service host this cluster stands for, from its `outbound|port|subset|host` name. */
  readonly serviceHost: string | undefined;
  /** Inline endpoints (`STATIC` clusters with a `load_assignment`). */
  readonly staticEndpoints: readonly Endpoint[] | undefined;
  /**
   * How the endpoints are found: `eds`/`static` (above), `dns` (hostnames resolved by the
   * waypoint: `STRICT_DNS` and `LOGICAL_DNS`), or `original-dst` (the request's original
   * destination, the HBONE CONNECT authority). Endpoints of `dns` and `original-dst` clusters are
   * outside the mesh: the waypoint connects to them over plain TCP, not HBONE.
   */
  readonly discovery: ClusterDiscovery;
  /**
   * The protocol inside the upstream HBONE tunnel, from the cluster's `HttpProtocolOptions`:
   * `http2` (`explicit_http_config.http2_protocol_options`: h2c prior knowledge), `downstream`
   * (`use_downstream_protocol_config`: h2c when the request came as HTTP/2), else `http1`.
   */
  readonly upstreamProtocol: UpstreamProtocol;
  /** Per-connection request limits from the `HttpProtocolOptions` (absent: none set). */
  readonly connectionLimits?: ConnectionLimits;
  /**
   * TLS origination (`transport_socket` `envoy.transport_sockets.tls` with an
   * `UpstreamTlsContext`): applies to the endpoints outside the mesh (`plaintext` ones); HBONE
   * endpoints keep their mTLS tunnel. Absent: plain TCP to those endpoints.
   */
  readonly upstreamTls?: UpstreamTls;
}

/** How the waypoint originates TLS to an endpoint outside the mesh (Envoy's `UpstreamTlsContext`). */
export interface UpstreamTls {
  /** `sni`; absent: no SNI. */
  readonly sni: string | undefined;
  /**
   * `validation_context`: `undefined` verifies nothing (no validation context, Envoy accepts any
   * certificate); `system` the default trust store; else the PEM CA bundle.
   */
  readonly trustedCa:
    | { readonly kind: 'system' }
    | { readonly kind: 'pem'; readonly pem: string }
    /** SDS `ROOTCA` (upstream's `ISTIO_MUTUAL`): the mesh roots the waypoint trusts. */
    | { readonly kind: 'mesh' }
    | undefined;
  /** `match_typed_subject_alt_names`/`match_subject_alt_names`: one must match a SAN; empty: any. */
  readonly subjectAltNames: readonly SanMatch[];
  /**
   * The client certificate: `tls_certificates[0]` inline (MUTUAL), or SDS `default` (upstream's
   * `ISTIO_MUTUAL`): the waypoint's own workload certificate, read per connection (rotation).
   */
  readonly clientCertificate:
    | { readonly kind: 'inline'; readonly certificateChain: string; readonly privateKey: string }
    | { readonly kind: 'workload' }
    | undefined;
  /** `alpn_protocols`; empty: none offered. */
  readonly alpn: readonly string[];
  /** A digest of all the above: pools are keyed by it. */
  readonly key: string;
}

/** One SAN matcher: the SAN type (`undefined`: any type) and an exact, prefix, suffix, contains or regex match. */
export interface SanMatch {
  readonly type: 'DNS' | 'URI' | 'IP_ADDRESS' | 'EMAIL' | undefined;
  readonly match:
    | {
        readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains';
        readonly value: string;
        readonly ignoreCase: boolean;
      }
    | { readonly kind: 'regex'; readonly regex: RegExp };
}

export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

/** Envoy's per-connection request limits of a cluster (HTTP/2 upstreams honour both). */
export interface ConnectionLimits {
  /** `common_http_protocol_options.max_requests_per_connection`; 0: unlimited. */
  readonly maxRequestsPerConnection: number;
  /** `http2_protocol_options.max_concurrent_streams` (Envoy's default 2147483647). */
  readonly maxConcurrentStreams: number;
}

/** Envoy's default `max_concurrent_streams`. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 2_147_483_647;

/** Envoy's `dns_lookup_family`. */
export type DnsLookupFamily = 'auto' | 'v4-only' | 'v6-only' | 'v4-preferred' | 'all';

/** One inline `load_assignment` endpoint of a DNS cluster: a hostname (or IP) and a port. */
export interface DnsHost {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

export type ClusterDiscovery =
  | { readonly kind: 'eds' | 'static' | 'original-dst' }
  | {
      readonly kind: 'dns';
      /** `STRICT_DNS`: every resolved address is an endpoint; `LOGICAL_DNS`: the first address of the first host. */
      readonly mode: 'strict' | 'logical';
      readonly hosts: readonly DnsHost[];
      readonly family: DnsLookupFamily;
      /** `dns_refresh_rate` (Envoy's default 5 s). */
      readonly refreshMs: number;
    };

/** The destination workload, from endpoint metadata `istio.workload` (`name;ns;canonical;rev;cluster`). */
export interface EndpointWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** The HBONE next hop, `hboneAddress:hbonePort` (default `address:15008`); the CONNECT authority is `address:port`. */
  readonly hboneAddress: string;
  readonly hbonePort: number;
  readonly weight: number;
  readonly healthy: boolean;
  /** The SPIFFE identity the destination must present (endpoint metadata `istio.identity`). */
  readonly identity: string | undefined;
  readonly workload: EndpointWorkload | undefined;
  /**
   * Outside the mesh (endpoints of `dns` and `original-dst` clusters): plain TCP to
   * `address:port`, no HBONE. Absent or false: HBONE.
   */
  readonly plaintext?: boolean;
  /** A `plaintext` endpoint reached over TLS (its cluster's `upstreamTls`). */
  readonly tls?: UpstreamTls;
}

export interface EndpointSet {
  readonly name: string;
  readonly version: string;
  readonly endpoints: readonly Endpoint[];
}

/** Everything the waypoint knows, as one immutable snapshot. */
export interface WaypointConfig {
  readonly listeners: ReadonlyMap<string, ListenerConfig>;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  readonly endpoints: ReadonlyMap<string, EndpointSet>;
}

export const EMPTY_HEADER_MODS: HeaderMods = Object.freeze({ add: [], remove: [] });

/** A conversion's result: a value, or every problem found. */
export type Converted<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly string[] };
