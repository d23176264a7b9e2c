/**
 * The waypoint index: the single writer of every waypoint's Envoy resources.
 *
 * Informers feed it Kubernetes objects; it validates them into domain types, keeps reverse
 * indexes, and on each event recomputes only the waypoints the event can affect:
 *
 * | event                          | waypoints recomputed                                          |
 * |--------------------------------|---------------------------------------------------------------|
 * | HTTPRoute, GRPCRoute, TCPRoute,| those serving its old and new parent Services, ServiceEntries |
 * | VS                             | (HTTPRoute, GRPCRoute) or Gateway                             |
 * | DestinationRule                | those serving or routing to its host's Service                |
 * | AuthorizationPolicy            | its old and new targetRefs' waypoints (a GatewayClass: all)    |
 * | RequestAuthentication          | its old and new targetRefs' waypoints (a GatewayClass: all)    |
 * | Service                        | its old and new waypoint, and those routing to it              |
 * | Pod                            | those serving or routing to a Service selecting it             |
 * | Gateway                        | that waypoint                                                  |
 * | ServiceEntry                   | the waypoint it is bound to                                    |
 * | ReferenceGrant                 | every waypoint and ingress gateway (rare; grants cut across)   |
 * | a binding (`bindingsChanged`)  | the waypoints whose bound Services changed; ingress gateways  |
 * |                                | routing to a Service labelled `istio.io/ingress-use-waypoint` |
 * | Secret                         | the ingress gateways whose listeners refer to it              |
 * | Namespace                      | every ingress gateway (`allowedRoutes` selectors)              |
 *
 * Ingress gateways (Gateways of class `istio`, served to `router~` proxies) are computed here too,
 * keyed like waypoints by `namespace/name`: Listeners per port, RouteConfigurations from the
 * HTTPRoutes and GRPCRoutes attached to their listeners, `outbound|<port>||<host>` clusters
 * (`translate-ingress.ts`, `ingress-gateway.ts`). A Service they route to counts as referenced,
 * so its Service, pod and DestinationRule events recompute them as they do waypoints.
 *
 * Which Services a waypoint serves is not computed here: it is the WDS index's binding (what
 * ztunnels are told, `istio.io/WaypointBound=True`), read through `WaypointBindingSource`; the
 * composition root forwards its changes to `bindingsChanged`.
 *
 * Each resource is stored encoded, with a content version (a hash of its bytes): a recompute that
 * produces the same bytes changes nothing, and listeners hear only of waypoints whose resources
 * changed. Invalid objects are never programmed; their status results are kept for the status
 * writer (`routeStatus`, `issues`).
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import { GatewayClassName, Label, Port, REDIRECTION_ENABLED } from '@ambient-mesh/mesh-api';
import type { AuthorizationPolicy as ValidAuthorizationPolicy } from '@ambient-mesh/policy-engine';
import { validateAuthorizationPolicy } from '@ambient-mesh/policy-engine';
import type { ResourceChanges, VersionedResource } from '@ambient-mesh/xds';
import type { EndpointSlice, Gateway, KubeObject, Pod, Service } from '../kube/objects.ts';
import { mapSelectorMatches } from '../kube/objects.ts';
import { validateEndpointSlice, type ValidEndpointSlice } from '../wds/endpoint-slice.ts';
import { REDIRECTION_ANNOTATION, TUNNEL_LABEL, canonicalService, podWorkloadName } from '../wds/workload.ts';
import { WAYPOINT_CLASSES, type WaypointBindingSource } from './binding.ts';
import { ENVOY_TYPE_URLS, EnvoyType, EnvoyTypeUrls, encodeEnvoy, type EnvoyTypeUrl } from './envoy-protos.ts';
import { inboundVipName, serviceHostname } from './names.ts';
import {
  rejectedRouteStatus,
  resolveRoute,
  WaypointMessage,
  type ResolvedRoute,
  type RouteLookup,
  type RouteParentStatus,
  type ServiceInfo,
  type ServicePortInfo,
  type ServiceProtocol,
} from './resolve-route.ts';
import {
  buildCluster,
  buildIngressLoadAssignment,
  buildIngressWaypointLoadAssignment,
  buildLoadAssignment,
  hashPolicy,
  mergeTrafficPolicy,
} from './translate-cluster.ts';
import { ingressUseWaypoint, requestedWaypoint } from '../gateway/binding.ts';
import type { EndpointInput } from './translate-cluster.ts';
import {
  buildConnectTerminate,
  buildMainInternal,
  buildMainInternalCluster,
  type FilterChainInput,
  PLAINTEXT_HTTP_ALPNS,
} from './translate-listener.ts';
import { buildRbacFilters } from './translate-rbac.ts';
import {
  resolveWaypointAccessLog,
  resolveWaypointStats,
  telemetryProvidersOf,
} from './translate-telemetry.ts';
import type { TelemetryProviders } from './translate-telemetry.ts';
import { buildCustomFilters } from './translate-ext-authz.ts';
import type { CustomFilter, ProviderEntry, ServiceResolution } from './translate-ext-authz.ts';
import { buildJwtFilter, validateRequestAuthentication } from './translate-jwt.ts';
import {
  buildUpstreamTls,
  credentialFromSecretData,
  type CredentialResult,
} from './translate-upstream-tls.ts';
import {
  applyHttpFilterPatches,
  applyRoutePatches,
  envoyFilterSelects,
  orderEnvoyFilters,
  validateEnvoyFilter,
  type EnvoyFilterPatch,
  type HttpFilterValue,
  type SkippedPatch,
  type ValidEnvoyFilter,
} from './envoy-filter.ts';
import type { JwksLookup, ValidRequestAuthentication } from './translate-jwt.ts';
import { buildRouteConfiguration, type RouteTargetContext } from './translate-route.ts';
import {
  httpRouteName,
  httpsRouteName,
  ingressListeners,
  listenerAdmits,
  outboundClusterName,
  parentRefSelectsListener,
  passthroughChainName,
  routeHostnamesOnListener,
  type CertificateRef,
  type IngressListener,
} from './ingress-gateway.ts';
import {
  buildIngressListener,
  buildIngressRouteConfiguration,
  type IngressServer,
  type PassthroughChain,
  type PemCertificate,
} from './translate-ingress.ts';
import {
  buildServiceEntryCluster,
  entryPortProtocol,
  serviceEntryTargets,
} from './translate-service-entry.ts';
import { validateServiceEntry, type ValidServiceEntry } from '../wds/service-entry.ts';
import type {
  BackendTarget,
  FieldIssue,
  ParentRefInput,
  RouteKind,
  ServiceKey,
  TrafficPolicy,
  ValidDestinationRule,
  ValidRoute,
  WaypointKey,
} from './types.ts';
import { keyString } from './types.ts';
import {
  GATEWAY_GROUP,
  ISTIO_NETWORKING_GROUP,
  validateGrpcRoute,
  validateHttpRoute,
  validateTcpRoute,
  validateTlsRoute,
} from './validate-route.ts';
import { tcpRouteClusters, tcpRouteRule } from './translate-tcp-route.ts';
import { hostToService, validateDestinationRule, validateVirtualService } from './validate-istio.ts';
import { arr, rec, str } from './validate-support.ts';
import { resolveWaypointTracing, tracingProvidersOf, validateTelemetry } from './translate-tracing.ts';
import type { TracingProviders, ValidTelemetry } from './translate-tracing.ts';

export const WaypointKinds = {
  SERVICE: 'Service',
  POD: 'Pod',
  GATEWAY: 'Gateway',
  HTTP_ROUTE: 'HTTPRoute',
  GRPC_ROUTE: 'GRPCRoute',
  /** `gateway.networking.k8s.io/v1alpha2` TCPRoute (experimental channel): TCP ports' backends. */
  TCP_ROUTE: 'TCPRoute',
  /** v1alpha2 `TLSRoute`: ingress TLS passthrough listeners. */
  TLS_ROUTE: 'TLSRoute',
  REFERENCE_GRANT: 'ReferenceGrant',
  DESTINATION_RULE: 'DestinationRule',
  VIRTUAL_SERVICE: 'VirtualService',
  AUTHORIZATION_POLICY: 'AuthorizationPolicy',
  REQUEST_AUTHENTICATION: 'RequestAuthentication',
  /** `networking.istio.io/v1alpha3` EnvoyFilter: the local rate limiting subset (`envoy-filter.ts`). */
  ENVOY_FILTER: 'EnvoyFilter',
  SERVICE_ENTRY: 'ServiceEntry',
  /** The endpoints of a Service without a selector (hand-written slices). */
  ENDPOINT_SLICE: 'EndpointSlice',
  /** Namespace labels, for ingress listeners' `allowedRoutes.namespaces.selector`. */
  NAMESPACE: 'Namespace',
  /** TLS Secrets (`kubernetes.io/tls`), for ingress listeners' `certificateRefs` (and DestinationRule `credentialName`). */
  SECRET: 'Secret',
  /** Generic (`Opaque`) Secrets, for DestinationRule `tls.credentialName` (a CA in `ca.crt`/`cacert`). */
  CREDENTIAL_SECRET: 'CredentialSecret',
  /** `telemetry.istio.io` Telemetry: the waypoints' tracing (translate-tracing.ts). */
  TELEMETRY: 'Telemetry',
} as const;
export type WaypointKind = (typeof WaypointKinds)[keyof typeof WaypointKinds];
const KIND_SET: ReadonlySet<string> = new Set(Object.values(WaypointKinds));

export function isWaypointKind(kind: string): kind is WaypointKind {
  return KIND_SET.has(kind);
}

/** A waypoint's resources by type URL, then name. */
export type WaypointResources = ReadonlyMap<string, ReadonlyMap<string, VersionedResource<Uint8Array>>>;

/** One change: the waypoints whose resources changed, and the names per type URL. */
export interface WaypointChange {
  readonly waypoints: ReadonlySet<string>;
  readonly changes: ResourceChanges;
}

export interface WaypointIndexOptions {
  /** Cluster DNS suffix, e.g. `cluster.local`. */
  readonly domain: string;
  readonly hbonePort?: number;
  /** For endpoint metadata (`istio.workload`'s cluster, `istio.identity`); default `Kubernetes`, `cluster.local`. */
  readonly clusterId?: string;
  readonly trustDomain?: string;
  /** The mesh root namespace: its policies may target a GatewayClass (every waypoint of it). */
  readonly rootNamespace?: string;
  /**
   * Which Services each waypoint serves: the WDS index's bindings
   * (`bindingSourceFrom(gatewaySide.bindings)`); forward their changes to `bindingsChanged`.
   */
  readonly bindings: WaypointBindingSource;
  /** Called when an object is invalid (not programmed) or becomes valid again (`errors` empty). */
  readonly onIssues?: (kind: WaypointKind, key: string, errors: readonly FieldIssue[]) => void;
  /** Called with a route's parent status whenever it is (re)computed. */
  readonly onRouteStatus?: (kind: RouteKind, key: string, parents: readonly RouteParentStatus[]) => void;
  /** Called when a route (HTTPRoute, GRPCRoute) was deleted. */
  readonly onRouteDeleted?: (kind: RouteKind, key: string) => void;
  /**
   * istiod's key sets for `jwksUri` (inlined as `local_jwks`, upstream's default); without it a
   * `jwksUri` becomes `remote_jwks` (`PILOT_JWT_ENABLE_REMOTE_JWKS=true`).
   */
  readonly jwksFor?: JwksLookup;
  /** An EnvoyFilter patch could not be applied to a waypoint's chain (it was left out). */
  readonly onPatchSkipped?: (waypoint: string, skipped: SkippedPatch) => void;
  /** meshConfig's ext_authz `extensionProviders` (read at each compute), for CUSTOM policies. */
  readonly extAuthzProviders?: () => ReadonlyMap<string, ProviderEntry>;
  /** CUSTOM policies of a waypoint whose provider is unknown or invalid (they deny what they match). */
  readonly onExtAuthzIssues?: (waypoint: string, issues: readonly string[]) => void;
  /**
   * The DestinationRule TLS settings (origination to ServiceEntry hosts) a waypoint cannot honour:
   * those clusters are left out. Called when the list changes (empty: all resolved).
   */
  readonly onTlsIssues?: (waypoint: string, issues: readonly string[]) => void;
  /** A resource failed to encode (a translator bug): the old resource stays. */
  readonly onEncodeError?: (waypoint: string, name: string, message: string) => void;
  /** meshConfig as parsed (its `extensionProviders`, `defaultProviders`); see `setMeshConfig`. */
  readonly meshConfig?: Readonly<Record<string, unknown>>;
  /** A waypoint's tracing names a provider it cannot use (none is configured then). */
  readonly onTracingProblem?: (waypoint: string, message: string) => void;
  /** A waypoint's access logging or metrics name a provider it cannot use (left out). */
  readonly onTelemetryProblem?: (waypoint: string, message: string) => void;
}

interface RouteEntry {
  readonly kind: RouteKind;
  readonly key: string;
  readonly valid: ValidRoute | undefined;
  readonly parentRefs: readonly ParentRefInput[];
}

interface AuthnEntry {
  readonly policy: ValidRequestAuthentication;
  /** `Gateway:ns/name`, `Service:ns/name` or `GatewayClass:root/name`. */
  readonly targets: readonly string[];
}

interface PolicyEntry {
  readonly policy: ValidAuthorizationPolicy;
  /** `Gateway:ns/name` or `Service:ns/name`. */
  readonly targets: readonly string[];
}

type ResourceMap = Map<string, VersionedResource<Uint8Array>>;

/** Why an ingress Gateway listener is not programmed (upstream's listener condition reasons). */
export interface IngressListenerIssue {
  readonly reason: string;
  readonly message: string;
}

const INGRESS_CLASS: string = GatewayClassName.ingress;

interface IngressTarget {
  readonly target: BackendTarget;
  readonly protocol: ServiceProtocol;
  /** A TLS passthrough backend: a TCP cluster (the stream is relayed as is). */
  readonly tcp?: boolean;
}

function isIngress(gw: Gateway | undefined): gw is Gateway {
  return gw?.spec.gatewayClassName === INGRESS_CLASS;
}

function objKey(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

function version(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
}

const GRPC_PROTOCOLS = new Set(['grpc', 'grpc-web', 'http2', 'h2c', 'kubernetes.io/h2c']);
const TCP_PROTOCOLS = ['tcp', 'tls', 'mongo', 'mysql', 'redis', 'https'];

/** A Service port's protocol by `appProtocol`, else by its name's prefix (`grpc-*`, `http2-*`). */
export function portProtocol(name: string, appProtocol: string | undefined): ServiceProtocol {
  const p = (appProtocol ?? name.split('-')[0] ?? '').toLowerCase();
  if (GRPC_PROTOCOLS.has(p)) return 'grpc';
  if (TCP_PROTOCOLS.includes(p)) return 'tcp';
  return 'http';
}

/** Protocols a port may declare (by `appProtocol` or a name prefix); anything else is sniffed. */
const KNOWN_PROTOCOLS: ReadonlySet<string> = new Set([...GRPC_PROTOCOLS, ...TCP_PROTOCOLS, 'http', 'udp']);

/**
 * Whether a port declares no protocol (upstream's "auto"): no known `appProtocol`, and a name
 * without a known protocol prefix. A waypoint sniffs such a port's inner stream.
 */
export function undeclaredProtocol(name: string, appProtocol: string | undefined): boolean {
  return !KNOWN_PROTOCOLS.has((appProtocol ?? name.split('-')[0] ?? '').toLowerCase());
}

/** Whether a port declares plain HTTP (`appProtocol: http`, or a name `http` / `http-*`). */
export function declaresHttp1(name: string, appProtocol: string | undefined): boolean {
  return (appProtocol ?? name.split('-')[0] ?? '').toLowerCase() === 'http';
}

export class WaypointIndex {
  readonly #opts: WaypointIndexOptions;
  readonly #bindings: WaypointBindingSource;
  readonly #services = new Map<string, Service>();
  readonly #servicesByNs = new Map<string, Set<string>>();
  readonly #pods = new Map<string, Pod>();
  readonly #podsByNs = new Map<string, Set<string>>();
  /** Pod keys by pod IP (a selector-less Service's slice addresses are looked up here). */
  readonly #podsByIp = new Map<string, Set<string>>();
  /** Valid EndpointSlices by their Service (`namespace/name`), then slice key. */
  readonly #slicesByService = new Map<string, Map<string, ValidEndpointSlice>>();
  /** The Service of each stored slice (slice key → `namespace/name`). */
  readonly #sliceService = new Map<string, string>();
  readonly #gateways = new Map<string, Gateway>();
  readonly #routes = new Map<string, RouteEntry>();
  readonly #routesByService = new Map<string, Set<string>>();
  readonly #routesByGateway = new Map<string, Set<string>>();
  /** Routes whose parentRef is a ServiceEntry (`networking.istio.io`), by the entry's `namespace/name`. */
  readonly #routesByEntry = new Map<string, Set<string>>();
  readonly #grants = new Map<string, KubeObject>();
  readonly #rules = new Map<string, ValidDestinationRule>();
  readonly #rulesByService = new Map<string, Set<string>>();
  readonly #policies = new Map<string, PolicyEntry>();
  readonly #policiesByTarget = new Map<string, Set<string>>();
  readonly #authns = new Map<string, AuthnEntry>();
  readonly #envoyFilters = new Map<string, ValidEnvoyFilter>();
  readonly #telemetries = new Map<string, ValidTelemetry>();
  #tracingProviders: TracingProviders = tracingProvidersOf({});
  #tracingKey = '';
  #telemetryProviders: TelemetryProviders = telemetryProvidersOf({});
  readonly #authnsByTarget = new Map<string, Set<string>>();
  /** Valid ServiceEntries by `namespace/name` (invalid ones are reported by the WDS side). */
  readonly #entries = new Map<string, ValidServiceEntry>();
  readonly #computed = new Map<string, Map<string, ResourceMap>>();
  /** Service key → waypoints whose resources refer to it (serve it or route to it). */
  readonly #refs = new Map<string, Set<string>>();
  readonly #refsOf = new Map<string, Set<string>>();
  readonly #listeners: ((change: WaypointChange) => void)[] = [];
  readonly #issues = new Map<string, readonly FieldIssue[]>();
  readonly #routeStatus = new Map<string, readonly RouteParentStatus[]>();
  /** Namespace labels by name. */
  readonly #namespaces = new Map<string, Readonly<Record<string, string>>>();
  /** TLS Secrets by `namespace/name`. */
  readonly #secrets = new Map<string, KubeObject>();
  /** Generic Secrets by `namespace/name` (DestinationRule `credentialName`). */
  readonly #credentials = new Map<string, KubeObject>();
  /** DestinationRule keys by their host as written (ServiceEntry hosts are looked up here). */
  readonly #rulesByHost = new Map<string, Set<string>>();
  /** Per waypoint, its TLS origination problems as last reported. */
  readonly #tlsIssues = new Map<string, string>();
  /** Ingress Gateway → its clusters' targets as last computed (for endpoint-only recomputes). */
  readonly #ingressTargets = new Map<string, ReadonlyMap<string, IngressTarget>>();
  /** Ingress Gateway → its listeners that are not programmed, by listener name. */
  readonly #ingressIssues = new Map<string, ReadonlyMap<string, IngressListenerIssue>>();

  constructor(opts: WaypointIndexOptions) {
    this.#opts = opts;
    if (opts.meshConfig !== undefined) this.#setTracingProviders(opts.meshConfig);
    this.#bindings = opts.bindings;
  }

  // Reads.

  get bindings(): WaypointBindingSource {
    return this.#bindings;
  }

  service(key: ServiceKey): Service | undefined {
    return this.#services.get(keyString(key));
  }

  services(): Iterable<Service> {
    return this.#services.values();
  }

  gateway(key: WaypointKey): Gateway | undefined {
    return this.#gateways.get(keyString(key));
  }

  /** The resources of one waypoint (`namespace/name`) for one type URL. */
  resourcesFor(waypoint: string, typeUrl: string): ReadonlyMap<string, VersionedResource<Uint8Array>> {
    return this.#computed.get(waypoint)?.get(typeUrl) ?? EMPTY;
  }

  /**
   * The listeners of an ingress Gateway (`namespace/name`) that are not programmed, and why
   * (`InvalidCertificateRef`, `RefNotPermitted`, `UnsupportedProtocol`, ...), as last computed.
   */
  ingressListenerIssues(gateway: string): ReadonlyMap<string, IngressListenerIssue> {
    return this.#ingressIssues.get(gateway) ?? new Map();
  }

  /** Waypoints with computed resources. */
  waypoints(): string[] {
    return [...this.#computed.keys()];
  }

  /** The status of a route (`kind`, `namespace/name`), as last computed. */
  routeStatus(kind: RouteKind, key: string): readonly RouteParentStatus[] | undefined {
    return this.#routeStatus.get(`${kind}/${key}`);
  }

  /** Validation errors of an object that is not programmed (`kind`, `namespace/name`). */
  issues(kind: WaypointKind, key: string): readonly FieldIssue[] | undefined {
    return this.#issues.get(`${kind}/${key}`);
  }

  onChange(listener: (change: WaypointChange) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i !== -1) this.#listeners.splice(i, 1);
    };
  }

  // Writes.

  upsert(kind: WaypointKind, obj: KubeObject): WaypointChange {
    return this.#mutate(kind, obj, false);
  }

  delete(kind: WaypointKind, obj: KubeObject): WaypointChange {
    return this.#mutate(kind, obj, true);
  }

  #mutate(kind: WaypointKind, obj: KubeObject, deleted: boolean): WaypointChange {
    const dirty = new Set<string>();
    const key = objKey(obj);
    switch (kind) {
      case 'Service':
        this.#serviceEvent(key, obj, deleted, dirty);
        break;
      case 'Pod':
        this.#podEvent(key, obj, deleted, dirty);
        break;
      case 'Gateway':
        if (deleted) this.#gateways.delete(key);
        else this.#gateways.set(key, obj as Gateway);
        dirty.add(key);
        break;
      case 'ReferenceGrant':
        if (deleted) this.#grants.delete(key);
        else this.#grants.set(key, obj);
        this.#allWaypoints(dirty);
        break;
      case 'Namespace': {
        const name = obj.metadata?.name ?? '';
        if (deleted) this.#namespaces.delete(name);
        else this.#namespaces.set(name, obj.metadata?.labels ?? {});
        this.#allIngress(dirty);
        break;
      }
      case 'Secret':
        if (deleted) this.#secrets.delete(key);
        else this.#secrets.set(key, obj);
        this.#ingressUsingSecret(key, dirty);
        this.#rulesUsingSecret(key, dirty);
        break;
      case 'CredentialSecret': {
        // Only Secrets that can be a credential are kept (istiod sees every Opaque Secret).
        const data = rec(rec(obj).data);
        const usable = CREDENTIAL_KEYS.some(k => typeof data[k] === 'string');
        const had = this.#credentials.delete(key);
        if (!deleted && usable) this.#credentials.set(key, obj);
        if (had || usable) this.#rulesUsingSecret(key, dirty);
        break;
      }
      case 'HTTPRoute':
      case 'GRPCRoute':
      case 'TCPRoute':
      case 'TLSRoute':
      case 'VirtualService':
        this.#routeEvent(kind, key, obj, deleted, dirty);
        break;
      case 'DestinationRule':
        this.#ruleEvent(key, obj, deleted, dirty);
        break;
      case 'AuthorizationPolicy':
        this.#policyEvent(key, obj, deleted, dirty);
        break;
      case 'RequestAuthentication':
        this.#authnEvent(key, obj, deleted, dirty);
        break;
      case 'EnvoyFilter':
        this.#envoyFilterEvent(key, obj, deleted, dirty);
        break;
      case 'ServiceEntry':
        this.#entryEvent(key, obj, deleted, dirty);
        break;
      case 'Telemetry':
        this.#telemetryEvent(key, obj, deleted, dirty);
        break;
      case 'EndpointSlice':
        this.#sliceEvent(key, obj, deleted, dirty);
        break;
    }
    // A pod or slice changes only endpoints: an ingress gateway rebuilds just its ClusterLoadAssignments.
    return this.#recompute(dirty, kind === 'Pod' || kind === 'EndpointSlice');
  }

  #setTracingProviders(mesh: Readonly<Record<string, unknown>>): boolean {
    const next = tracingProvidersOf(mesh);
    const telemetry = telemetryProvidersOf(mesh);
    this.#telemetryProviders = telemetry;
    const key = JSON.stringify([
      [...next.providers],
      [...next.unsupported],
      next.defaults,
      [...telemetry.accessLog],
      [...telemetry.prometheus],
      [...telemetry.declared],
      telemetry.defaultAccessLogging,
      telemetry.defaultMetrics,
      telemetry.accessLogFile,
    ]);
    if (key === this.#tracingKey) return false;
    this.#tracingKey = key;
    this.#tracingProviders = next;
    return true;
  }

  /** A new meshConfig: every waypoint is recomputed when its tracing providers changed. */
  setMeshConfig(mesh: Readonly<Record<string, unknown>>): WaypointChange {
    if (!this.#setTracingProviders(mesh)) return this.#recompute(new Set());
    return this.recomputeAll();
  }

  #telemetryEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    // Any Telemetry may be a root or namespace default: every waypoint is recomputed (they are few).
    const had = this.#telemetries.delete(key);
    const issueKey = `Telemetry/${key}`;
    if (deleted) {
      if (this.#issues.delete(issueKey)) this.#opts.onIssues?.('Telemetry', key, []);
      if (had) this.#allWaypoints(dirty);
      return;
    }
    const result = validateTelemetry(obj);
    if (!result.ok) {
      const errors = result.problems.map(p => ({ path: 'spec', message: p }));
      this.#issues.set(issueKey, errors);
      this.#opts.onIssues?.('Telemetry', key, errors);
    } else {
      if (this.#issues.delete(issueKey)) this.#opts.onIssues?.('Telemetry', key, []);
      this.#telemetries.set(key, result.value);
    }
    if (had || result.ok) this.#allWaypoints(dirty);
  }

  /** Recomputes waypoints whose bound Services changed in the `WaypointBindingSource`. */
  bindingsChanged(waypoints: Iterable<string>): WaypointChange {
    const dirty = new Set(waypoints);
    // An ingress gateway sends to the waypoint of a Service labelled
    // `istio.io/ingress-use-waypoint`: its endpoints follow that Service's binding.
    for (const [k, gw] of this.#gateways) {
      if (!isIngress(gw)) continue;
      for (const svc of this.#refsOf.get(k) ?? [])
        if (ingressUseWaypoint(this.#services.get(svc)?.metadata?.labels).enabled) {
          dirty.add(k);
          break;
        }
    }
    return this.#recompute(dirty);
  }

  /** The `jwksUri`s of the RequestAuthentications that target waypoints now. */
  jwksUris(): Set<string> {
    const out = new Set<string>();
    for (const { policy } of this.#authns.values())
      for (const r of policy.rules) if (r.jwks === undefined && r.jwksUri !== undefined) out.add(r.jwksUri);
    return out;
  }

  /** Recomputes the waypoints of the RequestAuthentications using `uri` (its key set changed). */
  jwksChanged(uri: string): WaypointChange {
    const dirty = new Set<string>();
    for (const { policy, targets } of this.#authns.values())
      if (policy.rules.some(r => r.jwks === undefined && r.jwksUri === uri))
        this.#touchTargets(targets, dirty);
    return this.#recompute(dirty);
  }

  /** Recomputes every waypoint (after the first sync, or for tests and benchmarks). */
  recomputeAll(): WaypointChange {
    const dirty = new Set<string>();
    this.#allWaypoints(dirty);
    return this.#recompute(dirty);
  }

  #allWaypoints(dirty: Set<string>): void {
    for (const k of this.#computed.keys()) dirty.add(k);
    for (const [k, gw] of this.#gateways)
      if (WAYPOINT_CLASSES.has(gw.spec.gatewayClassName) || isIngress(gw)) dirty.add(k);
  }

  #allIngress(dirty: Set<string>): void {
    for (const [k, gw] of this.#gateways) if (isIngress(gw)) dirty.add(k);
  }

  #ingressUsingSecret(secret: string, dirty: Set<string>): void {
    for (const [k, gw] of this.#gateways) {
      if (!isIngress(gw)) continue;
      const ns = gw.metadata?.namespace ?? '';
      const uses = gw.spec.listeners.some(l => {
        const refs = rec(l.tls).certificateRefs;
        return (Array.isArray(refs) ? refs : []).some(r => {
          const ref = rec(r);
          return `${str(ref.namespace) ?? ns}/${str(ref.name) ?? ''}` === secret;
        });
      });
      if (uses) dirty.add(k);
    }
  }

  #addBinding(svc: ServiceKey, dirty: Set<string>): void {
    const wp = this.#bindings.waypointFor(svc);
    if (wp !== undefined) dirty.add(keyString(wp));
  }

  /** The waypoints of the ServiceEntries with a host `ruleHost` names (exact or `*.suffix`). */
  #entriesOfHost(ruleHost: string, dirty: Set<string>): void {
    for (const [k, entry] of this.#entries) {
      if (!entry.hosts.some(h => ruleHostMatches(ruleHost, h))) continue;
      const [namespace = '', name = ''] = k.split('/');
      this.#addEntryBinding({ namespace, name }, dirty);
    }
  }

  /** A Secret changed: the waypoints whose DestinationRules name it in `tls.credentialName`. */
  #rulesUsingSecret(secret: string, dirty: Set<string>): void {
    const name = secret.slice(secret.indexOf('/') + 1);
    for (const dr of this.#rules.values()) {
      const names = [dr.trafficPolicy?.tls, ...(dr.trafficPolicy?.portLevelSettings ?? []).map(p => p.tls)]
        .map(t => t?.credentialName)
        .filter(n => n !== undefined);
      if (names.some(n => n === name || `${n}-cacert` === name)) this.#entriesOfHost(dr.host, dirty);
    }
  }

  /** The oldest DestinationRule for a ServiceEntry host (exact host first, then the longest wildcard). */
  #entryRule(host: string): ValidDestinationRule | undefined {
    const oldest = (keys: Iterable<string>): ValidDestinationRule | undefined => {
      let best: ValidDestinationRule | undefined;
      for (const k of keys) {
        const dr = this.#rules.get(k);
        if (dr !== undefined && (best === undefined || dr.creationTimestamp < best.creationTimestamp))
          best = dr;
      }
      return best;
    };
    const exact = oldest(this.#rulesByHost.get(host) ?? []);
    if (exact !== undefined) return exact;
    const wildcards = [...this.#rulesByHost.keys()]
      .filter(h => h.startsWith('*') && ruleHostMatches(h, host))
      .sort((a, b) => b.length - a.length);
    for (const w of wildcards) {
      const dr = oldest(this.#rulesByHost.get(w) ?? []);
      if (dr !== undefined) return dr;
    }
    return undefined;
  }

  /** The `credentialName` Secret of a waypoint in `namespace` (upstream: the proxy's namespace). */
  #credential(namespace: string, name: string): CredentialResult {
    const find = (n: string): KubeObject | undefined =>
      this.#credentials.get(`${namespace}/${n}`) ?? this.#secrets.get(`${namespace}/${n}`);
    const secret = find(name);
    const cacert = find(`${name}-cacert`);
    if (secret === undefined && cacert === undefined)
      return { ok: false, message: `Secret ${namespace}/${name} not found` };
    return credentialFromSecretData(
      rec(rec(secret).data),
      cacert === undefined ? undefined : rec(rec(cacert).data),
      {
        certificate: pem => {
          try {
            new X509Certificate(pem);
            return undefined;
          } catch (err) {
            return errorMessage(err);
          }
        },
        keyPair: (cert, key) => {
          try {
            const x = new X509Certificate(cert);
            if (!x.checkPrivateKey(createPrivateKey(key))) return 'tls.key does not match tls.crt';
            return undefined;
          } catch (err) {
            return `tls.crt/tls.key: ${errorMessage(err)}`;
          }
        },
      },
    );
  }

  #addEntryBinding(entry: ServiceKey, dirty: Set<string>): void {
    const wp = this.#bindings.waypointForEntry?.(entry);
    if (wp !== undefined) dirty.add(keyString(wp));
  }

  #entryEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const [namespace = '', name = ''] = key.split('/');
    // Its binding is the WDS index's: a change of it arrives through `bindingsChanged`.
    this.#addEntryBinding({ namespace, name }, dirty);
    this.#entries.delete(key);
    if (deleted) return;
    const v = validateServiceEntry(obj as Parameters<typeof validateServiceEntry>[0]);
    if (v.ok) this.#entries.set(key, v.value);
  }

  #addRefs(svcKey: string, dirty: Set<string>): void {
    for (const w of this.#refs.get(svcKey) ?? []) dirty.add(w);
  }

  #serviceEvent(key: string, svc: Service, deleted: boolean, dirty: Set<string>): void {
    const [namespace = '', name = ''] = key.split('/');
    // Its binding is the WDS index's: a change of it arrives through `bindingsChanged`.
    this.#addBinding({ namespace, name }, dirty);
    if (deleted) {
      this.#services.delete(key);
      removeFrom(this.#servicesByNs, namespace, key);
    } else {
      this.#services.set(key, svc);
      addTo(this.#servicesByNs, namespace, key);
    }
    this.#addRefs(key, dirty);
  }

  #sliceEvent(key: string, slice: EndpointSlice, deleted: boolean, dirty: Set<string>): void {
    const before = this.#sliceService.get(key);
    if (before !== undefined) {
      const slices = this.#slicesByService.get(before);
      slices?.delete(key);
      if (slices?.size === 0) this.#slicesByService.delete(before);
      this.#sliceService.delete(key);
      this.#addRefs(before, dirty);
    }
    if (deleted) return;
    // Invalid slices (no Service label, FQDN) are the WDS index's to report; here they are ignored.
    const v = validateEndpointSlice(slice);
    if (!v.ok) return;
    const svcKey = `${v.value.namespace}/${v.value.serviceName}`;
    const slices = this.#slicesByService.get(svcKey) ?? new Map<string, ValidEndpointSlice>();
    slices.set(key, v.value);
    this.#slicesByService.set(svcKey, slices);
    this.#sliceService.set(key, svcKey);
    this.#addRefs(svcKey, dirty);
  }

  #podEvent(key: string, pod: Pod, deleted: boolean, dirty: Set<string>): void {
    const ns = pod.metadata?.namespace ?? '';
    const old = this.#pods.get(key);
    const oldIp = old?.status?.podIP;
    if (oldIp !== undefined && oldIp !== '') removeFrom(this.#podsByIp, oldIp, key);
    if (deleted) {
      this.#pods.delete(key);
      removeFrom(this.#podsByNs, ns, key);
    } else {
      this.#pods.set(key, pod);
      addTo(this.#podsByNs, ns, key);
      const ip = pod.status?.podIP;
      if (ip !== undefined && ip !== '') addTo(this.#podsByIp, ip, key);
    }
    // A selector-less Service listing the pod's address: its endpoint's mesh membership may change.
    const ips = new Set(
      [oldIp, pod.status?.podIP].filter((ip): ip is string => ip !== undefined && ip !== ''),
    );
    if (ips.size > 0)
      for (const [svcKey, slices] of this.#slicesByService)
        if ([...slices.values()].some(sl => sl.endpoints.some(e => ips.has(e.address))))
          this.#addRefs(svcKey, dirty);
    for (const svcKey of this.#servicesByNs.get(ns) ?? []) {
      const svc = this.#services.get(svcKey);
      if (svc === undefined || !this.#refs.has(svcKey)) continue;
      const sel = svc.spec?.selector;
      if (
        mapSelectorMatches(sel, pod.metadata?.labels ?? {}) ||
        (old !== undefined && mapSelectorMatches(sel, old.metadata?.labels ?? {}))
      )
        this.#addRefs(svcKey, dirty);
    }
  }

  #parentWaypoints(refs: readonly ParentRefInput[], dirty: Set<string>): void {
    for (const p of refs) {
      if (p.kind === 'Service') this.#addBinding({ namespace: p.namespace, name: p.name }, dirty);
      else if (p.kind === 'Gateway') dirty.add(`${p.namespace}/${p.name}`);
      else if (p.kind === 'ServiceEntry')
        this.#addEntryBinding({ namespace: p.namespace, name: p.name }, dirty);
    }
  }

  #routeEvent(kind: RouteKind, key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const id = `${kind}/${key}`;
    const old = this.#routes.get(id);
    if (old !== undefined) {
      this.#parentWaypoints(old.parentRefs, dirty);
      for (const p of old.parentRefs) {
        if (p.kind === 'Service') removeFrom(this.#routesByService, `${p.namespace}/${p.name}`, id);
        else if (p.kind === 'ServiceEntry') removeFrom(this.#routesByEntry, `${p.namespace}/${p.name}`, id);
        else removeFrom(this.#routesByGateway, `${p.namespace}/${p.name}`, id);
      }
      this.#routes.delete(id);
    }
    if (deleted) {
      this.#issues.delete(id);
      this.#routeStatus.delete(id);
      if (kind !== 'VirtualService') this.#opts.onRouteDeleted?.(kind, key);
      return;
    }
    const result =
      kind === 'HTTPRoute'
        ? validateHttpRoute(obj)
        : kind === 'GRPCRoute'
          ? validateGrpcRoute(obj)
          : kind === 'TCPRoute'
            ? validateTcpRoute(obj)
            : kind === 'TLSRoute'
              ? validateTlsRoute(obj)
              : validateVirtualService(obj, this.#opts.domain);
    let parentRefs: readonly ParentRefInput[];
    if (result.ok) {
      parentRefs = result.value.parentRefs;
      if (this.#issues.delete(id)) this.#opts.onIssues?.(kind, key, []);
    } else {
      // Keep the parents so the status can say why, and so the old config is withdrawn.
      parentRefs = kind === 'VirtualService' ? [] : readParentRefsLoosely(obj);
      this.#issues.set(id, result.errors);
      this.#opts.onIssues?.(kind, key, result.errors);
      const status = rejectedRouteStatus(
        parentRefs,
        Number(rec(rec(obj).metadata).generation ?? 0) || 0,
        result.errors,
      );
      this.#routeStatus.set(id, status);
      this.#opts.onRouteStatus?.(kind, key, status);
    }
    const entry: RouteEntry = { kind, key, valid: result.ok ? result.value : undefined, parentRefs };
    this.#routes.set(id, entry);
    for (const p of parentRefs) {
      if (p.kind === 'Service' && (p.group === '' || p.group === 'core'))
        addTo(this.#routesByService, `${p.namespace}/${p.name}`, id);
      else if (p.kind === 'Gateway' && p.group === GATEWAY_GROUP)
        addTo(this.#routesByGateway, `${p.namespace}/${p.name}`, id);
      else if (p.kind === 'ServiceEntry' && p.group === ISTIO_NETWORKING_GROUP && kind !== 'TCPRoute')
        addTo(this.#routesByEntry, `${p.namespace}/${p.name}`, id);
    }
    this.#parentWaypoints(parentRefs, dirty);
  }

  #ruleEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const old = this.#rules.get(key);
    if (old !== undefined) {
      removeFrom(this.#rulesByHost, old.host, key);
      this.#entriesOfHost(old.host, dirty);
      const svc = this.#ruleService(old);
      if (svc !== undefined) {
        removeFrom(this.#rulesByService, svc, key);
        this.#addRefs(svc, dirty);
        const [namespace = '', name = ''] = svc.split('/');
        this.#addBinding({ namespace, name }, dirty);
      }
      this.#rules.delete(key);
    }
    if (deleted) {
      this.#issues.delete(`DestinationRule/${key}`);
      return;
    }
    const result = validateDestinationRule(obj);
    if (!result.ok) {
      this.#issues.set(`DestinationRule/${key}`, result.errors);
      this.#opts.onIssues?.('DestinationRule', key, result.errors);
      return;
    }
    if (this.#issues.delete(`DestinationRule/${key}`)) this.#opts.onIssues?.('DestinationRule', key, []);
    this.#rules.set(key, result.value);
    addTo(this.#rulesByHost, result.value.host, key);
    this.#entriesOfHost(result.value.host, dirty);
    const svc = this.#ruleService(result.value);
    if (svc !== undefined) {
      addTo(this.#rulesByService, svc, key);
      this.#addRefs(svc, dirty);
      const [namespace = '', name = ''] = svc.split('/');
      this.#addBinding({ namespace, name }, dirty);
    }
  }

  #ruleService(dr: ValidDestinationRule): string | undefined {
    const svc = hostToService(dr.host, dr.namespace, this.#opts.domain);
    return svc === undefined ? undefined : keyString(svc);
  }

  #policyEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const old = this.#policies.get(key);
    const touch = (targets: readonly string[]): void => {
      for (const t of targets) {
        const [kind, ns = '', name = ''] = t.split(/[:/]/);
        if (kind === 'Gateway') dirty.add(`${ns}/${name}`);
        else if (kind === 'GatewayClass') this.#allWaypoints(dirty);
        else if (kind === 'ServiceEntry') this.#addEntryBinding({ namespace: ns, name }, dirty);
        else this.#addBinding({ namespace: ns, name }, dirty);
      }
    };
    if (old !== undefined) {
      touch(old.targets);
      for (const t of old.targets) removeFrom(this.#policiesByTarget, t, key);
      this.#policies.delete(key);
    }
    if (deleted) return;
    const spec = rec(rec(obj).spec);
    const refs: unknown[] = [
      ...arr(spec.targetRefs),
      ...(spec.targetRef !== undefined ? [spec.targetRef] : []),
    ];
    if (refs.length === 0) return; // Selector policies are ztunnel's (WDS), not the waypoint's.
    const result = validateAuthorizationPolicy(obj);
    if (!result.ok) {
      this.#issues.set(
        `AuthorizationPolicy/${key}`,
        result.errors.map(e => ({ path: e.path, message: e.message })),
      );
      return;
    }
    this.#issues.delete(`AuthorizationPolicy/${key}`);
    const targets = this.#targetsOf(refs, result.value.metadata.namespace);
    const entry: PolicyEntry = { policy: result.value, targets };
    this.#policies.set(key, entry);
    for (const t of targets) addTo(this.#policiesByTarget, t, key);
    touch(targets);
  }

  #targetsOf(refs: readonly unknown[], ns: string): string[] {
    return refs.flatMap(r => {
      const t = rec(r);
      const kind = str(t.kind) ?? '';
      const name = str(t.name) ?? '';
      const tns = str(t.namespace) ?? ns;
      if (name === '') return [];
      if (kind === 'Gateway' || kind === 'Service' || kind === 'ServiceEntry')
        return [`${kind}:${tns}/${name}`];
      // A GatewayClass target counts only for a policy in the root namespace, as upstream.
      if (kind === 'GatewayClass' && ns === (this.#opts.rootNamespace ?? 'istio-system'))
        return [`${kind}:${ns}/${name}`];
      return [];
    });
  }

  #touchTargets(targets: readonly string[], dirty: Set<string>): void {
    for (const t of targets) {
      const [kind, ns = '', name = ''] = t.split(/[:/]/);
      if (kind === 'Gateway') dirty.add(`${ns}/${name}`);
      else if (kind === 'GatewayClass') this.#allWaypoints(dirty);
      else if (kind === 'ServiceEntry') this.#addEntryBinding({ namespace: ns, name }, dirty);
      else this.#addBinding({ namespace: ns, name }, dirty);
    }
  }

  #authnEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const old = this.#authns.get(key);
    if (old !== undefined) {
      this.#touchTargets(old.targets, dirty);
      for (const t of old.targets) removeFrom(this.#authnsByTarget, t, key);
      this.#authns.delete(key);
    }
    if (deleted) {
      if (this.#issues.delete(`RequestAuthentication/${key}`))
        this.#opts.onIssues?.('RequestAuthentication', key, []);
      return;
    }
    const spec = rec(rec(obj).spec);
    const refs: unknown[] = [
      ...arr(spec.targetRefs),
      ...(spec.targetRef !== undefined ? [spec.targetRef] : []),
    ];
    if (refs.length === 0) return; // Selector policies are for sidecars, not waypoints.
    const result = validateRequestAuthentication(obj);
    if (!result.ok) {
      this.#issues.set(`RequestAuthentication/${key}`, result.errors);
      this.#opts.onIssues?.('RequestAuthentication', key, result.errors);
      return;
    }
    if (this.#issues.delete(`RequestAuthentication/${key}`))
      this.#opts.onIssues?.('RequestAuthentication', key, []);
    const targets = this.#targetsOf(refs, result.value.namespace);
    this.#authns.set(key, { policy: result.value, targets });
    for (const t of targets) addTo(this.#authnsByTarget, t, key);
    this.#touchTargets(targets, dirty);
  }

  /** EnvoyFilters are rare and select by labels or namespace: any change recomputes every waypoint. */
  #envoyFilterEvent(key: string, obj: KubeObject, deleted: boolean, dirty: Set<string>): void {
    const had = this.#envoyFilters.delete(key);
    const issueKey = `EnvoyFilter/${key}`;
    if (deleted) {
      if (this.#issues.delete(issueKey)) this.#opts.onIssues?.('EnvoyFilter', key, []);
    } else {
      const { value, issues } = validateEnvoyFilter(obj);
      if (issues.length > 0) {
        this.#issues.set(issueKey, issues);
        this.#opts.onIssues?.('EnvoyFilter', key, issues);
      } else if (this.#issues.delete(issueKey)) this.#opts.onIssues?.('EnvoyFilter', key, []);
      if (value !== undefined && value.patches.length > 0) this.#envoyFilters.set(key, value);
    }
    if (had || this.#envoyFilters.has(key)) this.#allWaypoints(dirty);
  }

  /** The EnvoyFilter patches for waypoint `wp`, in Istio's order. */
  #envoyFilterPatches(wp: string, gw: Gateway): EnvoyFilterPatch[] {
    if (this.#envoyFilters.size === 0) return [];
    const [namespace = '', name = ''] = wp.split('/');
    const infra = (gw.spec as { infrastructure?: { labels?: Record<string, string> } }).infrastructure;
    const podLabels = { ...infra?.labels, 'gateway.networking.k8s.io/gateway-name': name };
    const root = this.#opts.rootNamespace ?? 'istio-system';
    const selected = [...this.#envoyFilters.values()].filter(f =>
      envoyFilterSelects(f, { namespace, name, podLabels }, root),
    );
    return orderEnvoyFilters(selected, root).flatMap(f => f.patches);
  }

  #authnsFor(
    wp: string,
    svc: ServiceKey,
    kind: 'Service' | 'ServiceEntry' = 'Service',
  ): ValidRequestAuthentication[] {
    const root = this.#opts.rootNamespace ?? 'istio-system';
    const gatewayClass = this.#gateways.get(wp)?.spec.gatewayClassName ?? '';
    const keys = new Set([
      ...(this.#authnsByTarget.get(`GatewayClass:${root}/${gatewayClass}`) ?? []),
      ...(this.#authnsByTarget.get(`Gateway:${wp}`) ?? []),
      ...(this.#authnsByTarget.get(`${kind}:${keyString(svc)}`) ?? []),
    ]);
    return [...keys].sort().flatMap(k => {
      const p = this.#authns.get(k);
      return p === undefined ? [] : [p.policy];
    });
  }

  // Compute.

  #recompute(dirty: ReadonlySet<string>, endpointsOnly = false): WaypointChange {
    const changed = new Set<string>();
    const changes = new Map<string, Set<string>>();
    for (const wp of dirty) {
      const names =
        endpointsOnly && this.#ingressTargets.has(wp) && isIngress(this.#gateways.get(wp))
          ? this.#computeIngressEndpoints(wp)
          : this.#computeWaypoint(wp);
      if (names.size === 0) continue;
      changed.add(wp);
      for (const [t, set] of names) {
        let all = changes.get(t);
        if (all === undefined) changes.set(t, (all = new Set()));
        for (const n of set) all.add(n);
      }
    }
    if (!endpointsOnly) this.#unservedRouteStatuses();
    const change: WaypointChange = { waypoints: changed, changes };
    if (changed.size > 0) for (const l of this.#listeners) l(change);
    return change;
  }

  #serviceInfo(key: ServiceKey): ServiceInfo | undefined {
    const svc = this.#services.get(keyString(key));
    if (svc === undefined) return undefined;
    const spec = svc.spec ?? {};
    const vips = (spec.clusterIPs ?? (spec.clusterIP !== undefined ? [spec.clusterIP] : [])).filter(
      ip => ip !== '' && ip !== 'None',
    );
    return {
      key,
      hostname: serviceHostname(key.namespace, key.name, this.#opts.domain),
      vips,
      ports: (spec.ports ?? []).map(p => ({
        port: p.port,
        name: p.name ?? '',
        targetPort: p.targetPort ?? p.port,
        protocol: portProtocol(p.name ?? '', p.appProtocol),
        http1: declaresHttp1(p.name ?? '', p.appProtocol),
        ...(undeclaredProtocol(p.name ?? '', p.appProtocol) ? { undeclared: true } : {}),
      })),
      selector: spec.selector,
    };
  }

  /** The cluster lookups of route resolution; `hosts`: `Hostname` backendRefs (ServiceEntry hosts) too (waypoints only). */
  #lookup(hosts = false): RouteLookup {
    return {
      service: k => this.#serviceInfo(k),
      referenceGrantAllows: (fromKind, fromNs, to) => this.#grantAllows(fromKind, fromNs, 'Service', to),
      ...(hosts ? { hostname: (host: string, port: number | undefined) => this.#entryHost(host, port) } : {}),
    };
  }

  /** The ServiceEntry (oldest key first) with `host` and `port` (its only port when not given). */
  #entryHost(host: string, port: number | undefined): { entry: ServiceKey; port: number } | undefined {
    for (const key of [...this.#entries.keys()].sort()) {
      const e = this.#entries.get(key)!;
      if (!e.hosts.includes(host)) continue;
      const p =
        port === undefined
          ? e.ports.length === 1
            ? e.ports[0]
            : undefined
          : e.ports.find(x => x.number === port);
      if (p === undefined) continue;
      const [namespace = '', name = ''] = key.split('/');
      return { entry: { namespace, name }, port: p.number };
    }
    return undefined;
  }

  /** The cluster of a ServiceEntry host backend: the entry's `inbound-vip` name (built where the entry is served). */
  #entryHostCluster(t: BackendTarget & { host: string }): string {
    const p = this.#entries.get(keyString(t.service))?.ports.find(x => x.number === t.port);
    return inboundVipName(t.port, entryPortProtocol(p?.protocol ?? ''), t.host);
  }

  /** True when a ReferenceGrant in `to.namespace` lets `fromKind` objects of `fromNs` refer to it. */
  #grantAllows(fromKind: string, fromNs: string, toKind: 'Service' | 'Secret', to: ServiceKey): boolean {
    for (const grant of this.#grants.values()) {
      if (grant.metadata?.namespace !== to.namespace) continue;
      const spec = rec(rec(grant).spec);
      const fromOk = (Array.isArray(spec.from) ? spec.from : []).some(f => {
        const r = rec(f);
        return r.group === GATEWAY_GROUP && r.kind === fromKind && r.namespace === fromNs;
      });
      if (!fromOk) continue;
      const toOk = (Array.isArray(spec.to) ? spec.to : []).some(t => {
        const r = rec(t);
        return (
          (r.group === '' || r.group === 'core' || r.group === undefined) &&
          r.kind === toKind &&
          (r.name === undefined || r.name === to.name)
        );
      });
      if (toOk) return true;
    }
    return false;
  }

  /**
   * Upstream's `ResolvedWaypoints` message for a Service or ServiceEntry parent that names no
   * waypoint (neither it nor its namespace carries `istio.io/use-waypoint`), or that is missing.
   */
  #waypointError(ref: ParentRefInput): string | undefined {
    const key = `${ref.namespace}/${ref.name}`;
    if (ref.kind === 'Service') {
      const svc = this.#services.get(key);
      if (svc === undefined) return WaypointMessage.noMatchingParent;
      const nsLabels = this.#namespaces.get(ref.namespace);
      const ns = nsLabels === undefined ? undefined : { metadata: { name: ref.namespace, labels: nsLabels } };
      return requestedWaypoint(svc, ns) === undefined ? WaypointMessage.missingLabel : undefined;
    }
    if (ref.kind === 'ServiceEntry' && ref.group === ISTIO_NETWORKING_GROUP) {
      if (!this.#entries.has(key)) return WaypointMessage.noMatchingParent;
      const wp = this.#bindings.waypointForEntry?.({ namespace: ref.namespace, name: ref.name });
      return wp === undefined ? WaypointMessage.missingLabel : undefined;
    }
    return undefined;
  }

  /** A Service or ServiceEntry parent no waypoint serves (so no waypoint resolves its routes). */
  #unservedMeshParent(ref: ParentRefInput): boolean {
    const key = { namespace: ref.namespace, name: ref.name };
    if (ref.kind === 'Service') return this.#bindings.waypointFor(key) === undefined;
    if (ref.kind === 'ServiceEntry') return this.#bindings.waypointForEntry?.(key) === undefined;
    return false;
  }

  /**
   * The status of the valid routes no waypoint or gateway resolves: each parent a Service or
   * ServiceEntry that no waypoint serves. Upstream writes it too, its `ResolvedWaypoints` saying
   * why the route is not respected. Reported only when it changed.
   */
  #unservedRouteStatuses(): void {
    for (const [id, e] of this.#routes) {
      if (e.valid === undefined || e.kind === 'VirtualService' || e.kind === 'TLSRoute') continue;
      if (e.parentRefs.length === 0 || !e.parentRefs.every(p => this.#unservedMeshParent(p))) continue;
      const r = resolveRoute(
        e.valid,
        this.#lookup(true),
        ref => this.#parentExists(ref),
        ref => this.#waypointError(ref),
      );
      const before = this.#routeStatus.get(id);
      if (before !== undefined && JSON.stringify(before) === JSON.stringify(r.parents)) continue;
      this.#routeStatus.set(id, r.parents);
      this.#opts.onRouteStatus?.(e.kind, e.key, r.parents);
    }
  }

  #parentExists(ref: ParentRefInput): boolean {
    if (ref.kind === 'Service') return this.#services.has(`${ref.namespace}/${ref.name}`);
    if (ref.kind === 'ServiceEntry')
      return ref.group === ISTIO_NETWORKING_GROUP && this.#entries.has(`${ref.namespace}/${ref.name}`);
    return this.#gateways.has(`${ref.namespace}/${ref.name}`);
  }

  /**
   * Routes attached to one Service port of a waypoint: Gateway API routes, else VirtualServices;
   * on a TCP port only TCPRoutes, on an HTTP port no TCPRoute.
   */
  #routesFor(
    wp: string,
    info: ServiceInfo,
    port: ServicePortInfo,
    resolved: Map<string, ResolvedRoute>,
  ): ResolvedRoute[] {
    const svcKey = keyString(info.key);
    const ids = new Set<string>();
    const wantTcp = port.protocol === 'tcp';
    for (const id of this.#routesByService.get(svcKey) ?? []) {
      const e = this.#routes.get(id);
      // A TLSRoute is programmed on ingress TLS listeners only, never as a waypoint's route.
      if (e?.valid === undefined || e.kind === 'TLSRoute' || (e.kind === 'TCPRoute') !== wantTcp) continue;
      const attaches = e.parentRefs.some(
        p =>
          p.kind === 'Service' &&
          `${p.namespace}/${p.name}` === svcKey &&
          (p.port === undefined || p.port === port.port),
      );
      if (attaches) ids.add(id);
    }
    for (const id of this.#routesByGateway.get(wp) ?? []) {
      const e = this.#routes.get(id);
      // A TLSRoute is programmed on ingress TLS listeners only, never as a waypoint's route.
      if (e?.valid === undefined || e.kind === 'TLSRoute' || (e.kind === 'TCPRoute') !== wantTcp) continue;
      const hosts = e.valid.hostnames;
      if (hosts.length === 0 || hosts.some(h => hostMatches(h, info))) ids.add(id);
    }
    const out: ResolvedRoute[] = [];
    const gatewayApi = [...ids].some(id => !id.startsWith('VirtualService/'));
    for (const id of ids) {
      if (gatewayApi && id.startsWith('VirtualService/')) continue;
      if (wantTcp && id.startsWith('VirtualService/')) continue;
      out.push(this.#resolved(id, resolved));
    }
    return out;
  }

  /** Resolves a route once per compute and reports its status. */
  #resolved(id: string, resolved: Map<string, ResolvedRoute>): ResolvedRoute {
    let r = resolved.get(id);
    if (r === undefined) {
      const e = this.#routes.get(id)!;
      r = resolveRoute(
        e.valid!,
        this.#lookup(true),
        ref => this.#parentExists(ref),
        ref => this.#waypointError(ref),
      );
      resolved.set(id, r);
      this.#routeStatus.set(id, r.parents);
      if (e.kind !== 'VirtualService') this.#opts.onRouteStatus?.(e.kind, e.key, r.parents);
    }
    return r;
  }

  /**
   * The TCPRoutes naming a Service (or this waypoint) that no TCP port took: resolved for their
   * status only (a TCPRoute on an HTTP port is accepted and ignored, as upstream's VirtualService).
   */
  #tcpRoutesForStatus(ids: Iterable<string>, resolved: Map<string, ResolvedRoute>): void {
    for (const id of ids) {
      const e = this.#routes.get(id);
      if (e?.valid !== undefined && e.kind === 'TCPRoute' && !resolved.has(id)) this.#resolved(id, resolved);
    }
  }

  /** HTTPRoutes and GRPCRoutes attached to one port of a ServiceEntry (GAMMA `parentRefs` kind ServiceEntry). */
  #entryRoutesFor(entryKey: ServiceKey, port: number, resolved: Map<string, ResolvedRoute>): ResolvedRoute[] {
    const key = keyString(entryKey);
    const out: ResolvedRoute[] = [];
    for (const id of [...(this.#routesByEntry.get(key) ?? [])].sort()) {
      const e = this.#routes.get(id);
      if (e?.valid === undefined) continue;
      const attaches = e.parentRefs.some(
        p =>
          p.kind === 'ServiceEntry' &&
          p.group === ISTIO_NETWORKING_GROUP &&
          `${p.namespace}/${p.name}` === key &&
          (p.port === undefined || p.port === port),
      );
      if (attaches) out.push(this.#resolved(id, resolved));
    }
    return out;
  }

  #destinationRule(svc: ServiceKey): ValidDestinationRule | undefined {
    let best: ValidDestinationRule | undefined;
    for (const k of this.#rulesByService.get(keyString(svc)) ?? []) {
      const dr = this.#rules.get(k);
      if (dr === undefined) continue;
      if (best === undefined || dr.creationTimestamp < best.creationTimestamp) best = dr;
    }
    return best;
  }

  #trafficPolicy(target: BackendTarget): {
    policy: TrafficPolicy;
    labels: Readonly<Record<string, string>> | undefined;
  } {
    const dr = this.#destinationRule(target.service);
    const subset = target.subset === undefined ? undefined : dr?.subsets.find(s => s.name === target.subset);
    return { policy: mergeTrafficPolicy(dr?.trafficPolicy, subset?.trafficPolicy), labels: subset?.labels };
  }

  #policiesFor(
    wp: string,
    svc: ServiceKey,
    kind: 'Service' | 'ServiceEntry' = 'Service',
  ): ValidAuthorizationPolicy[] {
    const root = this.#opts.rootNamespace ?? 'istio-system';
    const gatewayClass = this.#gateways.get(wp)?.spec.gatewayClassName ?? '';
    const keys = new Set([
      ...(this.#policiesByTarget.get(`GatewayClass:${root}/${gatewayClass}`) ?? []),
      ...(this.#policiesByTarget.get(`Gateway:${wp}`) ?? []),
      ...(this.#policiesByTarget.get(`${kind}:${keyString(svc)}`) ?? []),
    ]);
    return [...keys].flatMap(k => {
      const p = this.#policies.get(k);
      return p === undefined ? [] : [p.policy];
    });
  }

  /** CUSTOM policies' filters of one chain; their ext_authz clusters are added to `clustersOut`. */
  #customFilters(
    wp: string,
    policies: readonly ValidAuthorizationPolicy[],
    clustersOut: Map<string, { key: ServiceKey; port: number; http2: boolean }>,
  ): readonly CustomFilter[] {
    if (!policies.some(p => p.spec.action === 'CUSTOM')) return [];
    const keys = new Map<string, ServiceKey>();
    const resolve = (service: string, port: number): ServiceResolution => {
      const slash = service.indexOf('/');
      const host = slash >= 0 ? service.slice(slash + 1) : service;
      const suffix = `.svc.${this.#opts.domain}`;
      const parts = host.endsWith(suffix) ? host.slice(0, -suffix.length).split('.') : [];
      const key = parts.length === 2 ? { namespace: parts[1]!, name: parts[0]! } : undefined;
      if (key === undefined || (slash >= 0 && service.slice(0, slash) !== key.namespace))
        return {
          ok: false,
          error: `service ${service} is not a Kubernetes Service hostname (<name>.<namespace>${suffix})`,
        };
      const info = this.#serviceInfo(key);
      if (info === undefined) return { ok: false, error: `could not find service ${service}` };
      if (!info.ports.some(p => p.port === port))
        return { ok: false, error: `service ${service} has no port ${port}` };
      keys.set(`${info.hostname}:${port}`, key);
      return { ok: true, hostname: info.hostname };
    };
    const built = buildCustomFilters(policies, this.#opts.extAuthzProviders?.() ?? new Map(), resolve);
    for (const c of built.clusters)
      clustersOut.set(c.name, { key: keys.get(`${c.hostname}:${c.port}`)!, port: c.port, http2: c.http2 });
    if (built.issues.length > 0) this.#opts.onExtAuthzIssues?.(wp, built.issues);
    return built.filters;
  }

  #endpoints(
    info: ServiceInfo,
    port: ServicePortInfo,
    subsetLabels: Readonly<Record<string, string>> | undefined,
  ) {
    const out: EndpointInput[] = [];
    // The selector's pairs once (as `mapSelectorMatches`: an empty selector selects nothing).
    const selector = Object.entries(info.selector ?? {});
    if (selector.length === 0) return this.#sliceEndpoints(info, port, subsetLabels);
    for (const podKey of this.#podsByNs.get(info.key.namespace) ?? []) {
      const pod = this.#pods.get(podKey);
      const labels = pod?.metadata?.labels ?? {};
      if (pod === undefined || !selector.every(([k, v]) => labels[k] === v)) continue;
      if (subsetLabels !== undefined && !Object.entries(subsetLabels).every(([k, v]) => labels[k] === v))
        continue;
      if (pod.metadata?.deletionTimestamp !== undefined || pod.status?.phase !== 'Running') continue;
      const ip = pod.status.podIP;
      if (ip === undefined || ip === '') continue;
      let targetPort: number | undefined;
      if (typeof port.targetPort === 'number') targetPort = port.targetPort;
      else
        for (const c of pod.spec?.containers ?? [])
          for (const cp of c.ports ?? []) if (cp.name === port.targetPort) targetPort = cp.containerPort;
      if (targetPort === undefined) continue;
      const ready = pod.status.conditions?.find(c => c.type === 'Ready')?.status === 'True';
      out.push(this.#podEndpoint(pod, ip, targetPort, ready));
    }
    return out;
  }

  /**
   * The endpoints of a Service without a selector: the addresses of its EndpointSlices on the
   * slice port named as the Service port (as Kubernetes matches them). An address that is a pod
   * of the mesh is reached as that pod (HBONE, its identity); any other address plainly.
   */
  #sliceEndpoints(
    info: ServiceInfo,
    port: ServicePortInfo,
    subsetLabels: Readonly<Record<string, string>> | undefined,
  ): EndpointInput[] {
    const out: EndpointInput[] = [];
    const seen = new Set<string>();
    const slices = this.#slicesByService.get(`${info.key.namespace}/${info.key.name}`);
    for (const slice of [...(slices?.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name))) {
      const slicePort = slice.ports.find(p => p.name === port.name);
      if (slicePort === undefined) continue;
      for (const e of slice.endpoints) {
        const id = `${e.address}:${slicePort.port}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const pod = this.#livePodAt(e.address);
        const labels = pod?.metadata?.labels ?? {};
        if (subsetLabels !== undefined && !Object.entries(subsetLabels).every(([k, v]) => labels[k] === v))
          continue;
        if (pod !== undefined) out.push(this.#podEndpoint(pod, e.address, slicePort.port, e.ready));
        else
          out.push({
            ip: e.address,
            targetPort: slicePort.port,
            hbonePort: this.#opts.hbonePort ?? Port.hbone,
            healthy: e.ready,
            inMesh: false,
            external: true,
          });
      }
    }
    return out;
  }

  /** The running pod with IP `ip`, if any. */
  #livePodAt(ip: string): Pod | undefined {
    for (const key of this.#podsByIp.get(ip) ?? []) {
      const pod = this.#pods.get(key);
      if (pod?.metadata?.deletionTimestamp === undefined && pod?.status?.phase === 'Running') return pod;
    }
    return undefined;
  }

  /** One pod as an endpoint at `ip:targetPort` (HBONE when it is in the ambient mesh). */
  #podEndpoint(pod: Pod, ip: string, targetPort: number, ready: boolean): EndpointInput {
    const hbonePort = this.#opts.hbonePort ?? Port.hbone;
    const labels = pod.metadata?.labels ?? {};
    const workloadName = podWorkloadName(pod);
    const [canonicalName, canonicalRevision] = canonicalService(labels, workloadName);
    const ns = pod.metadata?.namespace ?? '';
    const annotations = pod.metadata?.annotations ?? {};
    const inMesh =
      annotations[REDIRECTION_ANNOTATION] === REDIRECTION_ENABLED ||
      (labels[TUNNEL_LABEL] ?? '').split(',').some(t => t.trim() === 'http');
    return {
      ip,
      targetPort,
      hbonePort,
      healthy: ready,
      inMesh,
      workload: [
        workloadName,
        ns,
        canonicalName,
        canonicalRevision,
        this.#opts.clusterId ?? 'Kubernetes',
      ].join(';'),
      identity: `spiffe://${this.#opts.trustDomain ?? 'cluster.local'}/ns/${ns}/sa/${pod.spec?.serviceAccountName ?? 'default'}`,
    };
  }

  /**
   * The endpoints an ingress gateway's cluster for a Service port gets (the ingress side of
   * `istio.io/ingress-use-waypoint`, as upstream's endpoint builder decides for a `router~`
   * proxy): when the Service's own label is `true` and it is bound to a waypoint, the waypoint's
   * pods at their HBONE port with the Service VIP and port as the tunnel destination; otherwise
   * the Service's backend pods (over HBONE when in the mesh, else directly). Undefined for an
   * unknown Service or port.
   */
  ingressLoadAssignment(
    clusterName: string,
    svc: ServiceKey,
    port: number,
    subsetLabels?: Readonly<Record<string, string>>,
  ): object | undefined {
    const info = this.#serviceInfo(svc);
    const portInfo = info?.ports.find(p => p.port === port);
    if (info === undefined || portInfo === undefined) return undefined;
    const wp = this.#ingressWaypoint(svc);
    const vip = info.vips[0];
    if (wp === undefined || vip === undefined)
      return buildIngressLoadAssignment(clusterName, this.#endpoints(info, portInfo, subsetLabels));
    const hbonePort = this.#opts.hbonePort ?? Port.hbone;
    const pods = this.#endpoints(
      {
        key: wp,
        hostname: serviceHostname(wp.namespace, wp.name, this.#opts.domain),
        vips: [],
        ports: [],
        selector: { [Label.gatewayName]: wp.name },
      },
      { port: hbonePort, name: 'mesh', targetPort: hbonePort, protocol: 'tcp' },
      undefined,
    );
    return buildIngressWaypointLoadAssignment(clusterName, pods, vip, port);
  }

  /** The waypoint an ingress gateway sends a Service's traffic to (`istio.io/ingress-use-waypoint`). */
  #ingressWaypoint(svc: ServiceKey): WaypointKey | undefined {
    const labels = this.#services.get(keyString(svc))?.metadata?.labels;
    if (!ingressUseWaypoint(labels).enabled) return undefined;
    return this.#bindings.waypointFor(svc);
  }

  /**
   * The filter chains of a TLS passthrough listener: one per hostname of each TLSRoute attached
   * to it (oldest route first; a hostname an older route took is not taken again), to the first
   * backend of the route's first rule that resolved.
   */
  #passthroughChains(
    l: IngressListener,
    gateway: { readonly namespace: string; readonly name: string },
    candidates: readonly { id: string; entry: RouteEntry; resolved: ResolvedRoute }[],
    out: PassthroughChain[],
    clusterFor: (t: BackendTarget, host: string) => string,
  ): void {
    const routes = candidates
      .filter(
        c =>
          c.entry.kind === 'TLSRoute' &&
          c.entry.parentRefs.some(p => parentRefSelectsListener(p, gateway, l)) &&
          listenerAdmits(l, gateway.namespace, 'TLSRoute', c.entry.valid!.namespace, ns =>
            this.#namespaces.get(ns),
          ),
      )
      .sort(
        (a, b) =>
          a.entry.valid!.creationTimestamp.localeCompare(b.entry.valid!.creationTimestamp) ||
          a.id.localeCompare(b.id),
      );
    const taken = new Set(out.map(c => c.serverNames.join() || '*'));
    for (const { entry, resolved } of routes) {
      const backend = resolved.rules.flatMap(r => r.backends).find(b => b.weight > 0);
      if (backend === undefined) continue;
      const info = this.#serviceInfo(backend.service);
      const host =
        info?.hostname ?? serviceHostname(backend.service.namespace, backend.service.name, this.#opts.domain);
      for (const h of routeHostnamesOnListener(l.hostname, entry.valid!.hostnames)) {
        if (taken.has(h)) continue;
        taken.add(h);
        out.push({
          name: passthroughChainName(l.name, entry.valid!.namespace, entry.valid!.name, h),
          serverNames: h === '*' ? [] : [h],
          cluster: clusterFor(backend, host),
        });
      }
    }
  }

  /** The certificates of an HTTPS listener (and its client CA when MUTUAL), or why it cannot be programmed. */
  #certificates(
    refs: readonly CertificateRef[],
    gatewayNamespace: string,
    mutual = false,
  ):
    | { ok: true; certificates: PemCertificate[]; clientCa?: Uint8Array }
    | { ok: false; issue: IngressListenerIssue } {
    if (refs.length === 0)
      return {
        ok: false,
        issue: { reason: 'InvalidCertificateRef', message: 'an HTTPS listener needs tls.certificateRefs' },
      };
    const certificates: PemCertificate[] = [];
    for (const ref of refs) {
      const what = `certificateRef ${ref.namespace}/${ref.name}`;
      if ((ref.group !== '' && ref.group !== 'core') || ref.kind !== 'Secret')
        return {
          ok: false,
          issue: {
            reason: 'InvalidCertificateRef',
            message: `${what}: unsupported group "${ref.group}" kind "${ref.kind}" (only core Secrets)`,
          },
        };
      if (
        ref.namespace !== gatewayNamespace &&
        !this.#grantAllows('Gateway', gatewayNamespace, 'Secret', {
          namespace: ref.namespace,
          name: ref.name,
        })
      )
        return {
          ok: false,
          issue: {
            reason: 'RefNotPermitted',
            message: `${what} is not accessible to a Gateway in namespace "${gatewayNamespace}" (missing a ReferenceGrant?)`,
          },
        };
      const secret = this.#secrets.get(`${ref.namespace}/${ref.name}`);
      if (secret === undefined)
        return {
          ok: false,
          issue: {
            reason: 'InvalidCertificateRef',
            message: `${what}: Secret not found (of type kubernetes.io/tls?)`,
          },
        };
      const parsed = tlsSecretPem(secret);
      if (!parsed.ok)
        return {
          ok: false,
          issue: { reason: 'InvalidCertificateRef', message: `${what}: ${parsed.message}` },
        };
      certificates.push(parsed.value);
    }
    if (!mutual) return { ok: true, certificates };
    const first = refs[0]!;
    const ca = caSecretPem(this.#secrets.get(`${first.namespace}/${first.name}`)!);
    if (!ca.ok)
      return {
        ok: false,
        issue: {
          reason: 'InvalidCertificateRef',
          message: `certificateRef ${first.namespace}/${first.name}: MUTUAL needs a CA: ${ca.message}`,
        },
      };
    return { ok: true, certificates, clientCa: ca.value };
  }

  /** Builds an ingress gateway's Listeners, RouteConfigurations, Clusters and endpoints into `next`. */
  #computeIngress(
    gwKey: string,
    gw: Gateway,
    next: Map<string, Map<string, object>>,
    referenced: Set<string>,
  ): void {
    const [namespace = '', name = ''] = gwKey.split('/');
    const listenerOut = next.get(EnvoyTypeUrls.listener)!;
    const routeOut = next.get(EnvoyTypeUrls.routeConfiguration)!;
    const clusterOut = next.get(EnvoyTypeUrls.cluster)!;
    const claOut = next.get(EnvoyTypeUrls.clusterLoadAssignment)!;
    const { listeners, skipped } = ingressListeners(gw);
    const issues = new Map<string, IngressListenerIssue>(
      skipped.map(s => [s.name, { reason: s.reason, message: s.message }]),
    );
    // Every valid route naming this Gateway is resolved (and its status reported, as for waypoints).
    const candidates: { id: string; entry: RouteEntry; resolved: ResolvedRoute }[] = [];
    for (const id of [...(this.#routesByGateway.get(gwKey) ?? [])].sort()) {
      const entry = this.#routes.get(id);
      if (entry?.valid === undefined || entry.kind === 'VirtualService') continue;
      const resolved = resolveRoute(
        entry.valid,
        this.#lookup(),
        ref => this.#parentExists(ref),
        ref => this.#waypointError(ref),
      );
      this.#routeStatus.set(id, resolved.parents);
      this.#opts.onRouteStatus?.(entry.kind, entry.key, resolved.parents);
      candidates.push({ id, entry, resolved });
    }
    const targets = new Map<string, IngressTarget>();
    const targetContext = (port: number): RouteTargetContext => ({
      port,
      clusterFor: t => {
        const info = this.#serviceInfo(t.service);
        const protocol = info?.ports.find(p => p.port === t.port)?.protocol ?? 'http';
        const host =
          info?.hostname ?? serviceHostname(t.service.namespace, t.service.name, this.#opts.domain);
        const cname = outboundClusterName(t.port, host, t.subset);
        if (!targets.has(cname)) targets.set(cname, { target: t, protocol });
        return cname;
      },
      hashPolicyFor: t => hashPolicy(this.#trafficPolicy(t).policy.loadBalancer?.consistentHash),
    });
    const attachedHosts = (l: IngressListener): Map<string, Map<string, ResolvedRoute>> => {
      const hosts = new Map<string, Map<string, ResolvedRoute>>();
      for (const { id, entry, resolved } of candidates) {
        if (!entry.parentRefs.some(p => parentRefSelectsListener(p, { namespace, name }, l))) continue;
        if (!listenerAdmits(l, namespace, entry.kind, entry.valid!.namespace, ns => this.#namespaces.get(ns)))
          continue;
        for (const h of routeHostnamesOnListener(l.hostname, entry.valid!.hostnames)) {
          let m = hosts.get(h);
          if (m === undefined) hosts.set(h, (m = new Map<string, ResolvedRoute>()));
          m.set(id, resolved);
        }
      }
      return hosts;
    };
    const asLists = (hosts: Map<string, Map<string, ResolvedRoute>>): Map<string, ResolvedRoute[]> =>
      new Map([...hosts].map(([h, m]) => [h, [...m.values()]]));
    const httpPorts = new Map<number, Map<string, Map<string, ResolvedRoute>>>();
    const httpsPorts = new Map<number, IngressServer[]>();
    const tlsPorts = new Map<number, PassthroughChain[]>();
    // Tracing as for a waypoint (Telemetries of the root namespace, the Gateway's namespace, and
    // those whose targetRefs name the Gateway); spans name the gateway's Deployment `<name>-istio`.
    const traced = resolveWaypointTracing(
      { namespace, name, serviceName: `${name}-istio.${namespace}` },
      this.#opts.rootNamespace ?? 'istio-system',
      this.#telemetries.values(),
      this.#tracingProviders,
    );
    if (traced.kind === 'problem') this.#opts.onTracingProblem?.(gwKey, traced.message);
    const tracing = traced.kind === 'tracing' ? traced.tracing.hcm : undefined;
    if (traced.kind === 'tracing') clusterOut.set(traced.tracing.cluster.name, traced.tracing.cluster);
    for (const l of listeners) {
      if (l.protocol === 'TLS') {
        const chains = tlsPorts.get(l.port) ?? [];
        tlsPorts.set(l.port, chains);
        this.#passthroughChains(l, { namespace, name }, candidates, chains, (t, host) => {
          const cname = outboundClusterName(t.port, host, t.subset);
          if (!targets.has(cname)) targets.set(cname, { target: t, protocol: 'tcp', tcp: true });
          return cname;
        });
        continue;
      }
      if (l.protocol === 'HTTP') {
        let merged = httpPorts.get(l.port);
        if (merged === undefined)
          httpPorts.set(l.port, (merged = new Map<string, Map<string, ResolvedRoute>>()));
        for (const [h, routes] of attachedHosts(l)) {
          let m = merged.get(h);
          if (m === undefined) merged.set(h, (m = new Map<string, ResolvedRoute>()));
          for (const [id, r] of routes) m.set(id, r);
        }
        continue;
      }
      const servers = httpsPorts.get(l.port) ?? [];
      const serverNames = l.hostname === undefined ? [] : [l.hostname];
      if (servers.some(s => s.serverNames.join() === serverNames.join())) {
        issues.set(l.name, {
          reason: 'HostnameConflict',
          message: `another HTTPS listener on port ${l.port} already serves ${l.hostname ?? 'every hostname'}`,
        });
        continue;
      }
      const certs = this.#certificates(l.certificateRefs, namespace, l.mutual);
      if (!certs.ok) {
        issues.set(l.name, certs.issue);
        continue;
      }
      const routeConfigName = httpsRouteName(l.port, name, l.name, namespace);
      routeOut.set(
        routeConfigName,
        buildIngressRouteConfiguration(
          routeConfigName,
          l.port,
          asLists(attachedHosts(l)),
          targetContext(l.port),
        ),
      );
      servers.push({
        listener: l.name,
        serverNames,
        routeConfigName,
        certificates: certs.certificates,
        ...(certs.clientCa === undefined ? {} : { clientCa: certs.clientCa }),
      });
      httpsPorts.set(l.port, servers);
    }
    for (const [port, hosts] of httpPorts) {
      const routeConfigName = httpRouteName(port);
      routeOut.set(
        routeConfigName,
        buildIngressRouteConfiguration(routeConfigName, port, asLists(hosts), targetContext(port)),
      );
      const l = buildIngressListener({ protocol: 'HTTP', port, routeConfigName }, tracing) as {
        name: string;
      };
      listenerOut.set(l.name, l);
    }
    for (const [port, servers] of httpsPorts) {
      // TLS passthrough listeners of the same port share its Listener.
      const passthrough = tlsPorts.get(port) ?? [];
      tlsPorts.delete(port);
      const l = buildIngressListener({ protocol: 'HTTPS', port, servers, passthrough }, tracing) as {
        name: string;
      };
      listenerOut.set(l.name, l);
    }
    for (const [port, chains] of tlsPorts) {
      if (chains.length === 0) continue;
      const l = buildIngressListener({ protocol: 'TLS', port, chains }) as { name: string };
      listenerOut.set(l.name, l);
    }
    for (const [cname, { target, protocol, tcp }] of targets) {
      referenced.add(keyString(target.service));
      const wp = this.#ingressWaypoint(target.service);
      // The waypoint's pods (selected by its Service) count too: their events recompute this.
      if (wp !== undefined) referenced.add(keyString(wp));
      const { policy } = this.#trafficPolicy(target);
      clusterOut.set(
        cname,
        buildCluster({ name: cname, trafficPolicy: policy, http2: protocol === 'grpc', tcp: tcp === true }),
      );
      claOut.set(cname, this.#ingressClusterLoadAssignment(cname, target));
    }
    this.#ingressTargets.set(gwKey, targets);
    if (issues.size === 0) this.#ingressIssues.delete(gwKey);
    else this.#ingressIssues.set(gwKey, issues);
  }

  #ingressClusterLoadAssignment(cname: string, target: BackendTarget): object {
    const { labels } = this.#trafficPolicy(target);
    return (
      this.ingressLoadAssignment(cname, target.service, target.port, labels) ??
      buildIngressLoadAssignment(cname, [])
    );
  }

  /**
   * Rebuilds only an ingress gateway's ClusterLoadAssignments (a pod event: its Listeners, routes
   * and clusters cannot change), for the clusters of its last full compute.
   */
  #computeIngressEndpoints(gwKey: string): Map<string, Set<string>> {
    const clas = new Map<string, object>();
    for (const [cname, { target }] of this.#ingressTargets.get(gwKey) ?? [])
      clas.set(cname, this.#ingressClusterLoadAssignment(cname, target));
    return this.#commit(gwKey, new Map([[EnvoyTypeUrls.clusterLoadAssignment, clas]]));
  }

  /** Builds every resource of one waypoint; returns the names that changed, per type URL. */
  #computeWaypoint(wp: string): Map<string, Set<string>> {
    const [namespace = '', name = ''] = wp.split('/');
    const gw = this.#gateways.get(wp);
    const next = new Map<string, Map<string, object>>(
      ENVOY_TYPE_URLS.map(t => [t, new Map<string, object>()]),
    );
    const referenced = new Set<string>();
    if (isIngress(gw)) this.#computeIngress(wp, gw, next, referenced);
    else {
      this.#ingressIssues.delete(wp);
      this.#ingressTargets.delete(wp);
    }
    if (gw !== undefined && WAYPOINT_CLASSES.has(gw.spec.gatewayClassName)) {
      const listeners = next.get(EnvoyTypeUrls.listener)!;
      const routes = next.get(EnvoyTypeUrls.routeConfiguration)!;
      const clusters = next.get(EnvoyTypeUrls.cluster)!;
      const clas = next.get(EnvoyTypeUrls.clusterLoadAssignment)!;
      const resolved = new Map<string, ResolvedRoute>();
      const chains: FilterChainInput[] = [];
      const targets = new Map<string, { target: BackendTarget; protocol: ServiceProtocol }>();
      const clusterFor = (t: BackendTarget): string => {
        if (t.host !== undefined) return this.#entryHostCluster({ ...t, host: t.host });
        const info = this.#serviceInfo(t.service);
        const port = info?.ports.find(p => p.port === t.port);
        const protocol = port?.protocol ?? 'http';
        const host =
          info?.hostname ?? serviceHostname(t.service.namespace, t.service.name, this.#opts.domain);
        const cname = inboundVipName(t.port, protocol, host, t.subset);
        if (!targets.has(cname)) targets.set(cname, { target: t, protocol });
        return cname;
      };
      const hashPolicyFor = (t: BackendTarget): readonly object[] | undefined =>
        t.host !== undefined
          ? undefined
          : hashPolicy(this.#trafficPolicy(t).policy.loadBalancer?.consistentHash);
      const patches = this.#envoyFilterPatches(wp, gw);
      const patchHttpFilters =
        patches.length === 0
          ? undefined
          : (chain: string, port: number) => (filters: readonly object[]) =>
              applyHttpFilterPatches(filters as HttpFilterValue[], patches, { name: chain, port }, s =>
                this.#opts.onPatchSkipped?.(wp, s),
              );
      const extAuthzClusters = new Map<string, { key: ServiceKey; port: number; http2: boolean }>();
      const traced = resolveWaypointTracing(
        { namespace, name },
        this.#opts.rootNamespace ?? 'istio-system',
        this.#telemetries.values(),
        this.#tracingProviders,
      );
      if (traced.kind === 'problem') this.#opts.onTracingProblem?.(wp, traced.message);
      const tracing = traced.kind === 'tracing' ? traced.tracing.hcm : undefined;
      if (traced.kind === 'tracing') clusters.set(traced.tracing.cluster.name, traced.tracing.cluster);
      const rootNamespace = this.#opts.rootNamespace ?? 'istio-system';
      const logged = resolveWaypointAccessLog(
        { namespace, name },
        rootNamespace,
        this.#telemetries.values(),
        this.#telemetryProviders,
      );
      const stats = resolveWaypointStats(
        { namespace, name },
        rootNamespace,
        this.#telemetries.values(),
        this.#telemetryProviders,
      );
      for (const problem of [
        ...(logged.kind === 'access-log' ? logged.problems : []),
        ...(stats.kind === 'stats' ? stats.problems : []),
      ])
        this.#opts.onTelemetryProblem?.(wp, problem);
      const telemetry = {
        ...(logged.kind === 'access-log' ? { accessLog: logged.accessLog } : {}),
        ...(stats.kind === 'stats' ? { stats: stats.filter } : {}),
      };
      for (const svcKey of this.#bindings.servicesFor({ namespace, name })) {
        const info = this.#serviceInfo(svcKey);
        if (info === undefined) continue;
        referenced.add(keyString(svcKey));
        const svcPolicies = this.#policiesFor(wp, svcKey);
        const rbac = buildRbacFilters(svcPolicies).configs;
        const custom = this.#customFilters(wp, svcPolicies, extAuthzClusters);
        const jwt = buildJwtFilter(this.#authnsFor(wp, svcKey), this.#opts.jwksFor);
        for (const port of info.ports) {
          const chainName = inboundVipName(port.port, port.protocol, info.hostname);
          const self: BackendTarget = { service: svcKey, port: port.port };
          clusterFor(self);
          if (port.protocol === 'tcp') {
            const rule = tcpRouteRule(this.#routesFor(wp, info, port, resolved));
            chains.push({
              name: chainName,
              vips: info.vips,
              port: port.port,
              tcp: true,
              ...(rule === undefined ? {} : { tcpClusters: tcpRouteClusters(rule, port.port, clusterFor) }),
              ...(stats.kind === 'stats' ? { stats: stats.filter } : {}),
              rbac: [],
              fault: false,
            });
            continue;
          }
          const attached = this.#routesFor(wp, info, port, resolved);
          const routeConfig = buildRouteConfiguration(attached, {
            name: chainName,
            virtualHostName: `${info.hostname}:${port.port}`,
            port: port.port,
            defaultTarget: self,
            clusterFor,
            hashPolicyFor,
          });
          routes.set(
            chainName,
            patches.length === 0 ? routeConfig : applyRoutePatches(routeConfig, patches, port.port),
          );
          const fault = attached.some(r => r.rules.some(rule => rule.fault !== undefined));
          chains.push({
            name: chainName,
            vips: info.vips,
            port: port.port,
            tcp: false,
            jwt,
            rbac,
            fault,
            ...(patchHttpFilters === undefined
              ? {}
              : { patchHttpFilters: patchHttpFilters(chainName, port.port) }),
            custom,
            tracing,
            ...telemetry,
            ...(port.undeclared === true ? { applicationProtocols: PLAINTEXT_HTTP_ALPNS } : {}),
          });
          // An undeclared port (upstream's "auto"): what http_inspector does not find to be HTTP
          // goes to a TCP chain of the same port, relayed to the port's own cluster.
          if (port.undeclared === true) {
            chains.push({
              name: inboundVipName(port.port, 'tcp', info.hostname),
              vips: info.vips,
              port: port.port,
              tcp: true,
              tcpClusters: [{ name: clusterFor(self), weight: 1 }],
              ...(stats.kind === 'stats' ? { stats: stats.filter } : {}),
              rbac: [],
              fault: false,
            });
          }
        }
        this.#tcpRoutesForStatus(this.#routesByService.get(keyString(svcKey)) ?? [], resolved);
      }
      this.#tcpRoutesForStatus(this.#routesByGateway.get(wp) ?? [], resolved);
      const tlsIssues: string[] = [];
      for (const entryKey of this.#bindings.serviceEntriesFor?.({ namespace, name }) ?? []) {
        const entry = this.#entries.get(keyString(entryKey));
        if (entry === undefined) continue;
        const rbac = buildRbacFilters(this.#policiesFor(wp, entryKey, 'ServiceEntry')).configs;
        const jwt = buildJwtFilter(this.#authnsFor(wp, entryKey, 'ServiceEntry'));
        for (const t of serviceEntryTargets(entry)) {
          // A host a Kubernetes Service (or another entry) already serves here keeps its resources.
          if (clusters.has(t.name) || targets.has(t.name)) continue;
          const rule = this.#entryRule(t.host);
          const policy = portTrafficPolicy(rule?.trafficPolicy, t.port.number);
          const tls =
            policy.tls === undefined
              ? ({ kind: 'plaintext' } as const)
              : buildUpstreamTls({
                  tls: policy.tls,
                  host: t.host,
                  port: t.port.number,
                  entrySubjectAltNames: entry.subjectAltNames,
                  http2: t.protocol === 'grpc',
                  credential: n => this.#credential(namespace, n),
                });
          if (tls.kind === 'problem') {
            // Never plaintext where TLS was asked for: the cluster is left out (requests get 503).
            tlsIssues.push(
              `DestinationRule ${rule?.namespace}/${rule?.name} (host ${t.host}, port ${t.port.number}): ${tls.message}; cluster ${t.name} not programmed`,
            );
          } else {
            const built = buildServiceEntryCluster(
              entry,
              t,
              policy,
              tls.kind === 'tls' ? tls.transportSocket : undefined,
            );
            clusters.set(t.name, built.cluster);
            if (built.loadAssignment !== undefined) clas.set(t.name, built.loadAssignment);
          }
          const tcp = t.protocol === 'tcp';
          if (!tcp) {
            const self: BackendTarget = { service: entryKey, port: t.port.number };
            // The entry itself (the default route); resolved backendRefs carry new keys.
            const isSelf = (b: BackendTarget): boolean => b.service === entryKey;
            routes.set(
              t.name,
              buildRouteConfiguration(this.#entryRoutesFor(entryKey, t.port.number, resolved), {
                name: t.name,
                virtualHostName: `${t.host}:${t.port.number}`,
                port: t.port.number,
                defaultTarget: self,
                clusterFor: b => (isSelf(b) ? t.name : clusterFor(b)),
                hashPolicyFor: b => (isSelf(b) ? undefined : hashPolicyFor(b)),
              }),
            );
          }
          chains.push({
            name: t.name,
            vips: t.vips,
            port: t.port.number,
            tcp,
            ...(tcp
              ? stats.kind === 'stats'
                ? { stats: stats.filter }
                : {}
              : { jwt, tracing, ...telemetry }),
            rbac: tcp ? [] : rbac,
            fault: false,
          });
        }
      }
      const tlsText = tlsIssues.join('\n');
      if ((this.#tlsIssues.get(wp) ?? '') !== tlsText) {
        if (tlsText === '') this.#tlsIssues.delete(wp);
        else this.#tlsIssues.set(wp, tlsText);
        this.#opts.onTlsIssues?.(wp, tlsIssues);
      }
      for (const [cname, { target, protocol }] of targets) {
        referenced.add(keyString(target.service));
        const { policy, labels } = this.#trafficPolicy(target);
        const info = this.#serviceInfo(target.service);
        const port = info?.ports.find(p => p.port === target.port);
        clusters.set(
          cname,
          buildCluster({
            name: cname,
            trafficPolicy: policy,
            http2: protocol === 'grpc',
            http1: port?.http1 === true,
            tcp: protocol === 'tcp',
          }),
        );
        const eps = info === undefined || port === undefined ? [] : this.#endpoints(info, port, labels);
        clas.set(cname, buildLoadAssignment(cname, eps));
      }
      for (const [cname, c] of extAuthzClusters) {
        if (clusters.has(cname)) continue;
        referenced.add(keyString(c.key));
        clusters.set(cname, buildCluster({ name: cname, trafficPolicy: {}, http2: c.http2, tcp: false }));
        const info = this.#serviceInfo(c.key);
        const port = info?.ports.find(p => p.port === c.port);
        clas.set(
          cname,
          buildLoadAssignment(
            cname,
            info === undefined || port === undefined ? [] : this.#endpoints(info, port, undefined),
          ),
        );
      }
      const hbonePort =
        gw.spec.listeners.find(l => l.protocol === 'HBONE')?.port ?? this.#opts.hbonePort ?? Port.hbone;
      const terminate = buildConnectTerminate(hbonePort) as { name: string };
      listeners.set(terminate.name, terminate);
      const main = buildMainInternal(chains) as { name: string };
      listeners.set(main.name, main);
      const internal = buildMainInternalCluster() as { name: string };
      clusters.set(internal.name, internal);
    }
    this.#setRefs(wp, referenced);
    return this.#commit(wp, next);
  }

  #setRefs(wp: string, referenced: ReadonlySet<string>): void {
    for (const svc of this.#refsOf.get(wp) ?? []) if (!referenced.has(svc)) removeFrom(this.#refs, svc, wp);
    for (const svc of referenced) addTo(this.#refs, svc, wp);
    if (referenced.size === 0) this.#refsOf.delete(wp);
    else this.#refsOf.set(wp, new Set(referenced));
  }

  #commit(wp: string, next: Map<string, Map<string, object>>): Map<string, Set<string>> {
    const changed = new Map<string, Set<string>>();
    const old = this.#computed.get(wp);
    const stored = new Map<string, ResourceMap>();
    let empty = true;
    for (const typeUrl of ENVOY_TYPE_URLS) {
      const prev = old?.get(typeUrl) ?? EMPTY;
      // A type the compute did not build keeps what it had.
      if (!next.has(typeUrl)) {
        if (prev.size > 0) empty = false;
        stored.set(typeUrl, new Map(prev));
        continue;
      }
      const out: ResourceMap = new Map();
      const names = new Set<string>();
      for (const [name, value] of next.get(typeUrl) ?? []) {
        let bytes: Uint8Array;
        try {
          bytes = encodeEnvoy(TYPE_NAMES[typeUrl], value);
        } catch (err) {
          this.#opts.onEncodeError?.(wp, name, errorMessage(err));
          const kept = prev.get(name);
          if (kept !== undefined) out.set(name, kept);
          continue;
        }
        const v = version(bytes);
        const before = prev.get(name);
        if (before !== undefined && before.version === v) out.set(name, before);
        else {
          out.set(name, { version: v, value: bytes });
          names.add(name);
        }
      }
      for (const name of prev.keys()) if (!out.has(name)) names.add(name);
      if (names.size > 0) changed.set(typeUrl, names);
      if (out.size > 0) empty = false;
      stored.set(typeUrl, out);
    }
    if (empty) this.#computed.delete(wp);
    else this.#computed.set(wp, stored);
    return changed;
  }
}

const EMPTY: ReadonlyMap<string, VersionedResource<Uint8Array>> = new Map();

const TYPE_NAMES: Readonly<Record<EnvoyTypeUrl, string>> = {
  [EnvoyTypeUrls.listener]: EnvoyType.listener,
  [EnvoyTypeUrls.routeConfiguration]: EnvoyType.routeConfiguration,
  [EnvoyTypeUrls.cluster]: EnvoyType.cluster,
  [EnvoyTypeUrls.clusterLoadAssignment]: EnvoyType.clusterLoadAssignment,
};

/** The client CA bundle of a TLS Secret (`ca.crt`, PEM), checked to parse. */
function caSecretPem(secret: KubeObject): { ok: true; value: Uint8Array } | { ok: false; message: string } {
  const crt = str(rec(rec(secret).data)['ca.crt']);
  if (crt === undefined || crt === '') return { ok: false, message: 'the Secret has no ca.crt' };
  const pem = Buffer.from(crt, 'base64');
  try {
    new X509Certificate(pem);
  } catch (err) {
    return { ok: false, message: `ca.crt is not a PEM certificate: ${errorMessage(err)}` };
  }
  return { ok: true, value: new Uint8Array(pem) };
}

/** The PEM certificate chain and key of a TLS Secret (`tls.crt`, `tls.key`), checked to parse. */
function tlsSecretPem(
  secret: KubeObject,
): { ok: true; value: PemCertificate } | { ok: false; message: string } {
  const data = rec(rec(secret).data);
  const crt = str(data['tls.crt']);
  const key = str(data['tls.key']);
  if (crt === undefined || key === undefined || crt === '' || key === '')
    return { ok: false, message: 'the Secret has no tls.crt or tls.key' };
  const certificateChain = Buffer.from(crt, 'base64');
  const privateKey = Buffer.from(key, 'base64');
  try {
    new X509Certificate(certificateChain);
  } catch (err) {
    return { ok: false, message: `tls.crt is not a PEM certificate: ${errorMessage(err)}` };
  }
  try {
    createPrivateKey(privateKey);
  } catch (err) {
    return { ok: false, message: `tls.key is not a PEM private key: ${errorMessage(err)}` };
  }
  return {
    ok: true,
    value: { certificateChain: new Uint8Array(certificateChain), privateKey: new Uint8Array(privateKey) },
  };
}

/** The keys a `credentialName` Secret may hold (both of upstream's layouts). */
const CREDENTIAL_KEYS = ['ca.crt', 'cacert', 'tls.crt', 'tls.key', 'cert', 'key'];

/** A DestinationRule host (exact, or `*.suffix`) names a ServiceEntry host. */
function ruleHostMatches(ruleHost: string, host: string): boolean {
  if (ruleHost === host) return true;
  return ruleHost.startsWith('*') && host.endsWith(ruleHost.slice(1));
}

/** The policy of one port: the rule's groups, overridden by its `portLevelSettings` for the port. */
export function portTrafficPolicy(tp: TrafficPolicy | undefined, port: number): TrafficPolicy {
  if (tp === undefined) return {};
  const { portLevelSettings, ...base } = tp;
  const level = portLevelSettings?.find(p => p.port === port);
  if (level === undefined) return base;
  const { port: _port, ...own } = level;
  return mergeTrafficPolicy(base, own);
}

function hostMatches(pattern: string, info: ServiceInfo): boolean {
  const names = [info.hostname, `${info.key.name}.${info.key.namespace}`, info.key.name];
  if (pattern.startsWith('*.')) return names.some(n => n.endsWith(pattern.slice(1)));
  return names.includes(pattern);
}

/** parentRefs of a route that failed validation, read as far as they go (for its status). */
function readParentRefsLoosely(obj: KubeObject): ParentRefInput[] {
  const spec = rec(rec(obj).spec);
  const ns = obj.metadata?.namespace ?? '';
  return (Array.isArray(spec.parentRefs) ? spec.parentRefs : []).flatMap(p => {
    const r = rec(p);
    const name = str(r.name) ?? '';
    if (name === '') return [];
    return [
      {
        group: str(r.group) ?? GATEWAY_GROUP,
        kind: str(r.kind) ?? 'Gateway',
        namespace: str(r.namespace) ?? ns,
        name,
      },
    ];
  });
}
