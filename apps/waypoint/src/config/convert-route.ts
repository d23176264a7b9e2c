/**
 * `RouteConfiguration` → `RouteTable`. Supported: virtual hosts by domain; matches on path
 * (prefix, exact, regex, separated prefix), headers (`:method` included), query parameters;
 * `cluster` and `weighted_clusters`; header modifiers at every level; `redirect`;
 * `direct_response`; prefix, regex and host rewrites; retries; timeouts; hash policies; the
 * fault filter's and the local rate limit filter's per-route configs (`typed_per_filter_config`);
 * `request_mirror_policies`.
 * Anything else set on the resource is reported, and the resource is NACKed.
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { FAULT_FILTER, convertFault, perMillion } from './convert-fault.ts';
import { convertLocalRateLimit } from './convert-local-ratelimit.ts';
import { HEADER_MOD_FIELDS, convertHeaderMatch, convertHeaderMods, convertStringMatch } from './matchers.ts';
import { ProtoReader } from './proto-reader.ts';
import { EnvoyType } from '../xds/envoy-protos.ts';
import type {
  Converted,
  FaultConfig,
  ForwardAction,
  HashPolicy,
  LocalRateLimitConfig,
  MirrorPolicy,
  PathMatch,
  QueryMatch,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  VirtualHost,
  WeightedCluster,
} from './types.ts';

/** The `retry_on` conditions the waypoint implements. */
export const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-status-codes',
  'refused-stream',
  'unavailable',
  'cancelled',
  'deadline-exceeded',
  'resource-exhausted',
]);

const REDIRECT_CODES: Record<string, RedirectAction['status']> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

export function convertMatch(r: ProtoReader, m: ProtoObject, path: string): RouteMatch | undefined {
  r.only(m, path, [
    'prefix',
    'path',
    'safe_regex',
    'path_separated_prefix',
    'case_sensitive',
    'headers',
    'query_parameters',
  ]);
  const caseSensitive = r.wrappedBool(m, 'case_sensitive') !== false;
  let pathMatch: PathMatch | undefined;
  const prefix = r.string(m, 'prefix');
  const exact = r.string(m, 'path');
  const sep = r.string(m, 'path_separated_prefix');
  const safe = r.object(m, 'safe_regex');
  if (prefix !== undefined) pathMatch = { kind: 'prefix', value: prefix };
  else if (exact !== undefined) pathMatch = { kind: 'exact', value: exact };
  else if (sep !== undefined) pathMatch = { kind: 'separated-prefix', value: sep };
  else if (safe !== undefined) {
    const regex = r.regex(
      r.string(safe, 'regex') ?? '',
      `${path}.safe_regex.regex`,
      caseSensitive ? '' : 'i',
    );
    if (regex !== undefined) pathMatch = { kind: 'regex', regex };
  } else {
    r.problem(path, 'a route match needs prefix, path, safe_regex or path_separated_prefix');
  }
  if (pathMatch === undefined) return undefined;
  if (!caseSensitive && pathMatch.kind !== 'regex') {
    pathMatch = { ...pathMatch, value: pathMatch.value.toLowerCase() };
  }
  const headers = r
    .list(m, 'headers')
    .map((h, i) => convertHeaderMatch(r, h, `${path}.headers[${i}]`))
    .filter(h => h !== undefined);
  const query: QueryMatch[] = [];
  r.list(m, 'query_parameters').forEach((q, i) => {
    const qp = `${path}.query_parameters[${i}]`;
    r.only(q, qp, ['name', 'string_match', 'present_match']);
    const name = r.string(q, 'name') ?? '';
    if (name === '') r.problem(`${qp}.name`, 'a query parameter matcher needs a name');
    const sm = r.object(q, 'string_match');
    if (sm !== undefined) {
      const match = convertStringMatch(r, sm, `${qp}.string_match`);
      if (match !== undefined) query.push({ name, match });
    } else {
      query.push({ name, match: { kind: 'present' } });
    }
  });
  return { path: pathMatch, caseSensitive, headers, query };
}

function convertRetry(r: ProtoReader, p: ProtoObject, path: string): RetryPolicy {
  r.only(
    p,
    path,
    ['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off'],
    // Host selection hints: the waypoint already prefers another endpoint on a retry.
    ['retry_host_predicate', 'host_selection_retry_max_attempts'],
  );
  const retryOn = new Set(
    (r.string(p, 'retry_on') ?? '')
      .split(',')
      .map(s => s.trim())
      .filter(s => s !== ''),
  );
  for (const cond of retryOn) {
    if (!RETRY_ON.has(cond))
      r.problem(`${path}.retry_on`, `condition ${JSON.stringify(cond)} is not supported`);
  }
  const numRetries = r.wrappedNumber(p, 'num_retries') ?? 1;
  const codes = (Array.isArray(p.retriable_status_codes) ? p.retriable_status_codes : []).map(Number);
  const backoff = r.object(p, 'retry_back_off') ?? {};
  const base = r.durationMs(backoff, 'base_interval', `${path}.retry_back_off`) ?? 25;
  const max = r.durationMs(backoff, 'max_interval', `${path}.retry_back_off`) ?? base * 10;
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs: r.durationMs(p, 'per_try_timeout', path) ?? 0,
    retriableStatusCodes: new Set(codes.filter(c => Number.isInteger(c) && c >= 100 && c <= 599)),
    backoffBaseMs: base,
    backoffMaxMs: max,
  };
}

function convertForward(r: ProtoReader, a: ProtoObject, path: string): ForwardAction | undefined {
  r.only(
    a,
    path,
    [
      'cluster',
      'weighted_clusters',
      'timeout',
      'retry_policy',
      'prefix_rewrite',
      'regex_rewrite',
      'host_rewrite_literal',
      'hash_policy',
      'max_grpc_timeout',
      'max_stream_duration',
      'request_mirror_policies',
    ],
    // No effect here: WebSocket upgrades pass as plain HTTP/1.1 bodies; the cluster-not-found
    // status keeps Envoy's default.
    ['upgrade_configs', 'cluster_not_found_response_code'],
  );
  let grpcTimeout: ForwardAction['grpcTimeout'];
  const legacyMax = r.durationMs(a, 'max_grpc_timeout', path);
  const streamDuration = r.object(a, 'max_stream_duration');
  if (streamDuration !== undefined) {
    const sp = `${path}.max_stream_duration`;
    // A plain stream-duration limit has no effect here beyond the route timeout.
    r.only(
      streamDuration,
      sp,
      ['grpc_timeout_header_max'],
      ['max_stream_duration', 'grpc_timeout_header_offset'],
    );
    const headerMax = r.durationMs(streamDuration, 'grpc_timeout_header_max', sp);
    if (headerMax !== undefined) grpcTimeout = { mode: 'limit', maxMs: headerMax };
  }
  if (legacyMax !== undefined) grpcTimeout = { mode: 'replace', maxMs: legacyMax };
  const clusters: WeightedCluster[] = [];
  const single = r.string(a, 'cluster');
  const weighted = r.object(a, 'weighted_clusters');
  if (single !== undefined) {
    clusters.push({
      name: single,
      weight: 1,
      requestHeaders: { add: [], remove: [] },
      responseHeaders: { add: [], remove: [] },
    });
  } else if (weighted !== undefined) {
    r.only(weighted, `${path}.weighted_clusters`, ['clusters', 'total_weight']);
    r.list(weighted, 'clusters').forEach((c, i) => {
      const cp = `${path}.weighted_clusters.clusters[${i}]`;
      r.only(c, cp, ['name', 'weight', ...HEADER_MOD_FIELDS]);
      const name = r.string(c, 'name') ?? '';
      if (name === '') r.problem(`${cp}.name`, 'a weighted cluster needs a name');
      clusters.push({
        name,
        weight: r.wrappedNumber(c, 'weight') ?? 0,
        requestHeaders: convertHeaderMods(r, c, 'request', cp),
        responseHeaders: convertHeaderMods(r, c, 'response', cp),
      });
    });
    if (clusters.length === 0) r.problem(`${path}.weighted_clusters`, 'needs at least one cluster');
  } else {
    r.problem(path, 'a route action needs cluster or weighted_clusters (cluster_header is not supported)');
    return undefined;
  }
  const totalWeight = clusters.reduce((sum, c) => sum + c.weight, 0);
  if (totalWeight <= 0) r.problem(path, 'the cluster weights add up to 0');
  const rewrite = convertRegexRewrite(r, a, path);
  const hashPolicy: HashPolicy[] = [];
  r.list(a, 'hash_policy').forEach((h, i) => {
    const hp = `${path}.hash_policy[${i}]`;
    r.only(h, hp, ['header', 'connection_properties', 'query_parameter'], ['terminal']);
    const header = r.object(h, 'header');
    const query = r.object(h, 'query_parameter');
    if (header !== undefined)
      hashPolicy.push({ kind: 'header', name: (r.string(header, 'header_name') ?? '').toLowerCase() });
    else if (query !== undefined) hashPolicy.push({ kind: 'query', name: r.string(query, 'name') ?? '' });
    else if (r.object(h, 'connection_properties') !== undefined) hashPolicy.push({ kind: 'source-ip' });
  });
  const retry = r.object(a, 'retry_policy');
  const mirrors = r
    .list(a, 'request_mirror_policies')
    .map((m, i) => convertMirror(r, m, `${path}.request_mirror_policies[${i}]`));
  return {
    kind: 'forward',
    clusters,
    totalWeight,
    // Envoy's default route timeout is 15 s; 0 disables it.
    timeoutMs: r.durationMs(a, 'timeout', path) ?? 15_000,
    grpcTimeout,
    retry: retry === undefined ? undefined : convertRetry(r, retry, `${path}.retry_policy`),
    prefixRewrite: r.string(a, 'prefix_rewrite'),
    regexRewrite: rewrite,
    hostRewrite: r.string(a, 'host_rewrite_literal'),
    hashPolicy,
    ...(mirrors.length > 0 ? { mirrors } : {}),
  };
}

/** One `request_mirror_policies` entry; `runtime_fraction` absent mirrors every request, as Envoy. */
function convertMirror(r: ProtoReader, m: ProtoObject, path: string): MirrorPolicy {
  r.only(m, path, ['cluster', 'runtime_fraction'], ['trace_sampled']);
  const cluster = r.string(m, 'cluster') ?? '';
  if (cluster === '') r.problem(`${path}.cluster`, 'is empty (cluster_header is not supported)');
  const fraction = r.object(m, 'runtime_fraction');
  if (fraction === undefined) return { cluster, perMillion: 1_000_000 };
  r.only(fraction, `${path}.runtime_fraction`, ['default_value'], ['runtime_key']);
  return {
    cluster,
    perMillion: perMillion(r, r.object(fraction, 'default_value'), `${path}.runtime_fraction.default_value`),
  };
}

/** A `regex_rewrite` (route or redirect action): RE2 `\N` references become JS `$N`. */
function convertRegexRewrite(
  r: ProtoReader,
  a: ProtoObject,
  path: string,
): { readonly regex: RegExp; readonly substitution: string } | undefined {
  const regexRewrite = r.object(a, 'regex_rewrite');
  if (regexRewrite === undefined) return undefined;
  const pattern = r.object(regexRewrite, 'pattern') ?? {};
  try {
    return {
      regex: new RegExp(r.string(pattern, 'regex') ?? '', 'g'),
      substitution: (r.string(regexRewrite, 'substitution') ?? '').replace(/\\(\d)/g, '$$$1'),
    };
  } catch (err) {
    r.problem(`${path}.regex_rewrite.pattern.regex`, `invalid regex (${(err as Error).message})`);
    return undefined;
  }
}

function convertRedirect(r: ProtoReader, d: ProtoObject, path: string): RedirectAction {
  r.only(d, path, [
    'https_redirect',
    'scheme_redirect',
    'host_redirect',
    'port_redirect',
    'path_redirect',
    'prefix_rewrite',
    'regex_rewrite',
    'response_code',
    'strip_query',
  ]);
  const code = r.string(d, 'response_code') ?? 'MOVED_PERMANENTLY';
  const status = REDIRECT_CODES[code];
  if (status === undefined) r.problem(`${path}.response_code`, `unknown redirect code ${code}`);
  return {
    kind: 'redirect',
    scheme: r.bool(d, 'https_redirect') === true ? 'https' : r.string(d, 'scheme_redirect'),
    host: r.string(d, 'host_redirect'),
    port: r.number(d, 'port_redirect'),
    path: r.string(d, 'path_redirect'),
    prefixRewrite: r.string(d, 'prefix_rewrite'),
    regexRewrite: convertRegexRewrite(r, d, path),
    status: status ?? 301,
    stripQuery: r.bool(d, 'strip_query') ?? false,
  };
}

function convertRoute(r: ProtoReader, o: ProtoObject, path: string): Route | undefined {
  r.only(
    o,
    path,
    [
      'name',
      'match',
      'route',
      'redirect',
      'direct_response',
      'typed_per_filter_config',
      ...HEADER_MOD_FIELDS,
    ],
    ['decorator', 'metadata'],
  );
  let fault: FaultConfig | undefined;
  const localRateLimit = new Map<string, LocalRateLimitConfig>();
  const perFilter = (r.object(o, 'typed_per_filter_config') ?? {}) as Record<string, ProtoObject>;
  for (const [filter, config] of Object.entries(perFilter)) {
    const fp = `${path}.typed_per_filter_config[${JSON.stringify(filter)}]`;
    const type = typeof config['@type'] === 'string' ? config['@type'] : '';
    if (filter === FAULT_FILTER && type.endsWith(`/${EnvoyType.fault}`)) fault = convertFault(r, config, fp);
    else if (type.endsWith(`/${EnvoyType.localRateLimit}`))
      localRateLimit.set(filter, convertLocalRateLimit(r, config, fp));
    else r.problem(fp, `per-route config of ${JSON.stringify(filter)} (${type}) is not supported`);
  }
  const match = convertMatch(r, r.object(o, 'match') ?? {}, `${path}.match`);
  let action: RouteAction | undefined;
  const forward = r.object(o, 'route');
  const redirect = r.object(o, 'redirect');
  const direct = r.object(o, 'direct_response');
  if (forward !== undefined) action = convertForward(r, forward, `${path}.route`);
  else if (redirect !== undefined) action = convertRedirect(r, redirect, `${path}.redirect`);
  else if (direct !== undefined) {
    r.only(direct, `${path}.direct_response`, ['status', 'body']);
    const body = r.object(direct, 'body') ?? {};
    r.only(body, `${path}.direct_response.body`, ['inline_string', 'inline_bytes']);
    const bytes = r.string(body, 'inline_bytes');
    const status = r.number(direct, 'status') ?? 0;
    if (status < 200 || status > 599) r.problem(`${path}.direct_response.status`, 'must be 200..599');
    action = {
      kind: 'direct-response',
      status,
      body:
        r.string(body, 'inline_string') ??
        (bytes === undefined ? '' : Buffer.from(bytes, 'base64').toString()),
    };
  } else {
    r.problem(path, 'a route needs route, redirect or direct_response');
  }
  if (match === undefined || action === undefined) return undefined;
  return {
    name: r.string(o, 'name') ?? '',
    match,
    action,
    requestHeaders: convertHeaderMods(r, o, 'request', path),
    responseHeaders: convertHeaderMods(r, o, 'response', path),
    fault,
    ...(localRateLimit.size > 0 ? { localRateLimit } : {}),
  };
}

function convertVirtualHost(r: ProtoReader, o: ProtoObject, path: string): VirtualHost {
  r.only(o, path, ['name', 'domains', 'routes', ...HEADER_MOD_FIELDS], ['include_request_attempt_count']);
  const domains = r.strings(o, 'domains').map(d => d.toLowerCase());
  if (domains.length === 0) r.problem(`${path}.domains`, 'a virtual host needs at least one domain');
  const routes = r
    .list(o, 'routes')
    .map((route, i) => convertRoute(r, route, `${path}.routes[${i}]`))
    .filter(route => route !== undefined);
  return {
    name: r.string(o, 'name') ?? '',
    domains,
    routes,
    requestHeaders: convertHeaderMods(r, o, 'request', path),
    responseHeaders: convertHeaderMods(r, o, 'response', path),
  };
}

/** Converts a decoded `RouteConfiguration`. Problems name the field path. */
export function convertRouteConfiguration(
  name: string,
  version: string,
  o: ProtoObject,
): Converted<RouteTable> {
  const r = new ProtoReader();
  const table = routeTableFrom(r, name, version, o);
  return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, value: table };
}

/** Shared with inline `route_config` in a listener: problems go to `r`. */
export function routeTableFrom(r: ProtoReader, name: string, version: string, o: ProtoObject): RouteTable {
  r.only(
    o,
    '',
    ['name', 'virtual_hosts', ...HEADER_MOD_FIELDS],
    ['validate_clusters', 'ignore_port_in_host_matching', 'max_direct_response_body_size_bytes'],
  );
  const own = r.string(o, 'name');
  if (own !== undefined && own !== name)
    r.problem('name', `is ${JSON.stringify(own)}, not the resource name ${JSON.stringify(name)}`);
  const domains = new Set<string>();
  const virtualHosts = r.list(o, 'virtual_hosts').map((vh, i) => {
    const v = convertVirtualHost(r, vh, `virtual_hosts[${i}]`);
    for (const d of v.domains) {
      if (domains.has(d))
        r.problem(`virtual_hosts[${i}].domains`, `domain ${JSON.stringify(d)} is in two virtual hosts`);
      domains.add(d);
    }
    return v;
  });
  return {
    name,
    version,
    virtualHosts,
    requestHeaders: convertHeaderMods(r, o, 'request', ''),
    responseHeaders: convertHeaderMods(r, o, 'response', ''),
  };
}
