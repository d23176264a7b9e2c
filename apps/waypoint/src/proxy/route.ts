/**
 * Pure routing decisions: which filter chain serves a CONNECT authority, which virtual host and
 * route serve a request, which weighted cluster it goes to, and what the upstream path and host
 * become. Each returns a tagged result; nothing here does I/O or keeps state.
 */
import { headerMatches, stringMatches } from '../config/matchers.ts';
import type { RequestHeaders } from '../config/matchers.ts';
import type {
  Cidr,
  ClusterConfig,
  FilterChain,
  ForwardAction,
  HttpChain,
  ListenerConfig,
  PathMatch,
  RedirectAction,
  Route,
  RouteMatch,
  RouteTable,
  TcpChain,
  VirtualHost,
  WaypointConfig,
  WeightedCluster,
} from '../config/types.ts';
import { ipv6Bytes, parseCidr } from '../config/convert-listener.ts';

// Filter chains.

export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  if (ip.length !== cidr.bytes.length) return false;
  let bits = cidr.prefixLength;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** The bytes of an IP (an IPv4-mapped IPv6 address as IPv4). */
export function ipBytes(ip: string): Uint8Array | undefined {
  if (ip.startsWith('::ffff:') && ip.includes('.')) return parseCidr(ip.slice(7), 32)?.bytes;
  if (ip.includes(':')) return ipv6Bytes(ip);
  return parseCidr(ip, 32)?.bytes;
}

export type ChainResult =
  | { readonly kind: 'chain'; readonly chain: FilterChain }
  | { readonly kind: 'no-chain'; readonly reason: string };

/**
 * Envoy's filter chain match, for the fields the waypoint supports: the most specific
 * destination port (set beats unset), then the longest matching prefix range (unset matches
 * any address, least specifically), then `application_protocols` (a chain listing the stream's
 * sniffed protocol beats one without; a chain listing protocols never matches a stream without
 * one). Chains of every listener compete, in listener-name order.
 */
export function selectChain(
  config: WaypointConfig,
  ip: string,
  port: number,
  appProtocol?: string,
): ChainResult {
  const address = ipBytes(ip);
  let best: { chain: FilterChain; portScore: number; prefix: number; alpn: number } | undefined;
  const listeners = [...config.listeners.values()].sort((a, b) => a.name.localeCompare(b.name));
  for (const listener of listeners) {
    for (const chain of listener.chains) {
      const m = chain.match;
      const prefix = destinationScore(chain, address, port);
      if (prefix === undefined) continue;
      let alpn = 0;
      if (m.applicationProtocols !== undefined && m.applicationProtocols.length > 0) {
        if (appProtocol === undefined || !m.applicationProtocols.includes(appProtocol)) continue;
        alpn = 1;
      }
      const portScore = m.destinationPort === undefined ? 0 : 1;
      if (
        best === undefined ||
        portScore > best.portScore ||
        (portScore === best.portScore && prefix > best.prefix) ||
        (portScore === best.portScore && prefix === best.prefix && alpn > best.alpn)
      ) {
        best = { chain, portScore, prefix, alpn };
      }
    }
  }
  if (best !== undefined) return { kind: 'chain', chain: best.chain };
  const fallback = listeners.find(l => l.defaultChain !== undefined)?.defaultChain;
  if (fallback !== undefined) return { kind: 'chain', chain: fallback };
  return {
    kind: 'no-chain',
    reason: listeners.length === 0 ? 'no listener configured yet' : `no filter chain matches ${ip}:${port}`,
  };
}

/** A chain's destination match: undefined if it does not match, else its prefix length (-1: no ranges). */
function destinationScore(
  chain: FilterChain,
  address: Uint8Array | undefined,
  port: number,
): number | undefined {
  const m = chain.match;
  if (m.destinationPort !== undefined && m.destinationPort !== port) return undefined;
  let prefix = -1;
  if (m.prefixRanges.length > 0) {
    if (address === undefined) return undefined;
    for (const cidr of m.prefixRanges) {
      if (cidrContains(cidr, address)) prefix = Math.max(prefix, cidr.prefixLength);
    }
    if (prefix < 0) return undefined;
  }
  return prefix;
}

/**
 * Whether the stream to `ip:port` must be sniffed before a chain is picked: a listener with
 * `http_inspector` has a chain for this destination that matches on `application_protocols`.
 * Returns how long to wait for the first bytes, or undefined (no sniffing).
 */
export function sniffTimeout(config: WaypointConfig, ip: string, port: number): number | undefined {
  const address = ipBytes(ip);
  for (const listener of config.listeners.values()) {
    if (listener.httpInspector === undefined) continue;
    for (const chain of listener.chains) {
      if ((chain.match.applicationProtocols ?? []).length === 0) continue;
      if (destinationScore(chain, address, port) !== undefined) return listener.httpInspector.timeoutMs;
    }
  }
  return undefined;
}

/** What a gateway knows of a downstream connection when it picks the filter chain. */
export interface DownstreamConnection {
  /** The connection starts with a TLS ClientHello. */
  readonly tls: boolean;
  /** The ClientHello's SNI, lowercased; undefined without one (or for plaintext). */
  readonly sni: string | undefined;
  /** The local port it arrived on. */
  readonly port: number;
}

/**
 * How well `names` (a chain's `server_names`) match `sni`: 3 + length for an exact name, 1 +
 * length for the longest matching `*.suffix` wildcard (any depth below the suffix), 0 for a
 * chain without names (any SNI), -1 for no match.
 */
export function serverNameScore(names: readonly string[] | undefined, sni: string | undefined): number {
  if (names === undefined || names.length === 0) return 0;
  if (sni === undefined) return -1;
  let best = -1;
  for (const n of names) {
    if (n === sni) best = Math.max(best, 3 + n.length);
    else if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && sni.length > n.length - 1)
      best = Math.max(best, 1 + n.length);
  }
  return best;
}

/**
 * Whether a chain takes TLS connections: it terminates TLS (`transport_socket`), or passes TLS
 * through (`transport_protocol: tls` without a transport socket).
 */
export function chainTakesTls(chain: FilterChain): boolean {
  return chain.tls !== undefined || chain.match.transportProtocol === 'tls';
}

/** A TLS passthrough chain: matched on the ClientHello, relayed without terminating. */
export function isPassthrough(chain: FilterChain): boolean {
  return chain.tls === undefined && chain.match.transportProtocol === 'tls';
}

/**
 * Envoy's filter chain match on a gateway listener, for one downstream connection: chains of
 * the connection's kind (a `transport_socket` or `transport_protocol: tls` for TLS, neither for plaintext), the destination
 * port (set beats unset), then the server names (exact, then the most specific `*.suffix`,
 * then a chain without names, which is the default). Nothing matching: the listener's
 * `default_filter_chain`, if it is of the connection's kind.
 */
export function selectGatewayChain(listener: ListenerConfig, conn: DownstreamConnection): ChainResult {
  let best: { chain: FilterChain; portScore: number; nameScore: number } | undefined;
  for (const chain of listener.chains) {
    if (chainTakesTls(chain) !== conn.tls) continue;
    const m = chain.match;
    if (m.destinationPort !== undefined && m.destinationPort !== conn.port) continue;
    const nameScore = serverNameScore(m.serverNames, conn.sni);
    if (nameScore < 0) continue;
    const portScore = m.destinationPort === undefined ? 0 : 1;
    if (
      best === undefined ||
      portScore > best.portScore ||
      (portScore === best.portScore && nameScore > best.nameScore)
    ) {
      best = { chain, portScore, nameScore };
    }
  }
  if (best !== undefined) return { kind: 'chain', chain: best.chain };
  const fallback = listener.defaultChain;
  if (fallback !== undefined && chainTakesTls(fallback) === conn.tls)
    return { kind: 'chain', chain: fallback };
  const what = conn.tls
    ? `TLS with SNI ${conn.sni === undefined ? '(none)' : JSON.stringify(conn.sni)}`
    : 'plaintext';
  return {
    kind: 'no-chain',
    reason: `no filter chain of listener ${listener.name} matches ${what} on port ${conn.port}`,
  };
}

// Virtual hosts and routes.

/** Envoy's virtual host order: exact, then `*.suffix` (longest first), `prefix.*` (longest first), `*`. */
export function selectVirtualHost(table: RouteTable, host: string): VirtualHost | undefined {
  const candidates = [host.toLowerCase()];
  const colon = candidates[0]!.lastIndexOf(':');
  if (colon > 0 && !candidates[0]!.endsWith(']')) candidates.push(candidates[0]!.slice(0, colon));
  for (const h of candidates) {
    let suffixBest: { vh: VirtualHost; len: number } | undefined;
    let prefixBest: { vh: VirtualHost; len: number } | undefined;
    let any: VirtualHost | undefined;
    for (const vh of table.virtualHosts) {
      for (const d of vh.domains) {
        if (d === h) return vh;
        if (d === '*') any ??= vh;
        else if (d.startsWith('*') && h.endsWith(d.slice(1)) && h.length > d.length - 1) {
          if (suffixBest === undefined || d.length > suffixBest.len) suffixBest = { vh, len: d.length };
        } else if (d.endsWith('*') && h.startsWith(d.slice(0, -1)) && h.length > d.length - 1) {
          if (prefixBest === undefined || d.length > prefixBest.len) prefixBest = { vh, len: d.length };
        }
      }
    }
    const found = suffixBest?.vh ?? prefixBest?.vh ?? any;
    if (found !== undefined) return found;
  }
  return undefined;
}

/** What route matching looks at. `path` is the request target's path, without the query. */
export interface RequestInfo {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lowercased names; includes `:method`, `:authority`, `:path`, `:scheme`. */
  readonly headers: RequestHeaders;
}

function pathMatches(m: PathMatch, path: string, caseSensitive: boolean): boolean {
  if (m.kind === 'regex') return m.regex.test(path);
  const p = caseSensitive ? path : path.toLowerCase();
  switch (m.kind) {
    case 'prefix':
      return p.startsWith(m.value);
    case 'exact':
      return p === m.value;
    case 'separated-prefix':
      return p === m.value || p.startsWith(m.value.endsWith('/') ? m.value : `${m.value}/`);
  }
}

export function routeMatches(m: RouteMatch, req: RequestInfo): boolean {
  if (!pathMatches(m.path, req.path, m.caseSensitive)) return false;
  for (const h of m.headers) if (!headerMatches(h, req.headers)) return false;
  for (const q of m.query) {
    const value = req.query.get(q.name);
    if (value === null) return false;
    if (q.match.kind !== 'present' && !stringMatches(q.match, value)) return false;
  }
  return true;
}

export type RouteResult =
  | { readonly kind: 'no-virtual-host' }
  | { readonly kind: 'no-route'; readonly virtualHost: VirtualHost }
  | { readonly kind: 'route'; readonly virtualHost: VirtualHost; readonly route: Route };

/** The first route of the request's virtual host whose match holds. */
export function selectRoute(table: RouteTable, req: RequestInfo): RouteResult {
  const virtualHost = selectVirtualHost(table, req.host);
  if (virtualHost === undefined) return { kind: 'no-virtual-host' };
  for (const route of virtualHost.routes) {
    if (routeMatches(route.match, req)) return { kind: 'route', virtualHost, route };
  }
  return { kind: 'no-route', virtualHost };
}

/** Picks a weighted cluster with `random` in [0, 1). */
export function pickWeightedCluster(action: ForwardAction, random: number): WeightedCluster {
  let point = random * action.totalWeight;
  for (const c of action.clusters) {
    if (point < c.weight) return c;
    point -= c.weight;
  }
  return action.clusters[action.clusters.length - 1]!;
}

/** The cluster of a TCP chain for one connection: its `cluster`, or one of `weighted_clusters` by weight (`random` in [0, 1)). */
export function pickTcpCluster(action: TcpChain, random: number): string {
  const weighted = action.weightedClusters;
  if (weighted === undefined || weighted.length === 0) return action.cluster;
  const total = weighted.reduce((sum, c) => sum + c.weight, 0);
  let point = random * total;
  for (const c of weighted) {
    if (point < c.weight) return c.name;
    point -= c.weight;
  }
  return weighted[weighted.length - 1]!.name;
}

/** The upstream path after `prefix_rewrite` or `regex_rewrite` (query kept). */
export function rewritePath(action: ForwardAction, route: Route, pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? '' : pathAndQuery.slice(q);
  if (
    action.prefixRewrite !== undefined &&
    (route.match.path.kind === 'prefix' || route.match.path.kind === 'separated-prefix')
  ) {
    const prefix = route.match.path.value;
    return action.prefixRewrite + path.slice(prefix.length) + query;
  }
  if (action.regexRewrite !== undefined) {
    return path.replace(action.regexRewrite.regex, action.regexRewrite.substitution) + query;
  }
  return pathAndQuery;
}

/** The `Location` of a redirect. */
export function redirectLocation(
  action: RedirectAction,
  route: Route,
  req: { readonly scheme: string; readonly host: string; readonly pathAndQuery: string },
): string {
  const q = req.pathAndQuery.indexOf('?');
  let path = q < 0 ? req.pathAndQuery : req.pathAndQuery.slice(0, q);
  const query = q < 0 || action.stripQuery ? '' : req.pathAndQuery.slice(q);
  if (action.path !== undefined) path = action.path;
  else if (
    action.prefixRewrite !== undefined &&
    (route.match.path.kind === 'prefix' || route.match.path.kind === 'separated-prefix')
  ) {
    path = action.prefixRewrite + path.slice(route.match.path.value.length);
  } else if (action.regexRewrite !== undefined) {
    path = path.replace(action.regexRewrite.regex, action.regexRewrite.substitution);
  }
  const scheme = action.scheme ?? req.scheme;
  let host = req.host;
  let port: string | undefined;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) {
    port = host.slice(colon + 1);
    host = host.slice(0, colon);
  }
  if (action.host !== undefined) host = action.host;
  if (action.port !== undefined) port = String(action.port);
  else if (action.scheme !== undefined) port = undefined;
  const defaultPort = scheme === 'https' ? '443' : '80';
  const authority = port === undefined || port === defaultPort ? host : `${host}:${port}`;
  return `${scheme}://${authority}${path}${query}`;
}

export type RequestDecision =
  | { readonly kind: 'no-route-config'; readonly name: string }
  | { readonly kind: 'no-route' }
  | { readonly kind: 'redirect'; readonly route: Route; readonly status: number; readonly location: string }
  | {
      readonly kind: 'direct-response';
      readonly route: Route;
      readonly status: number;
      readonly body: string;
    }
  | { readonly kind: 'no-cluster'; readonly route: Route; readonly cluster: string }
  | {
      readonly kind: 'forward';
      readonly virtualHost: VirtualHost;
      readonly route: Route;
      readonly action: ForwardAction;
      readonly weighted: WeightedCluster;
      readonly cluster: ClusterConfig;
      /** Upstream path and query after rewrites. */
      readonly path: string;
      /** Upstream Host after `host_rewrite_literal`. */
      readonly host: string;
    };

/** The whole per-request decision of an HTTP chain. */
export function decideRequest(
  config: WaypointConfig,
  chain: HttpChain,
  req: RequestInfo & { readonly scheme: string; readonly pathAndQuery: string },
  random: number,
): RequestDecision {
  let table: RouteTable | undefined;
  if ('rds' in chain.routes) {
    table = config.routes.get(chain.routes.rds);
    if (table === undefined) return { kind: 'no-route-config', name: chain.routes.rds };
  } else {
    table = chain.routes.inline;
  }
  const result = selectRoute(table, req);
  if (result.kind !== 'route') return { kind: 'no-route' };
  const { route, virtualHost } = result;
  const action = route.action;
  switch (action.kind) {
    case 'redirect':
      return {
        kind: 'redirect',
        route,
        status: action.status,
        location: redirectLocation(action, route, req),
      };
    case 'direct-response':
      return { kind: 'direct-response', route, status: action.status, body: action.body };
    case 'forward': {
      const weighted = pickWeightedCluster(action, random);
      const cluster = config.clusters.get(weighted.name);
      if (cluster === undefined) return { kind: 'no-cluster', route, cluster: weighted.name };
      return {
        kind: 'forward',
        virtualHost,
        route,
        action,
        weighted,
        cluster,
        path: rewritePath(action, route, req.pathAndQuery),
        host: action.hostRewrite ?? req.host,
      };
    }
  }
}
