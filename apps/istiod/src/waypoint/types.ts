/**
 * Domain types of the waypoint's L7 configuration: validated HTTPRoute/GRPCRoute rules (also the
 * target shape of a VirtualService), DestinationRule traffic policies and AuthorizationPolicies
 * that target a waypoint or a Service. Inputs are Kubernetes objects of unknown shape; the
 * validators in `validate-*.ts` turn them into these or into typed errors.
 */

/** A Kubernetes Service, the unit a waypoint serves. */
export interface ServiceKey {
  readonly namespace: string;
  readonly name: string;
}

/** A waypoint: a Gateway of class `istio-waypoint` (or `istio` for an ingress). */
export interface WaypointKey {
  readonly namespace: string;
  readonly name: string;
}

export function keyString(k: ServiceKey | WaypointKey): string {
  return `${k.namespace}/${k.name}`;
}

export type StringMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';

export interface PathMatch {
  readonly type: StringMatchType;
  readonly value: string;
}

export interface ValueMatch {
  readonly type: 'Exact' | 'RegularExpression' | 'Prefix';
  readonly name: string;
  readonly value: string;
}

/** One `matches[]` entry: every present field must hold. */
export interface RouteMatch {
  readonly path?: PathMatch;
  readonly headers: readonly ValueMatch[];
  readonly queryParams: readonly ValueMatch[];
  readonly method?: string;
}

export interface HeaderModifier {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface PathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly value: string;
}

export type RouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly modifier: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly modifier: HeaderModifier }
  | {
      readonly type: 'RequestRedirect';
      readonly scheme?: string;
      readonly hostname?: string;
      readonly path?: PathModifier;
      readonly port?: number;
      readonly statusCode: number;
    }
  | { readonly type: 'URLRewrite'; readonly hostname?: string; readonly path?: PathModifier }
  | { readonly type: 'RequestMirror'; readonly backend: BackendTarget; readonly percent: number };

/** A Service port, possibly a DestinationRule subset of it. */
export interface BackendTarget {
  readonly service: ServiceKey;
  readonly port: number;
  readonly subset?: string;
  /**
   * A ServiceEntry host (a `networking.istio.io` `Hostname` backendRef): `service` is then the
   * entry's key, and the cluster is the entry's `inbound-vip|<port>|<proto>|<host>`.
   */
  readonly host?: string;
}

/** Header changes for one backend (HTTPRoute `backendRefs[].filters`). */
export interface BackendHeaderFilters {
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
}

export interface WeightedBackend extends BackendTarget, BackendHeaderFilters {
  readonly weight: number;
}

export interface RetryPolicy {
  readonly attempts: number;
  /** HTTP status codes to retry on (Gateway API `codes`). */
  readonly codes: readonly number[];
  /** Envoy `retry_on` conditions (Istio `retryOn`), besides the codes. */
  readonly retryOn: readonly string[];
  readonly backoffMs?: number;
  readonly perTryTimeoutMs?: number;
}

export interface FaultPolicy {
  readonly delay?: { readonly fixedDelayMs: number; readonly percent: number };
  readonly abort?: { readonly httpStatus: number; readonly percent: number };
}

export interface RouteRule {
  /** `namespace/name` of the route object and the rule's index: the Envoy route name. */
  readonly name: string;
  readonly matches: readonly RouteMatch[];
  readonly filters: readonly RouteFilter[];
  /** Backends that resolved; an empty list with `unresolved` set answers 500, as upstream. */
  readonly backends: readonly WeightedBackend[];
  /** True when some backendRef did not resolve (its share of traffic gets a 500). */
  readonly unresolvedWeight: number;
  readonly requestTimeoutMs?: number;
  readonly backendTimeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly fault?: FaultPolicy;
}

/** `TLSRoute`: ingress Gateways only (TLS passthrough listeners). */
export type RouteKind = 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'TLSRoute' | 'VirtualService';

/** What a route attaches to: a Service (GAMMA) or the waypoint Gateway itself. */
export type ParentTarget =
  | { readonly kind: 'Service'; readonly service: ServiceKey; readonly port?: number }
  | { readonly kind: 'Gateway'; readonly waypoint: WaypointKey; readonly sectionName?: string };

export interface ParentRefInput {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly port?: number;
  readonly sectionName?: string;
}

/** A route after structural validation, before its backends are resolved against the cluster. */
export interface ValidRoute {
  readonly kind: RouteKind;
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  readonly parentRefs: readonly ParentRefInput[];
  readonly hostnames: readonly string[];
  readonly rules: readonly RawRouteRule[];
}

export interface BackendRefInput extends BackendHeaderFilters {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly port?: number;
  readonly weight: number;
  readonly subset?: string;
}

/** A rule before resolution: backendRefs as written. */
export interface RawRouteRule extends Omit<RouteRule, 'backends' | 'unresolvedWeight' | 'filters' | 'name'> {
  readonly index: number;
  readonly backendRefs: readonly BackendRefInput[];
  readonly filters: readonly RawRouteFilter[];
}

export type RawRouteFilter =
  | Exclude<RouteFilter, { type: 'RequestMirror' }>
  | { readonly type: 'RequestMirror'; readonly backendRef: BackendRefInput; readonly percent: number };

// DestinationRule.

export type SimpleLb = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'UNSPECIFIED';

export type ConsistentHash =
  | { readonly kind: 'header'; readonly header: string; readonly minimumRingSize?: number }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly path?: string;
      readonly ttlMs?: number;
      readonly minimumRingSize?: number;
    }
  | { readonly kind: 'sourceIp'; readonly minimumRingSize?: number }
  | { readonly kind: 'queryParameter'; readonly name: string; readonly minimumRingSize?: number };

export interface LoadBalancerPolicy {
  readonly simple?: SimpleLb;
  readonly consistentHash?: ConsistentHash;
}

export interface ConnectionPool {
  readonly maxConnections?: number;
  readonly connectTimeoutMs?: number;
  readonly http1MaxPendingRequests?: number;
  readonly http2MaxRequests?: number;
  readonly maxRequestsPerConnection?: number;
  readonly maxRetries?: number;
  readonly idleTimeoutMs?: number;
  /** `http.maxConcurrentStreams`: streams per HTTP/2 upstream connection. */
  readonly maxConcurrentStreams?: number;
}

export interface OutlierDetection {
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly intervalMs?: number;
  readonly baseEjectionTimeMs?: number;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

/** `ClientTLSSettings.mode`: `DISABLE` (plaintext, the default), `SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`. */
export type ClientTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

/** A DestinationRule's `trafficPolicy.tls` (`ClientTLSSettings`), as written. */
export interface ClientTls {
  readonly mode: ClientTlsMode;
  /** A Secret in the proxy's (the waypoint's) namespace with `ca.crt` (and `tls.crt`/`tls.key`). */
  readonly credentialName?: string;
  readonly sni?: string;
  readonly subjectAltNames: readonly string[];
  readonly insecureSkipVerify?: boolean;
  /** File paths on the proxy: a waypoint has none of its own (see the docs). */
  readonly caCertificates?: string;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
}

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerPolicy;
  readonly connectionPool?: ConnectionPool;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTls;
  /** `portLevelSettings`: per port, overriding the rule's groups (upstream's merge). */
  readonly portLevelSettings?: readonly PortTrafficPolicy[];
}

/** One `portLevelSettings` entry: the groups it sets apply to that port's clusters. */
export interface PortTrafficPolicy extends Omit<TrafficPolicy, 'portLevelSettings'> {
  readonly port: number;
}

export interface DestinationRuleSubset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface ValidDestinationRule {
  readonly namespace: string;
  readonly name: string;
  readonly creationTimestamp: string;
  /** The host as written (short names are qualified with the rule's namespace). */
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly DestinationRuleSubset[];
}

/** A field-level problem in an input object. */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

export type Validated<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly FieldIssue[] };
