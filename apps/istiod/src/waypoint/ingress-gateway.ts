/**
 * An ingress Gateway (class `istio`) as its Envoy config needs it (pure): its HTTP and HTTPS
 * listeners, which routes attach to which listener (parentRef `sectionName`/`port`,
 * `allowedRoutes` namespaces and kinds, hostname intersection), and its certificate references.
 *
 * Hostname intersection follows the Gateway API: a listener without a hostname takes the route's
 * hostnames; a route without hostnames takes the listener's; otherwise the names both match
 * (an exact name inside the other's wildcard, or the narrower of two wildcards). A route whose
 * hostnames all miss the listener does not attach to it.
 */
import type { Gateway, LabelSelector } from '../kube/objects.ts';
import { selectorMatches } from '../kube/objects.ts';
import type { ParentRefInput, RouteKind } from './types.ts';
import { GATEWAY_GROUP } from './validate-route.ts';
import { rec, str } from './validate-support.ts';

export type IngressProtocol = 'HTTP' | 'HTTPS' | 'TLS';

/** Istio's listener `tls.options` key for client certificate validation (`MUTUAL`). */
export const TLS_TERMINATE_MODE_OPTION = 'gateway.istio.io/tls-terminate-mode';

export interface CertificateRef {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface IngressListener {
  readonly name: string;
  readonly port: number;
  readonly protocol: IngressProtocol;
  /** Undefined: every hostname. */
  readonly hostname?: string;
  /** HTTPS listeners (`tls.mode: Terminate`): the certificate Secrets, in order. */
  readonly certificateRefs: readonly CertificateRef[];
  /**
   * HTTPS listeners with `tls.options["gateway.istio.io/tls-terminate-mode"]: MUTUAL`: clients
   * must present a certificate signed by the CA in the (first) certificate Secret's `ca.crt`.
   */
  readonly mutual: boolean;
  /** TLS listeners: `tls.mode: Passthrough` (the only TLS mode programmed). */
  readonly passthrough: boolean;
  readonly allowedFrom: 'Same' | 'All' | 'Selector';
  readonly allowedSelector?: LabelSelector;
  /** Route kinds the listener admits (default HTTPRoute and GRPCRoute). */
  readonly kinds: ReadonlySet<string>;
}

/** A listener this controller does not program, and why. */
export interface SkippedListener {
  readonly name: string;
  readonly reason: string;
  readonly message: string;
}

const DEFAULT_KINDS: ReadonlySet<string> = new Set(['HTTPRoute', 'GRPCRoute']);
const TLS_KINDS: ReadonlySet<string> = new Set(['TLSRoute']);

/**
 * The HTTP, HTTPS (`tls.mode: Terminate`) and TLS (`tls.mode: Passthrough`) listeners of an
 * ingress Gateway, in spec order. Other protocols (TCP, UDP), HTTPS passthrough and TLS
 * termination are not programmed (`skipped`); a listener whose port another protocol already
 * took is skipped too (a protocol conflict).
 */
export function ingressListeners(gw: Gateway): {
  listeners: IngressListener[];
  skipped: SkippedListener[];
} {
  const ns = gw.metadata?.namespace ?? '';
  const listeners: IngressListener[] = [];
  const skipped: SkippedListener[] = [];
  const protocolOfPort = new Map<number, string>();
  for (const l of gw.spec.listeners) {
    if (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS' && l.protocol !== 'TLS') {
      skipped.push({
        name: l.name,
        reason: 'UnsupportedProtocol',
        message: `protocol ${l.protocol} is not supported by the ingress gateway`,
      });
      continue;
    }
    const taken = protocolOfPort.get(l.port);
    if (taken !== undefined && !portSharable(taken, l.protocol)) {
      skipped.push({
        name: l.name,
        reason: 'ProtocolConflict',
        message: `port ${l.port} already serves ${taken}`,
      });
      continue;
    }
    protocolOfPort.set(l.port, l.protocol);
    const tls = rec(l.tls);
    const certificateRefs: CertificateRef[] = [];
    const options = rec(tls.options);
    const mutual = l.protocol === 'HTTPS' && str(options[TLS_TERMINATE_MODE_OPTION]) === 'MUTUAL';
    if (l.protocol === 'TLS') {
      const mode = str(tls.mode) ?? 'Terminate';
      if (mode !== 'Passthrough') {
        skipped.push({
          name: l.name,
          reason: 'UnsupportedValue',
          message: `tls.mode ${mode} is not supported on a TLS listener (only Passthrough)`,
        });
        continue;
      }
    }
    if (l.protocol === 'HTTPS') {
      const mode = str(tls.mode) ?? 'Terminate';
      if (mode !== 'Terminate') {
        skipped.push({
          name: l.name,
          reason: 'UnsupportedValue',
          message: `tls.mode ${mode} is not supported on an HTTPS listener`,
        });
        continue;
      }
      for (const r of Array.isArray(tls.certificateRefs) ? tls.certificateRefs : []) {
        const ref = rec(r);
        const name = str(ref.name) ?? '';
        if (name === '') continue;
        certificateRefs.push({
          group: str(ref.group) ?? '',
          kind: str(ref.kind) ?? 'Secret',
          namespace: str(ref.namespace) ?? ns,
          name,
        });
      }
    }
    const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
    const kinds = (l.allowedRoutes?.kinds ?? [])
      .filter(k => (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP)
      .map(k => k.kind);
    const hostname = l.hostname === undefined || l.hostname === '' ? undefined : l.hostname.toLowerCase();
    listeners.push({
      name: l.name,
      port: l.port,
      protocol: l.protocol,
      ...(hostname === undefined ? {} : { hostname }),
      certificateRefs,
      mutual,
      passthrough: l.protocol === 'TLS',
      allowedFrom: from,
      ...(l.allowedRoutes?.namespaces?.selector === undefined
        ? {}
        : { allowedSelector: l.allowedRoutes.namespaces.selector }),
      kinds: (() => {
        const byProtocol = l.protocol === 'TLS' ? TLS_KINDS : DEFAULT_KINDS;
        return l.allowedRoutes?.kinds === undefined
          ? byProtocol
          : new Set(kinds.filter(k => byProtocol.has(k)));
      })(),
    });
  }
  return { listeners, skipped };
}

/**
 * Whether two listener protocols can share a port: the same protocol, or HTTPS and TLS (both
 * start with a ClientHello; the SNI picks a terminating or a passthrough chain), as upstream.
 */
export function portSharable(a: string, b: string): boolean {
  return a === b || ((a === 'HTTPS' || a === 'TLS') && (b === 'HTTPS' || b === 'TLS'));
}

/** True when `host` (exact) lies inside `wildcard` (`*.example.com`: one or more labels before). */
function insideWildcard(host: string, wildcard: string): boolean {
  const suffix = wildcard.slice(1); // `.example.com`
  return host.length > suffix.length && host.endsWith(suffix);
}

/** The narrower of two names when one contains the other, else undefined. */
export function intersectHostname(a: string, b: string): string | undefined {
  if (a === b) return a;
  const wa = a.startsWith('*.');
  const wb = b.startsWith('*.');
  if (wa && insideWildcard(b, a)) return b;
  if (wb && insideWildcard(a, b)) return a;
  return undefined;
}

/**
 * The virtual host names a route with `routeHostnames` gets on a listener with `listenerHostname`:
 * empty when the route does not attach. `*` when neither names a host.
 */
export function routeHostnamesOnListener(
  listenerHostname: string | undefined,
  routeHostnames: readonly string[],
): string[] {
  const route = routeHostnames.map(h => h.toLowerCase());
  if (listenerHostname === undefined) return route.length === 0 ? ['*'] : [...new Set(route)];
  if (route.length === 0) return [listenerHostname];
  const out = new Set<string>();
  for (const h of route) {
    const i = intersectHostname(listenerHostname, h);
    if (i !== undefined) out.add(i);
  }
  return [...out];
}

/** True when `ref` names this Gateway and (when it says so) this listener and port. */
export function parentRefSelectsListener(
  ref: ParentRefInput,
  gateway: { readonly namespace: string; readonly name: string },
  listener: IngressListener,
): boolean {
  return (
    ref.kind === 'Gateway' &&
    ref.group === GATEWAY_GROUP &&
    ref.namespace === gateway.namespace &&
    ref.name === gateway.name &&
    (ref.sectionName === undefined || ref.sectionName === listener.name) &&
    (ref.port === undefined || ref.port === listener.port)
  );
}

/** True when the listener's `allowedRoutes` admits a route of `kind` from `routeNamespace`. */
export function listenerAdmits(
  listener: IngressListener,
  gatewayNamespace: string,
  kind: RouteKind,
  routeNamespace: string,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): boolean {
  if (!listener.kinds.has(kind)) return false;
  switch (listener.allowedFrom) {
    case 'All':
      return true;
    case 'Same':
      return routeNamespace === gatewayNamespace;
    case 'Selector': {
      const labels = namespaceLabels(routeNamespace);
      return (
        labels !== undefined &&
        listener.allowedSelector !== undefined &&
        selectorMatches(listener.allowedSelector, labels)
      );
    }
  }
}

/** Upstream's listener name for a port: `0.0.0.0_<port>`. */
export function ingressListenerName(port: number): string {
  return `0.0.0.0_${port}`;
}

/** Upstream's route configuration name of a plain HTTP port: `http.<port>`. */
export function httpRouteName(port: number): string {
  return `http.${port}`;
}

/**
 * Upstream's route configuration name of one HTTPS server (Gateway listener):
 * `https.<port>.default.<gateway>~istio-autogenerated-k8s-gateway~<listener>.<namespace>`.
 */
export function httpsRouteName(port: number, gateway: string, listener: string, namespace: string): string {
  return `https.${port}.default.${gateway}~istio-autogenerated-k8s-gateway~${listener}.${namespace}`;
}

/** The filter chain name of a TLS passthrough route on a listener: `<listener>~<namespace>/<route>~<hostname>`. */
export function passthroughChainName(
  listener: string,
  routeNamespace: string,
  route: string,
  host: string,
): string {
  return `${listener}~${routeNamespace}/${route}~${host}`;
}

/** Upstream's outbound cluster name: `outbound|<port>|<subset>|<host>`. */
export function outboundClusterName(port: number, hostname: string, subset?: string): string {
  return `outbound|${port}|${subset ?? ''}|${hostname}`;
}
