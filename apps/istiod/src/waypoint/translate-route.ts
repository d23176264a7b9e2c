/**
 * HTTPRoute / GRPCRoute / VirtualService rules to an Envoy `RouteConfiguration` (pure).
 *
 * Each rule match becomes one Envoy route; routes are ordered by Gateway API precedence as
 * upstream sorts them: path match type (Exact, then PathPrefix, then RegularExpression), longer
 * path first, a method match first, more header matches first, more query matches first. Ties
 * keep the input order: oldest route first, then `namespace/name`, then rule and match order.
 */
import { duration, typedConfig, EnvoyType } from './envoy-protos.ts';
import { BACKEND_NOT_FOUND_CLUSTER } from './names.ts';
import type { ResolvedRoute } from './resolve-route.ts';
import type {
  BackendTarget,
  FaultPolicy,
  HeaderModifier,
  PathModifier,
  RetryPolicy,
  RouteFilter,
  RouteMatch,
  RouteRule,
  ValueMatch,
  WeightedBackend,
} from './types.ts';

export const FAULT_FILTER = 'envoy.filters.http.fault';
/** Istio's default retry policy, used for every route without its own. */
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 2,
  codes: [],
  retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
};

/** How route rules reach clusters: shared by the waypoint's and the ingress gateway's routes. */
export interface RouteTargetContext {
  /** The port the traffic arrived on (VirtualService destinations without a port use it). */
  readonly port: number;
  clusterFor(target: BackendTarget): string;
  /** Envoy hash policies from the backend's DestinationRule consistentHash, if any. */
  hashPolicyFor(target: BackendTarget): readonly object[] | undefined;
}

export interface RouteTranslationContext extends RouteTargetContext {
  /** The route configuration (and Service port) name, `inbound-vip|...`. */
  readonly name: string;
  readonly virtualHostName: string;
  /** The Service port itself, for the default route. */
  readonly defaultTarget: BackendTarget;
}

interface FlatRoute {
  readonly rule: RouteRule;
  readonly match: RouteMatch;
  readonly matchIndex: number;
}

function pathRank(m: RouteMatch): number {
  switch (m.path?.type) {
    case 'Exact':
      return 3;
    case 'PathPrefix':
      return 2;
    case 'RegularExpression':
      return 1;
    default:
      return 0;
  }
}

/** Negative when `a` must come before `b` (Gateway API precedence, as upstream sorts). */
export function comparePrecedence(a: RouteMatch, b: RouteMatch): number {
  const ra = pathRank(a);
  const rb = pathRank(b);
  if (ra !== rb) return rb - ra;
  const la = a.path?.value.length ?? 0;
  const lb = b.path?.value.length ?? 0;
  if (la !== lb) return lb - la;
  if ((a.method === undefined) !== (b.method === undefined)) return a.method !== undefined ? -1 : 1;
  if (a.headers.length !== b.headers.length) return b.headers.length - a.headers.length;
  return b.queryParams.length - a.queryParams.length;
}

/** Orders routes oldest first, then by `namespace/name` (the Gateway API tie-breakers). */
export function sortRoutesByAge(routes: readonly ResolvedRoute[]): ResolvedRoute[] {
  return [...routes].sort((a, b) => {
    const ta = a.route.creationTimestamp;
    const tb = b.route.creationTimestamp;
    if (ta !== tb) return ta < tb ? -1 : 1;
    const ka = `${a.route.namespace}/${a.route.name}`;
    const kb = `${b.route.namespace}/${b.route.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function stringMatcher(m: ValueMatch): object {
  switch (m.type) {
    case 'RegularExpression':
      return { safeRegex: { regex: m.value } };
    case 'Prefix':
      return { prefix: m.value };
    default:
      return { exact: m.value };
  }
}

function envoyMatch(m: RouteMatch): object {
  const out: Record<string, unknown> = {};
  const p = m.path ?? { type: 'PathPrefix', value: '/' };
  if (p.type === 'Exact') out.path = p.value;
  else if (p.type === 'RegularExpression') out.safeRegex = { regex: p.value };
  else {
    const trimmed = p.value.replace(/\/+$/, '');
    if (trimmed === '') out.prefix = '/';
    else out.pathSeparatedPrefix = trimmed;
  }
  const headers: object[] = m.headers.map(h => ({ name: h.name, stringMatch: stringMatcher(h) }));
  if (m.method !== undefined) headers.push({ name: ':method', stringMatch: { exact: m.method } });
  if (headers.length > 0) out.headers = headers;
  if (m.queryParams.length > 0)
    out.queryParameters = m.queryParams.map(q => ({ name: q.name, stringMatch: stringMatcher(q) }));
  return out;
}

function fractional(percent: number): { numerator: number; denominator: string } {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

export function envoyRetryPolicy(retry: RetryPolicy, perTryTimeoutMs?: number): object | undefined {
  if (retry.attempts === 0) return undefined;
  const retryOn = new Set(retry.retryOn);
  if (retry.codes.length > 0) retryOn.add('retriable-status-codes');
  const perTry = perTryTimeoutMs ?? retry.perTryTimeoutMs;
  return {
    retryOn: [...retryOn].join(','),
    numRetries: retry.attempts,
    ...(retry.codes.length > 0 ? { retriableStatusCodes: [...retry.codes] } : {}),
    ...(perTry !== undefined && perTry > 0 ? { perTryTimeout: duration(perTry) } : {}),
    ...(retry.backoffMs !== undefined && retry.backoffMs > 0
      ? { retryBackOff: { baseInterval: duration(retry.backoffMs) } }
      : {}),
    retryHostPredicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typedConfig: typedConfig(EnvoyType.previousHosts, {}),
      },
    ],
    hostSelectionRetryMaxAttempts: 5,
  };
}

/** A backend's header changes as the fields of a weighted cluster (or of a route). */
function backendHeaderOptions(b: WeightedBackend): {
  requestHeadersToAdd?: object[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: object[];
  responseHeadersToRemove?: string[];
} {
  const req = b.requestHeaders === undefined ? undefined : headerOptions(b.requestHeaders);
  const res = b.responseHeaders === undefined ? undefined : headerOptions(b.responseHeaders);
  return {
    ...(req !== undefined && req.add.length > 0 ? { requestHeadersToAdd: req.add } : {}),
    ...(req !== undefined && req.remove.length > 0 ? { requestHeadersToRemove: req.remove } : {}),
    ...(res !== undefined && res.add.length > 0 ? { responseHeadersToAdd: res.add } : {}),
    ...(res !== undefined && res.remove.length > 0 ? { responseHeadersToRemove: res.remove } : {}),
  };
}

/** The backend a rule sends to as a plain `cluster` (see `routeAction`), if it does. */
function singleBackend(rule: RouteRule): WeightedBackend | undefined {
  const backends = rule.backends.filter(b => b.weight > 0 || rule.backends.length === 1);
  return backends.length === 1 && rule.unresolvedWeight === 0 ? backends[0] : undefined;
}

function headerOptions(mod: HeaderModifier): { add: object[]; remove: string[] } {
  return {
    add: [
      ...mod.set.map(h => ({
        header: { key: h.name, value: h.value },
        appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
      })),
      ...mod.add.map(h => ({
        header: { key: h.name, value: h.value },
        appendAction: 'APPEND_IF_EXISTS_OR_ADD',
      })),
    ],
    remove: [...mod.remove],
  };
}

const REDIRECT_CODES: Readonly<Record<number, string>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** `value` as a literal in an RE2 regex. */
function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pathRewrite(mod: PathModifier, match: RouteMatch): object {
  if (mod.type === 'ReplaceFullPath')
    return { regexRewrite: { pattern: { regex: '^/.*$' }, substitution: mod.value } };
  // ReplacePrefixMatch: on a "/" prefix every path starts with "/", so keep the separator.
  const prefix = match.path?.type === 'PathPrefix' ? match.path.value.replace(/\/+$/, '') : '';
  if (prefix === '' && mod.value !== '/')
    return {
      regexRewrite: { pattern: { regex: '^/(.*)' }, substitution: `${mod.value.replace(/\/+$/, '')}/\\1` },
    };
  // As Istio: replacing a prefix by "/" strips it and keeps exactly one slash (a plain
  // prefix_rewrite would turn `/strip-prefix/three` into `//three`); the same for any
  // replacement ending in "/" (Gateway API: `/foo/bar` with `/xyz/` gives `/xyz/bar`).
  if (prefix !== '' && mod.value.endsWith('/'))
    return {
      regexRewrite: {
        pattern: { regex: `^${escapeRegex(prefix)}(/?)(.*)` },
        substitution: `${mod.value.replace(/\/+$/, '')}/\\2`,
      },
    };
  return { prefixRewrite: mod.value };
}

export function faultConfig(fault: FaultPolicy): object {
  return {
    ...(fault.delay !== undefined
      ? {
          delay: {
            fixedDelay: duration(fault.delay.fixedDelayMs),
            percentage: fractional(fault.delay.percent),
          },
        }
      : {}),
    ...(fault.abort !== undefined
      ? { abort: { httpStatus: fault.abort.httpStatus, percentage: fractional(fault.abort.percent) } }
      : {}),
  };
}

function routeAction(rule: RouteRule, match: RouteMatch, ctx: RouteTargetContext): Record<string, unknown> {
  const action: Record<string, unknown> = {};
  const target = (b: BackendTarget): BackendTarget => (b.port === 0 ? { ...b, port: ctx.port } : b);
  const backends = rule.backends.filter(b => b.weight > 0 || rule.backends.length === 1);
  if (backends.length === 1 && rule.unresolvedWeight === 0)
    action.cluster = ctx.clusterFor(target(backends[0]!));
  else {
    const clusters: Record<string, unknown>[] = backends.map(b => ({
      name: ctx.clusterFor(target(b)),
      weight: b.weight,
      ...backendHeaderOptions(b),
    }));
    if (rule.unresolvedWeight > 0)
      clusters.push({ name: BACKEND_NOT_FOUND_CLUSTER, weight: rule.unresolvedWeight });
    action.weightedClusters = { clusters };
  }
  if (rule.unresolvedWeight > 0) action.clusterNotFoundResponseCode = 'INTERNAL_SERVER_ERROR';
  // Istio's default: no route timeout unless one is set.
  action.timeout = duration(rule.requestTimeoutMs ?? 0);
  // As upstream: a gRPC request's `grpc-timeout` replaces the timeout, capped by it (0: no cap).
  action.maxGrpcTimeout = action.timeout;
  const retry = envoyRetryPolicy(rule.retry ?? DEFAULT_RETRY, rule.backendTimeoutMs);
  if (retry !== undefined) action.retryPolicy = retry;
  const first = backends[0];
  const hash = first === undefined ? undefined : ctx.hashPolicyFor(target(first));
  if (hash !== undefined && hash.length > 0) action.hashPolicy = hash;
  const mirrors: object[] = [];
  for (const f of rule.filters) {
    if (f.type === 'URLRewrite') {
      if (f.hostname !== undefined) action.hostRewriteLiteral = f.hostname;
      if (f.path !== undefined) Object.assign(action, pathRewrite(f.path, match));
    } else if (f.type === 'RequestMirror') {
      mirrors.push({
        cluster: ctx.clusterFor(target(f.backend)),
        runtimeFraction: { defaultValue: fractional(f.percent) },
      });
    }
  }
  if (mirrors.length > 0) action.requestMirrorPolicies = mirrors;
  return action;
}

function redirectAction(f: Extract<RouteFilter, { type: 'RequestRedirect' }>, match: RouteMatch): object {
  const out: Record<string, unknown> = { responseCode: REDIRECT_CODES[f.statusCode] ?? 'FOUND' };
  if (f.scheme !== undefined) out.schemeRedirect = f.scheme;
  if (f.hostname !== undefined) out.hostRedirect = f.hostname;
  if (f.port !== undefined) out.portRedirect = f.port;
  if (f.path !== undefined) {
    if (f.path.type === 'ReplaceFullPath') out.pathRedirect = f.path.value;
    // As the URLRewrite filter: Envoy's redirect takes the same prefix_rewrite/regex_rewrite, and
    // a prefix replaced by "/" must leave exactly one slash (`/foo/x` → `/x`, not `//x`).
    else Object.assign(out, pathRewrite(f.path, match));
  }
  return out;
}

function envoyRoute(flat: FlatRoute, ctx: RouteTargetContext): object {
  const { rule, match } = flat;
  // Upstream names every Envoy route of a rule `<namespace>.<route>.<rule index>` (one per match).
  const out: Record<string, unknown> = { name: rule.name, match: envoyMatch(match) };
  const redirect = rule.filters.find(f => f.type === 'RequestRedirect');
  if (redirect !== undefined) out.redirect = redirectAction(redirect, match);
  else if (rule.backends.length === 0) out.directResponse = { status: 500 };
  else out.route = routeAction(rule, match, ctx);
  for (const f of rule.filters) {
    if (f.type === 'RequestHeaderModifier') {
      const h = headerOptions(f.modifier);
      if (h.add.length > 0) out.requestHeadersToAdd = h.add;
      if (h.remove.length > 0) out.requestHeadersToRemove = h.remove;
    } else if (f.type === 'ResponseHeaderModifier') {
      const h = headerOptions(f.modifier);
      if (h.add.length > 0) out.responseHeadersToAdd = h.add;
      if (h.remove.length > 0) out.responseHeadersToRemove = h.remove;
    }
  }
  // One backend goes out as `cluster`: its own header changes join the route's, after them (as
  // Istio does for a single destination); several get them on their weighted cluster.
  const single = out.route === undefined ? undefined : singleBackend(rule);
  if (single !== undefined) {
    const h = backendHeaderOptions(single);
    for (const key of [
      'requestHeadersToAdd',
      'requestHeadersToRemove',
      'responseHeadersToAdd',
      'responseHeadersToRemove',
    ] as const) {
      const extra = h[key];
      if (extra !== undefined) out[key] = [...((out[key] as unknown[] | undefined) ?? []), ...extra];
    }
  }
  if (rule.fault !== undefined && (rule.fault.delay !== undefined || rule.fault.abort !== undefined))
    out.typedPerFilterConfig = { [FAULT_FILTER]: typedConfig(EnvoyType.fault, faultConfig(rule.fault)) };
  return out;
}

/** The flattened, precedence-ordered (rule, match) pairs of the routes. */
export function orderedMatches(routes: readonly ResolvedRoute[]): FlatRoute[] {
  const flat: FlatRoute[] = [];
  for (const r of sortRoutesByAge(routes))
    for (const rule of r.rules)
      rule.matches.forEach((match, matchIndex) => flat.push({ rule, match, matchIndex }));
  // Array.prototype.sort is stable: ties keep age/name/rule/match order.
  return flat.sort((a, b) => comparePrecedence(a.match, b.match));
}

/** The Envoy routes of `routes`, in Gateway API precedence order (empty without rules). */
export function translateRoutes(routes: readonly ResolvedRoute[], ctx: RouteTargetContext): object[] {
  return orderedMatches(routes).map(f => envoyRoute(f, ctx));
}

/** The default route of a Service port without routes: everything to its own cluster. */
function defaultRoute(ctx: RouteTranslationContext): object {
  const hash = ctx.hashPolicyFor(ctx.defaultTarget);
  return {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster: ctx.clusterFor(ctx.defaultTarget),
      timeout: duration(0),
      maxGrpcTimeout: duration(0),
      retryPolicy: envoyRetryPolicy(DEFAULT_RETRY),
      ...(hash !== undefined && hash.length > 0 ? { hashPolicy: hash } : {}),
    },
  };
}

/** The `RouteConfiguration` of one Service port. Routes that attach elsewhere must be filtered out first. */
export function buildRouteConfiguration(
  routes: readonly ResolvedRoute[],
  ctx: RouteTranslationContext,
): object {
  const translated = translateRoutes(routes, ctx);
  const envoyRoutes = translated.length === 0 ? [defaultRoute(ctx)] : translated;
  return {
    name: ctx.name,
    virtualHosts: [{ name: ctx.virtualHostName, domains: ['*'], routes: envoyRoutes }],
    validateClusters: false,
  };
}
