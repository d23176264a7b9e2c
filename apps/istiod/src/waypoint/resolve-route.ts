/**
 * Resolution of a validated route against the cluster: backendRefs to Services (with
 * ReferenceGrant checks across namespaces) and the Gateway API status conditions upstream
 * istiod writes. Pure: the cluster is a `RouteLookup`. A backend that does not resolve keeps its
 * weight as `unresolvedWeight` (Envoy answers 500 for that share), so one bad backendRef never
 * affects other routes or other backends of the same rule.
 */
import type {
  BackendRefInput,
  FieldIssue,
  ParentRefInput,
  RawRouteRule,
  RouteFilter,
  RouteKind,
  RouteRule,
  ServiceKey,
  ValidRoute,
  WeightedBackend,
} from './types.ts';

/** The istiod controller name in route status. */
export const CONTROLLER_NAME = 'istio.io/gateway-controller';

export type ServiceProtocol = 'http' | 'grpc' | 'tcp';

export interface ServicePortInfo {
  readonly port: number;
  readonly name: string;
  readonly targetPort: number | string;
  readonly protocol: ServiceProtocol;
  /**
   * The port declares HTTP/1.1 (`appProtocol: http`, or a name `http`/`http-*`): its cluster speaks
   * HTTP/1.1 upstream, as upstream istiod's does; an undeclared port uses the downstream protocol.
   */
  readonly http1?: boolean;
  /**
   * Neither `appProtocol` nor the name declares a protocol: the waypoint sniffs the inner stream
   * (upstream's protocol "auto"), serving it on the HTTP chain or on a TCP chain of the same port.
   */
  readonly undeclared?: boolean;
}

/** What the waypoint needs of a Kubernetes Service. */
export interface ServiceInfo {
  readonly key: ServiceKey;
  /** `name.namespace.svc.<domain>`. */
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly ports: readonly ServicePortInfo[];
  readonly selector: Readonly<Record<string, string>> | undefined;
}

export interface RouteLookup {
  service(key: ServiceKey): ServiceInfo | undefined;
  /**
   * The ServiceEntry serving `host` on `port` (a `networking.istio.io/Hostname` backendRef), with
   * the port (an entry's only port when `port` is not given). Absent: such backendRefs are `InvalidKind`.
   */
  hostname?(
    host: string,
    port: number | undefined,
  ): { readonly entry: ServiceKey; readonly port: number } | undefined;
  /** True when a ReferenceGrant in `to.namespace` lets `fromKind` objects of `fromNamespace` refer to the Service. */
  referenceGrantAllows(fromKind: RouteKind, fromNamespace: string, to: ServiceKey): boolean;
}

export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs' | 'ResolvedWaypoints';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

export interface RouteParentStatus {
  readonly parentRef: ParentRefInput;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

/** A route ready for translation, with the status its parents get. */
export interface ResolvedRoute {
  readonly route: ValidRoute;
  readonly rules: readonly RouteRule[];
  readonly parents: readonly RouteParentStatus[];
}

export const RouteReason = {
  accepted: 'Accepted',
  resolvedRefs: 'ResolvedRefs',
  backendNotFound: 'BackendNotFound',
  refNotPermitted: 'RefNotPermitted',
  invalidKind: 'InvalidKind',
  unsupportedValue: 'UnsupportedValue',
  noMatchingParent: 'NoMatchingParent',
  resolvedWaypoints: 'ResolvedWaypoints',
} as const;

/**
 * Upstream's ambient condition on every parent of a route (`ResolvedWaypoints`, since Istio 1.26),
 * waypoint and ingress parents alike: always True; the message says whether the parent's waypoint
 * resolved (`WaypointMessage`).
 */
export function resolvedWaypoints(
  generation: number,
  message: string = WaypointMessage.resolved,
): RouteCondition {
  return {
    type: 'ResolvedWaypoints',
    status: 'True',
    reason: RouteReason.resolvedWaypoints,
    message,
    observedGeneration: generation,
  };
}

/**
 * Upstream's `ResolvedWaypoints` messages. The condition stays True either way; for a Service or
 * ServiceEntry parent that names no waypoint, the message says the route is not respected.
 */
export const WaypointMessage = {
  resolved: 'All waypoints resolved',
  missingLabel:
    'istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected',
  noMatchingParent: 'parent not found',
} as const;

interface Failure {
  readonly reason: string;
  readonly message: string;
}

function isServiceRef(group: string, kind: string): boolean {
  return (group === '' || group === 'core') && kind === 'Service';
}

function resolveBackend(
  route: ValidRoute,
  ref: BackendRefInput,
  lookup: RouteLookup,
): { ok: true; backend: WeightedBackend } | { ok: false; failure: Failure } {
  if (ref.group === 'networking.istio.io' && ref.kind === 'Hostname' && lookup.hostname !== undefined) {
    const found = lookup.hostname(ref.name, ref.port);
    if (found === undefined)
      return {
        ok: false,
        failure: {
          reason: RouteReason.backendNotFound,
          message: `backend(${ref.name}) not found (no ServiceEntry with that host${ref.port === undefined ? '' : ` and port ${ref.port}`})`,
        },
      };
    return {
      ok: true,
      backend: {
        service: found.entry,
        port: found.port,
        host: ref.name,
        weight: ref.weight,
        ...(ref.requestHeaders !== undefined ? { requestHeaders: ref.requestHeaders } : {}),
        ...(ref.responseHeaders !== undefined ? { responseHeaders: ref.responseHeaders } : {}),
      },
    };
  }
  if (!isServiceRef(ref.group, ref.kind))
    return {
      ok: false,
      failure: {
        reason: RouteReason.invalidKind,
        message: `referencing unsupported backendRef: group "${ref.group}" kind "${ref.kind}"`,
      },
    };
  const key = { namespace: ref.namespace, name: ref.name };
  if (
    ref.namespace !== route.namespace &&
    route.kind !== 'VirtualService' &&
    !lookup.referenceGrantAllows(route.kind, route.namespace, key)
  )
    return {
      ok: false,
      failure: {
        reason: RouteReason.refNotPermitted,
        message: `backendRef ${ref.name}/${ref.namespace} not accessible to a ${route.kind} in namespace "${route.namespace}" (missing a ReferenceGrant?)`,
      },
    };
  const svc = lookup.service(key);
  if (svc === undefined)
    return {
      ok: false,
      failure: {
        reason: RouteReason.backendNotFound,
        message: `backend(${ref.name}.${ref.namespace}) not found`,
      },
    };
  let port = ref.port;
  if (port === undefined && svc.ports.length === 1) port = svc.ports[0]!.port;
  if (port !== undefined && !svc.ports.some(p => p.port === port))
    return {
      ok: false,
      failure: {
        reason: RouteReason.backendNotFound,
        message: `backend(${svc.hostname}) has no port ${port}`,
      },
    };
  return {
    ok: true,
    backend: {
      service: key,
      // 0: the port the request arrived on (VirtualService destinations without a port).
      port: port ?? 0,
      weight: ref.weight,
      ...(ref.subset !== undefined ? { subset: ref.subset } : {}),
      ...(ref.requestHeaders !== undefined ? { requestHeaders: ref.requestHeaders } : {}),
      ...(ref.responseHeaders !== undefined ? { responseHeaders: ref.responseHeaders } : {}),
    },
  };
}

function resolveRule(
  route: ValidRoute,
  rule: RawRouteRule,
  lookup: RouteLookup,
  failures: Failure[],
): RouteRule {
  const backends: WeightedBackend[] = [];
  let unresolvedWeight = 0;
  for (const ref of rule.backendRefs) {
    const r = resolveBackend(route, ref, lookup);
    if (r.ok) backends.push(r.backend);
    else {
      failures.push(r.failure);
      unresolvedWeight += ref.weight;
    }
  }
  const filters: RouteFilter[] = [];
  for (const f of rule.filters) {
    if (f.type !== 'RequestMirror') {
      filters.push(f);
      continue;
    }
    const r = resolveBackend(route, f.backendRef, lookup);
    if (!r.ok) failures.push(r.failure);
    else
      filters.push({
        type: 'RequestMirror',
        backend: { service: r.backend.service, port: r.backend.port },
        percent: f.percent,
      });
  }
  const { index, backendRefs: _refs, filters: _filters, ...rest } = rule;
  return { ...rest, name: `${route.namespace}.${route.name}.${index}`, filters, backends, unresolvedWeight };
}

/** Resolves every rule; the status has one entry per parentRef. */
export function resolveRoute(
  route: ValidRoute,
  lookup: RouteLookup,
  parentExists: (ref: ParentRefInput) => boolean,
  /** Why a parent has no waypoint (a `WaypointMessage`); undefined: resolved. */
  waypointError: (ref: ParentRefInput) => string | undefined = () => undefined,
): ResolvedRoute {
  const failures: Failure[] = [];
  const rules = route.rules.map(r => resolveRule(route, r, lookup, failures));
  const gen = route.generation;
  const resolved: RouteCondition =
    failures.length === 0
      ? {
          type: 'ResolvedRefs',
          status: 'True',
          reason: RouteReason.resolvedRefs,
          message: 'All references resolved',
          observedGeneration: gen,
        }
      : {
          type: 'ResolvedRefs',
          status: 'False',
          reason: failures[0]!.reason,
          message: [...new Set(failures.map(f => f.message))].join('; '),
          observedGeneration: gen,
        };
  const parents = route.parentRefs.map(parentRef => ({
    parentRef,
    controllerName: CONTROLLER_NAME,
    conditions: [
      parentExists(parentRef)
        ? {
            type: 'Accepted' as const,
            status: 'True' as const,
            reason: RouteReason.accepted,
            message: 'Route was valid',
            observedGeneration: gen,
          }
        : {
            type: 'Accepted' as const,
            status: 'False' as const,
            reason: RouteReason.noMatchingParent,
            message: `parent ${parentRef.kind} ${parentRef.namespace}/${parentRef.name} not found`,
            observedGeneration: gen,
          },
      resolved,
      resolvedWaypoints(gen, waypointError(parentRef)),
    ],
  }));
  return { route, rules, parents };
}

/** The status of a route that failed validation: not programmed, every parent told why. */
export function rejectedRouteStatus(
  parentRefs: readonly ParentRefInput[],
  generation: number,
  errors: readonly FieldIssue[],
): RouteParentStatus[] {
  const message = `route was not programmed: ${errors.map(e => `${e.path}: ${e.message}`).join('; ')}`;
  return parentRefs.map(parentRef => ({
    parentRef,
    controllerName: CONTROLLER_NAME,
    conditions: [
      {
        type: 'Accepted',
        status: 'False',
        reason: RouteReason.unsupportedValue,
        message,
        observedGeneration: generation,
      },
      {
        type: 'ResolvedRefs',
        status: 'True',
        reason: RouteReason.resolvedRefs,
        message: 'All references resolved',
        observedGeneration: generation,
      },
      resolvedWaypoints(generation),
    ],
  }));
}
