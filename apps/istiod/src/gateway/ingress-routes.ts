/**
 * Route status for parents that are ingress Gateways (class `istio`, or any class of the
 * `istio.io/gateway-controller`), as Istio 1.27 writes it (`gateway/conversion.go`
 * `referenceAllowed`, `buildListener`):
 *
 * - `Accepted`: the route attaches to at least one listener the parentRef selects (`sectionName`,
 *   `port`) whose `allowedRoutes` takes the route's kind and namespace and whose hostname
 *   intersects the route's hostnames. Else `False` with `NoMatchingParent` (no listener of that
 *   name/port), `NoMatchingListenerHostname` (only the hostnames failed) or `NotAllowedByListeners`.
 *   A Gateway that does not exist: `NoMatchingParent`.
 * - `ResolvedRefs`: the backendRefs, resolved as for waypoints (`BackendNotFound`,
 *   `RefNotPermitted`, `InvalidKind`).
 *
 * The listeners a route is accepted on count in their `attachedRoutes`.
 *
 * `IngressRouteIndex` is the single writer of this state: it follows HTTPRoutes, GRPCRoutes,
 * Gateways, GatewayClasses, Namespaces, Services, ReferenceGrants and Secrets (only whether a
 * Secret holds a usable certificate is kept), and answers the certificate checks of listener
 * status (`ListenerRefs`).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import { applyEvents, type KindInformer } from '../kube/informers.ts';
import { selectorMatches, type KubeObject } from '../kube/objects.ts';
import {
  CONTROLLER_NAME,
  RouteReason,
  resolveRoute,
  resolvedWaypoints,
  type RouteCondition,
  type RouteLookup,
  type RouteParentStatus,
  type ServiceInfo,
} from '../waypoint/resolve-route.ts';
import type { ParentRefInput, ServiceKey, ValidRoute } from '../waypoint/types.ts';
import { validateGrpcRoute, validateHttpRoute, validateTlsRoute } from '../waypoint/validate-route.ts';
import { classInfoFor } from './classes.ts';
import { listenerKinds, type ListenerRefs } from './listener-status.ts';
import { validateGateway, validateGatewayClass, type GatewayListener, type GatewayModel } from './model.ts';
import type { StatusRouteKind } from './route-status.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** One ingress parent's status and the listeners (names) the route is accepted on. */
export interface IngressParent {
  readonly status: RouteParentStatus;
  readonly listeners: readonly string[];
  /** The route's parentRef names its namespace (status echoes it as written). */
  readonly namespaceWritten: boolean;
}

/** Whether the route host and the listener host share at least one name (wildcards as Gateway API). */
export function hostnamesIntersect(listener: string | undefined, route: string): boolean {
  if (listener === undefined || listener === '' || listener === '*') return true;
  if (listener === route) return true;
  const lw = listener.startsWith('*.');
  const rw = route.startsWith('*.');
  if (lw && !rw) return route.endsWith(listener.slice(1));
  if (rw && !lw) return listener.endsWith(route.slice(1));
  if (lw && rw) return route.endsWith(listener.slice(1)) || listener.endsWith(route.slice(1));
  return false;
}

function routeHostsMatch(l: GatewayListener, hostnames: readonly string[]): boolean {
  return hostnames.length === 0 || hostnames.some(h => hostnamesIntersect(l.hostname, h));
}

function namespaceAllowed(
  l: GatewayListener,
  gatewayNamespace: string,
  routeNamespace: string,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): boolean {
  switch (l.allowedFrom) {
    case 'All':
      return true;
    case 'Same':
      return routeNamespace === gatewayNamespace;
    case 'Selector': {
      const labels = namespaceLabels(routeNamespace);
      return (
        l.allowedSelector !== undefined && labels !== undefined && selectorMatches(l.allowedSelector, labels)
      );
    }
  }
}

function accepted(gen: number): RouteCondition {
  return {
    type: 'Accepted',
    status: 'True',
    reason: RouteReason.accepted,
    message: 'Route was valid',
    observedGeneration: gen,
  };
}

function notAccepted(gen: number, reason: string, message: string): RouteCondition {
  return { type: 'Accepted', status: 'False', reason, message, observedGeneration: gen };
}

/** `Accepted` of one parentRef to an ingress Gateway (undefined: the Gateway does not exist). */
export function ingressAcceptance(
  route: Pick<ValidRoute, 'kind' | 'namespace' | 'hostnames' | 'generation'>,
  ref: ParentRefInput,
  gw: GatewayModel | undefined,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): { condition: RouteCondition; listeners: string[] } {
  const gen = route.generation;
  if (gw === undefined)
    return {
      condition: notAccepted(
        gen,
        RouteReason.noMatchingParent,
        `parent Gateway ${ref.namespace}/${ref.name} not found`,
      ),
      listeners: [],
    };
  const candidates = gw.listeners.filter(
    l =>
      (ref.sectionName === undefined || l.name === ref.sectionName) &&
      (ref.port === undefined || l.port === ref.port),
  );
  if (candidates.length === 0) {
    const what = [
      ref.sectionName === undefined ? undefined : `sectionName "${ref.sectionName}"`,
      ref.port === undefined ? undefined : `port ${ref.port}`,
    ]
      .filter(x => x !== undefined)
      .join(' and ');
    return {
      condition: notAccepted(
        gen,
        RouteReason.noMatchingParent,
        `no listener of Gateway ${gw.namespace}/${gw.name} matches ${what}`,
      ),
      listeners: [],
    };
  }
  const listeners: string[] = [];
  let onlyHostnames = false;
  for (const l of candidates) {
    const kindOk = listenerKinds(l).kinds.some(k => k.group === GATEWAY_GROUP && k.kind === route.kind);
    const nsOk = namespaceAllowed(l, gw.namespace, route.namespace, namespaceLabels);
    if (!kindOk || !nsOk) continue;
    if (routeHostsMatch(l, route.hostnames)) listeners.push(l.name);
    else onlyHostnames = true;
  }
  if (listeners.length > 0) return { condition: accepted(gen), listeners };
  if (onlyHostnames)
    return {
      condition: notAccepted(
        gen,
        'NoMatchingListenerHostname',
        `no hostnames matched parent hostname of Gateway ${gw.namespace}/${gw.name}`,
      ),
      listeners: [],
    };
  return {
    condition: notAccepted(
      gen,
      'NotAllowedByListeners',
      `no listener of Gateway ${gw.namespace}/${gw.name} allows a ${route.kind} from namespace "${route.namespace}"`,
    ),
    listeners: [],
  };
}

/** What the route status of ingress parents needs of the cluster. */
export interface IngressView extends RouteLookup {
  /** The Gateway `namespace/name` if it is an ingress Gateway of ours; `'other'` if of another class or a waypoint; undefined if missing. */
  gateway(namespace: string, name: string): GatewayModel | 'other' | undefined;
  namespaceLabels(ns: string): Readonly<Record<string, string>> | undefined;
}

/** The status of every parentRef of the route that is (or names a missing) Gateway istiod would serve as ingress. */
export function ingressParents(
  route: ValidRoute,
  view: IngressView,
  namespaceWritten: (ref: ParentRefInput) => boolean = () => false,
): IngressParent[] {
  const refs = route.parentRefs.filter(p => p.group === GATEWAY_GROUP && p.kind === 'Gateway');
  const relevant = refs
    .map(ref => ({ ref, gw: view.gateway(ref.namespace, ref.name) }))
    .filter((x): x is { ref: ParentRefInput; gw: GatewayModel | undefined } => x.gw !== 'other');
  if (relevant.length === 0) return [];
  const resolvedRefs = resolveRoute(route, view, () => true).parents[0]?.conditions.find(
    c => c.type === 'ResolvedRefs',
  );
  return relevant.map(({ ref, gw }) => {
    const a = ingressAcceptance(route, ref, gw, ns => view.namespaceLabels(ns));
    return {
      status: {
        parentRef: ref,
        controllerName: CONTROLLER_NAME,
        conditions: [
          a.condition,
          ...(resolvedRefs === undefined ? [] : [resolvedRefs]),
          resolvedWaypoints(route.generation),
        ],
      },
      listeners: a.listeners,
      namespaceWritten: namespaceWritten(ref),
    };
  });
}

/** Whether the route object's parentRefs name this parent's namespace explicitly. */
export function parentNamespaceWritten(obj: KubeObject, ref: ParentRefInput): boolean {
  const raw = rec(rec(obj).spec)['parentRefs'];
  return (Array.isArray(raw) ? raw : []).some(p => {
    const r = rec(p);
    return (
      r['name'] === ref.name &&
      typeof r['namespace'] === 'string' &&
      r['namespace'] === ref.namespace &&
      (r['sectionName'] ?? undefined) === ref.sectionName &&
      (r['port'] ?? undefined) === ref.port
    );
  });
}

/** Whether a Secret's `ca.crt` holds a PEM certificate (base64 as the API serves it). */
export function secretHoldsCa(obj: KubeObject): boolean {
  const ca = ((obj as { data?: Record<string, unknown> }).data ?? {})['ca.crt'];
  if (typeof ca !== 'string') return false;
  try {
    new X509Certificate(Buffer.from(ca, 'base64'));
    return true;
  } catch {
    return false;
  }
}

/** Whether a TLS Secret's data hold a PEM certificate and a private key (base64 as the API serves them). */
export function secretHoldsCertificate(obj: KubeObject): boolean {
  const data = (obj as { data?: Record<string, unknown> }).data ?? {};
  const crt = data['tls.crt'];
  const key = data['tls.key'];
  if (typeof crt !== 'string' || typeof key !== 'string') return false;
  try {
    new X509Certificate(Buffer.from(crt, 'base64'));
    createPrivateKey(Buffer.from(key, 'base64'));
    return true;
  } catch {
    return false;
  }
}

export type IngressInformerKind =
  | 'HTTPRoute'
  | 'GRPCRoute'
  | 'TLSRoute'
  | 'Gateway'
  | 'GatewayClass'
  | 'Namespace'
  | 'Service'
  | 'ReferenceGrant'
  | 'Secret';

export interface IngressRouteIndexOptions {
  readonly informers: (kind: IngressInformerKind) => KindInformer;
  readonly domain: string;
  readonly logger: Logger;
  /** The ingress parents of a route changed (empty: it has none now, or was deleted). */
  readonly onParents: (kind: StatusRouteKind, key: string, parents: readonly IngressParent[]) => void;
  /** A Secret or ReferenceGrant changed: listener status may change. */
  readonly onRefsChanged: () => void;
}

type Loose = Record<string, unknown>;
const rec = (v: unknown): Loose =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : {};
const keyOf = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** The single writer of ingress route state; see the module comment. */
export class IngressRouteIndex implements ListenerRefs {
  readonly #opts: IngressRouteIndexOptions;
  readonly #routes = new Map<
    string,
    { kind: StatusRouteKind; key: string; valid: ValidRoute | undefined; obj: KubeObject }
  >();
  readonly #gateways = new Map<string, KubeObject>();
  readonly #classes = new Map<string, { controllerName: string }>();
  readonly #namespaces = new Map<string, Readonly<Record<string, string>>>();
  readonly #services = new Map<string, ServiceInfo>();
  readonly #grants = new Map<string, KubeObject>();
  readonly #secrets = new Map<string, { readonly valid: boolean; readonly ca: boolean }>();
  readonly #emitted = new Map<string, string>();
  readonly #informers: KindInformer[] = [];
  #synced = false;

  constructor(opts: IngressRouteIndexOptions) {
    this.#opts = opts;
  }

  async start(): Promise<void> {
    const wire = (
      kind: IngressInformerKind,
      apply: (o: KubeObject, deleted: boolean) => void,
      optional = false,
    ): Promise<void> => {
      const informer = this.#opts.informers(kind);
      this.#informers.push(informer);
      applyEvents(informer, apply, err => {
        this.#opts.logger.error({ kind, err: errorMessage(err) }, 'failed to apply an ingress route event');
      });
      const started = informer.start().catch(() => undefined);
      // An optional kind (its CRD may be missing: it never lists) is not waited for.
      return optional ? Promise.resolve() : started;
    };
    const all = (): void => {
      this.#recomputeAll();
    };
    await Promise.all([
      wire('HTTPRoute', (o, d) => {
        this.#onRoute('HTTPRoute', o, d);
      }),
      wire('GRPCRoute', (o, d) => {
        this.#onRoute('GRPCRoute', o, d);
      }),
      wire(
        'TLSRoute',
        (o, d) => {
          this.#onRoute('TLSRoute', o, d);
        },
        true,
      ),
      wire('Gateway', (o, d) => {
        if (d) this.#gateways.delete(keyOf(o));
        else this.#gateways.set(keyOf(o), o);
        all();
      }),
      wire('GatewayClass', (o, d) => {
        const v = validateGatewayClass(o);
        if (d || !v.ok) this.#classes.delete(o.metadata?.name ?? '');
        else this.#classes.set(v.value.name, { controllerName: v.value.controllerName });
        all();
      }),
      wire('Namespace', (o, d) => {
        if (d) this.#namespaces.delete(o.metadata?.name ?? '');
        else this.#namespaces.set(o.metadata?.name ?? '', { ...o.metadata?.labels });
        all();
      }),
      wire('Service', (o, d) => {
        if (d) this.#services.delete(keyOf(o));
        else this.#services.set(keyOf(o), this.#serviceInfo(o));
        all();
      }),
      wire('ReferenceGrant', (o, d) => {
        if (d) this.#grants.delete(keyOf(o));
        else this.#grants.set(keyOf(o), o);
        all();
        this.#opts.onRefsChanged();
      }),
      wire('Secret', (o, d) => {
        const key = keyOf(o);
        const before = JSON.stringify(this.#secrets.get(key));
        if (d) this.#secrets.delete(key);
        else this.#secrets.set(key, { valid: secretHoldsCertificate(o), ca: secretHoldsCa(o) });
        if (before !== JSON.stringify(this.#secrets.get(key))) this.#opts.onRefsChanged();
      }),
    ]);
    this.#synced = true;
    this.#recomputeAll();
    this.#opts.onRefsChanged();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#informers.map(i => i.stop()));
  }

  /** Whether every informer has listed (before that, a missing Secret may just not be seen yet). */
  get synced(): boolean {
    return this.#synced;
  }

  secret(namespace: string, name: string): { readonly valid: boolean; readonly ca: boolean } | undefined {
    return this.#secrets.get(`${namespace}/${name}`);
  }

  secretGrantAllows(fromNamespace: string, toNamespace: string, name: string): boolean {
    return this.#grantAllows('Gateway', fromNamespace, toNamespace, '', 'Secret', name);
  }

  #grantAllows(
    fromKind: string,
    fromNs: string,
    toNs: string,
    toGroup: string,
    toKind: string,
    toName: string,
  ): boolean {
    for (const g of this.#grants.values()) {
      if (g.metadata?.namespace !== toNs) continue;
      const spec = rec(rec(g).spec);
      const from = (Array.isArray(spec['from']) ? spec['from'] : []).some(f => {
        const r = rec(f);
        return r['group'] === GATEWAY_GROUP && r['kind'] === fromKind && r['namespace'] === fromNs;
      });
      if (!from) continue;
      const to = (Array.isArray(spec['to']) ? spec['to'] : []).some(t => {
        const r = rec(t);
        const group = typeof r['group'] === 'string' ? r['group'] : '';
        return (
          (group === toGroup || (toGroup === '' && group === 'core')) &&
          r['kind'] === toKind &&
          (r['name'] === undefined || r['name'] === '' || r['name'] === toName)
        );
      });
      if (to) return true;
    }
    return false;
  }

  #serviceInfo(o: KubeObject): ServiceInfo {
    const spec = rec(rec(o).spec);
    const ports = (Array.isArray(spec['ports']) ? spec['ports'] : []).map(p => {
      const r = rec(p);
      return {
        port: typeof r['port'] === 'number' ? r['port'] : 0,
        name: typeof r['name'] === 'string' ? r['name'] : '',
        targetPort:
          typeof r['targetPort'] === 'number' || typeof r['targetPort'] === 'string' ? r['targetPort'] : 0,
        protocol: 'http' as const,
      };
    });
    const ns = o.metadata?.namespace ?? '';
    const name = o.metadata?.name ?? '';
    return {
      key: { namespace: ns, name },
      hostname: `${name}.${ns}.svc.${this.#opts.domain}`,
      vips: typeof spec['clusterIP'] === 'string' ? [spec['clusterIP']] : [],
      ports,
      selector: undefined,
    };
  }

  #view(): IngressView {
    return {
      service: (key: ServiceKey) => this.#services.get(`${key.namespace}/${key.name}`),
      referenceGrantAllows: (fromKind, fromNs, to) =>
        this.#grantAllows(fromKind, fromNs, to.namespace, '', 'Service', to.name),
      gateway: (namespace, name) => {
        const obj = this.#gateways.get(`${namespace}/${name}`);
        if (obj === undefined) return undefined;
        const v = validateGateway(obj);
        const raw = rec(rec(obj).spec)['gatewayClassName'];
        const className = v.ok ? v.value.className : typeof raw === 'string' ? raw : '';
        const info = classInfoFor(className, n => this.#classes.get(n));
        if (info === undefined || info.waypoint || !v.ok) return 'other';
        return v.value;
      },
      namespaceLabels: ns => this.#namespaces.get(ns),
    };
  }

  #onRoute(kind: StatusRouteKind, o: KubeObject, deleted: boolean): void {
    const key = keyOf(o);
    const id = `${kind}/${key}`;
    if (deleted) {
      this.#routes.delete(id);
      this.#emit(kind, key, []);
      this.#emitted.delete(id);
      return;
    }
    const v =
      kind === 'HTTPRoute'
        ? validateHttpRoute(o)
        : kind === 'GRPCRoute'
          ? validateGrpcRoute(o)
          : validateTlsRoute(o);
    this.#routes.set(id, { kind, key, valid: v.ok ? v.value : undefined, obj: o });
    if (this.#synced) this.#compute(id);
  }

  #recomputeAll(): void {
    if (!this.#synced) return;
    for (const id of this.#routes.keys()) this.#compute(id);
  }

  #compute(id: string): void {
    const r = this.#routes.get(id);
    if (r === undefined) return;
    // An invalid route keeps the status the waypoint index gave it (Accepted=False, UnsupportedValue).
    const parents =
      r.valid === undefined
        ? []
        : ingressParents(r.valid, this.#view(), ref => parentNamespaceWritten(r.obj, ref));
    this.#emit(r.kind, r.key, parents);
  }

  #emit(kind: StatusRouteKind, key: string, parents: readonly IngressParent[]): void {
    const id = `${kind}/${key}`;
    const fp = JSON.stringify(parents);
    const prev = this.#emitted.get(id);
    if (prev === fp || (prev === undefined && parents.length === 0)) return;
    this.#emitted.set(id, fp);
    this.#opts.onParents(kind, key, parents);
  }
}
