/**
 * Structural validation of Gateway API v1 `HTTPRoute` and `GRPCRoute` (v1.4.1, experimental
 * channel: `retry` included) and v1alpha2 `TCPRoute` into `ValidRoute`. Never throws: every problem is a `FieldIssue`
 * with its path. A route with any issue is not programmed; its status says why (`route-status.ts`).
 * GRPCRoute method matches become path matches (`/<service>/<method>`), as upstream does.
 */
import type {
  BackendHeaderFilters,
  BackendRefInput,
  HeaderModifier,
  ParentRefInput,
  PathMatch,
  PathModifier,
  RawRouteFilter,
  RawRouteRule,
  RetryPolicy,
  RouteMatch,
  Validated,
  ValidRoute,
  ValueMatch,
} from './types.ts';
import {
  Issues,
  arr,
  int,
  isRec,
  readDuration,
  readMeta,
  rec,
  regexProblem,
  str,
  type Rec,
} from './validate-support.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** The group of a ServiceEntry parentRef (GAMMA routes for waypoint-bound ServiceEntries). */
export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

export function validateHttpRoute(obj: unknown): Validated<ValidRoute> {
  return validateRoute(obj, 'HTTPRoute');
}

export function validateGrpcRoute(obj: unknown): Validated<ValidRoute> {
  return validateRoute(obj, 'GRPCRoute');
}

/**
 * Gateway API v1alpha2 `TLSRoute` (experimental channel): `hostnames` (the SNI names), parentRefs
 * and rules of `backendRefs` only (a rule matches every connection the route's hostnames take).
 * At least one rule is required; the rule's `backendRefs` are weighted as for an HTTPRoute.
 */
export function validateTlsRoute(obj: unknown): Validated<ValidRoute> {
  return validateBackendOnlyRoute(obj, 'TLSRoute', (spec, issues) =>
    arr(spec.hostnames).flatMap((h, i) => {
      const s = str(h);
      if (
        s === undefined ||
        s === '' ||
        (s.includes('*') && !(s.startsWith('*.') && !s.slice(1).includes('*')))
      ) {
        issues.add(`spec.hostnames[${i}]`, 'must be a DNS name or a *.suffix wildcard');
        return [];
      }
      return [s.toLowerCase()];
    }),
  );
}

function validateRoute(obj: unknown, kind: 'HTTPRoute' | 'GRPCRoute'): Validated<ValidRoute> {
  const issues = new Issues();
  const meta = readMeta(obj, issues);
  const spec = rec(rec(obj).spec);
  const ns = meta?.namespace ?? '';
  const parentRefs = arr(spec.parentRefs).map((p, i) =>
    readParentRef(p, ns, `spec.parentRefs[${i}]`, issues),
  );
  const hostnames = arr(spec.hostnames).flatMap((h, i) => {
    const s = str(h);
    if (s === undefined || s === '') {
      issues.add(`spec.hostnames[${i}]`, 'must be a non-empty string');
      return [];
    }
    return [s];
  });
  const rawRules = Array.isArray(spec.rules) && spec.rules.length > 0 ? spec.rules : [{}];
  const rules = rawRules.map((r, i) => readRule(r, i, kind, ns, `spec.rules[${i}]`, issues));
  if (meta === undefined || issues.list.length > 0) return { ok: false, errors: issues.list };
  return {
    ok: true,
    value: {
      kind,
      namespace: meta.namespace,
      name: meta.name,
      generation: meta.generation,
      creationTimestamp: meta.creationTimestamp,
      parentRefs: parentRefs.filter((p): p is ParentRefInput => p !== undefined),
      hostnames,
      rules,
    },
  };
}

/**
 * Gateway API v1alpha2 `TCPRoute` (experimental channel): parentRefs and rules of weighted
 * backendRefs only (TCPRoute has no matches or filters). A rule's weights are kept as written;
 * `translate-listener.ts` turns the first rule into the chain's `tcp_proxy` clusters.
 */
export function validateTcpRoute(obj: unknown): Validated<ValidRoute> {
  return validateBackendOnlyRoute(obj, 'TCPRoute', () => []);
}

/**
 * A route whose rules are weighted backendRefs only (TCPRoute, TLSRoute): parentRefs, at least
 * one rule, and the hostnames `readHostnames` takes from the spec.
 */
function validateBackendOnlyRoute(
  obj: unknown,
  kind: 'TCPRoute' | 'TLSRoute',
  readHostnames: (spec: Rec, issues: Issues) => string[],
): Validated<ValidRoute> {
  const issues = new Issues();
  const meta = readMeta(obj, issues);
  const spec = rec(rec(obj).spec);
  const ns = meta?.namespace ?? '';
  const parentRefs = arr(spec.parentRefs).map((p, i) =>
    readParentRef(p, ns, `spec.parentRefs[${i}]`, issues),
  );
  const hostnames = readHostnames(spec, issues);
  const rawRules = arr(spec.rules);
  if (rawRules.length === 0) issues.add('spec.rules', 'needs at least one rule');
  const rules: RawRouteRule[] = rawRules.map((r, i) => ({
    index: i,
    matches: [],
    filters: [],
    backendRefs: arr(rec(r).backendRefs).flatMap(
      (b, j) => readBackendRef(b, ns, `spec.rules[${i}].backendRefs[${j}]`, issues) ?? [],
    ),
  }));
  if (meta === undefined || issues.list.length > 0) return { ok: false, errors: issues.list };
  return {
    ok: true,
    value: {
      kind,
      namespace: meta.namespace,
      name: meta.name,
      generation: meta.generation,
      creationTimestamp: meta.creationTimestamp,
      parentRefs: parentRefs.filter((p): p is ParentRefInput => p !== undefined),
      hostnames,
      rules,
    },
  };
}

function readParentRef(v: unknown, ns: string, path: string, issues: Issues): ParentRefInput | undefined {
  const p = rec(v);
  const name = str(p.name) ?? '';
  if (name === '') {
    issues.add(`${path}.name`, 'is required');
    return undefined;
  }
  const port = p.port === undefined ? undefined : int(p.port);
  if (p.port !== undefined && (port === undefined || port < 1 || port > 65535))
    issues.add(`${path}.port`, 'must be a port number 1-65535');
  const sectionName = str(p.sectionName);
  return {
    group: str(p.group) ?? GATEWAY_GROUP,
    kind: str(p.kind) ?? 'Gateway',
    namespace: str(p.namespace) ?? ns,
    name,
    ...(port !== undefined ? { port } : {}),
    ...(sectionName !== undefined ? { sectionName } : {}),
  };
}

function readRule(
  v: unknown,
  index: number,
  kind: 'HTTPRoute' | 'GRPCRoute',
  ns: string,
  path: string,
  issues: Issues,
): RawRouteRule {
  const r = rec(v);
  const rawMatches = Array.isArray(r.matches) && r.matches.length > 0 ? r.matches : [{}];
  const matches = rawMatches.map((m, i) =>
    kind === 'HTTPRoute'
      ? readHttpMatch(m, `${path}.matches[${i}]`, issues)
      : readGrpcMatch(m, `${path}.matches[${i}]`, issues),
  );
  const filters = arr(r.filters).flatMap((f, i) => readFilter(f, ns, `${path}.filters[${i}]`, issues) ?? []);
  const backendRefs = arr(r.backendRefs).flatMap(
    (b, i) => readBackendRef(b, ns, `${path}.backendRefs[${i}]`, issues) ?? [],
  );
  const timeouts = rec(r.timeouts);
  const requestTimeoutMs = readDuration(timeouts.request, `${path}.timeouts.request`, issues);
  const backendTimeoutMs = readDuration(timeouts.backendRequest, `${path}.timeouts.backendRequest`, issues);
  if (
    requestTimeoutMs !== undefined &&
    backendTimeoutMs !== undefined &&
    requestTimeoutMs !== 0 &&
    backendTimeoutMs > requestTimeoutMs
  )
    issues.add(`${path}.timeouts.backendRequest`, 'must not be longer than timeouts.request');
  const retry = r.retry === undefined ? undefined : readRetry(r.retry, `${path}.retry`, issues);
  return {
    index,
    matches,
    filters,
    backendRefs,
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
    ...(backendTimeoutMs !== undefined ? { backendTimeoutMs } : {}),
    ...(retry !== undefined ? { retry } : {}),
  };
}

function readValueMatches(v: unknown, path: string, issues: Issues, lowerName: boolean): ValueMatch[] {
  return arr(v).flatMap((h, i) => {
    const m = rec(h);
    const p = `${path}[${i}]`;
    const name = str(m.name) ?? '';
    const value = str(m.value);
    const type = str(m.type) ?? 'Exact';
    if (name === '') issues.add(`${p}.name`, 'is required');
    if (value === undefined) issues.add(`${p}.value`, 'is required');
    if (type !== 'Exact' && type !== 'RegularExpression') {
      issues.add(`${p}.type`, `unsupported match type ${JSON.stringify(type)} (Exact or RegularExpression)`);
      return [];
    }
    if (type === 'RegularExpression' && value !== undefined) {
      const problem = regexProblem(value);
      if (problem !== undefined) issues.add(`${p}.value`, problem);
    }
    if (name === '' || value === undefined) return [];
    return [{ type, name: lowerName ? name.toLowerCase() : name, value }];
  });
}

function readHttpMatch(v: unknown, path: string, issues: Issues): RouteMatch {
  const m = rec(v);
  let pathMatch: PathMatch | undefined = { type: 'PathPrefix', value: '/' };
  if (m.path !== undefined) {
    const p = rec(m.path);
    const type = str(p.type) ?? 'PathPrefix';
    const value = str(p.value) ?? '/';
    if (type !== 'Exact' && type !== 'PathPrefix' && type !== 'RegularExpression') {
      issues.add(`${path}.path.type`, `unsupported path match type ${JSON.stringify(type)}`);
      pathMatch = undefined;
    } else {
      if (type === 'RegularExpression') {
        const problem = regexProblem(value);
        if (problem !== undefined) issues.add(`${path}.path.value`, problem);
      } else if (!value.startsWith('/')) {
        issues.add(`${path}.path.value`, 'must start with "/"');
      }
      pathMatch = { type, value };
    }
  }
  const method = str(m.method);
  if (m.method !== undefined && (method === undefined || !METHODS.has(method)))
    issues.add(`${path}.method`, `unsupported method ${JSON.stringify(m.method)}`);
  return {
    ...(pathMatch !== undefined ? { path: pathMatch } : {}),
    headers: readValueMatches(m.headers, `${path}.headers`, issues, true),
    queryParams: readValueMatches(m.queryParams, `${path}.queryParams`, issues, false),
    ...(method !== undefined ? { method } : {}),
  };
}

const GRPC_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

function readGrpcMatch(v: unknown, path: string, issues: Issues): RouteMatch {
  const m = rec(v);
  const headers = readValueMatches(m.headers, `${path}.headers`, issues, true);
  if (m.method === undefined) return { headers, queryParams: [] };
  const mm = rec(m.method);
  const type = str(mm.type) ?? 'Exact';
  const service = str(mm.service) ?? '';
  const method = str(mm.method) ?? '';
  if (service === '' && method === '') issues.add(`${path}.method`, 'one of service or method is required');
  let pathMatch: PathMatch;
  if (type === 'Exact') {
    if (service !== '' && !GRPC_NAME.test(service))
      issues.add(`${path}.method.service`, 'is not a valid gRPC service name');
    if (method !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(method))
      issues.add(`${path}.method.method`, 'is not a valid gRPC method name');
    if (service !== '' && method !== '') pathMatch = { type: 'Exact', value: `/${service}/${method}` };
    else if (service !== '') pathMatch = { type: 'PathPrefix', value: `/${service}/` };
    else pathMatch = { type: 'RegularExpression', value: `/[^/]+/${escapeRegex(method)}` };
  } else if (type === 'RegularExpression') {
    for (const [field, value] of [
      ['service', service],
      ['method', method],
    ] as const) {
      const problem = value === '' ? undefined : regexProblem(value);
      if (problem !== undefined) issues.add(`${path}.method.${field}`, problem);
    }
    pathMatch = { type: 'RegularExpression', value: `/${service || '[^/]+'}/${method || '[^/]+'}` };
  } else {
    issues.add(`${path}.method.type`, `unsupported method match type ${JSON.stringify(type)}`);
    return { headers, queryParams: [] };
  }
  return { path: pathMatch, headers, queryParams: [] };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readBackendRef(v: unknown, ns: string, path: string, issues: Issues): BackendRefInput | undefined {
  const b = rec(v);
  const name = str(b.name) ?? '';
  if (name === '') {
    issues.add(`${path}.name`, 'is required');
    return undefined;
  }
  const weight = b.weight === undefined ? 1 : int(b.weight);
  if (weight === undefined || weight < 0 || weight > 1_000_000) {
    issues.add(`${path}.weight`, 'must be an integer 0-1000000');
    return undefined;
  }
  const port = b.port === undefined ? undefined : int(b.port);
  if (b.port !== undefined && (port === undefined || port < 1 || port > 65535))
    issues.add(`${path}.port`, 'must be a port number 1-65535');
  const headers = readBackendFilters(b.filters, `${path}.filters`, issues);
  return {
    group: str(b.group) ?? '',
    kind: str(b.kind) ?? 'Service',
    namespace: str(b.namespace) ?? ns,
    name,
    weight,
    ...(port !== undefined ? { port } : {}),
    ...headers,
  };
}

/** A backendRef's `filters`: the header modifiers Istio applies per backend. */
function readBackendFilters(v: unknown, path: string, issues: Issues): BackendHeaderFilters {
  let out: BackendHeaderFilters = {};
  arr(v).forEach((f, i) => {
    const fr = rec(f);
    const type = str(fr.type);
    if (type === 'RequestHeaderModifier')
      out = {
        ...out,
        requestHeaders: readHeaderModifier(
          fr.requestHeaderModifier,
          `${path}[${i}].requestHeaderModifier`,
          issues,
        ),
      };
    else if (type === 'ResponseHeaderModifier')
      out = {
        ...out,
        responseHeaders: readHeaderModifier(
          fr.responseHeaderModifier,
          `${path}[${i}].responseHeaderModifier`,
          issues,
        ),
      };
    else
      issues.add(
        `${path}[${i}].type`,
        `unsupported backendRef filter ${JSON.stringify(type)} (RequestHeaderModifier and ResponseHeaderModifier are)`,
      );
  });
  return out;
}

function readHeaderModifier(v: unknown, path: string, issues: Issues): HeaderModifier {
  const m = rec(v);
  const pairs = (list: unknown, p: string): { name: string; value: string }[] =>
    arr(list).flatMap((h, i) => {
      const hr = rec(h);
      const name = str(hr.name) ?? '';
      const value = str(hr.value);
      if (name === '' || value === undefined) {
        issues.add(`${p}[${i}]`, 'needs a name and a value');
        return [];
      }
      return [{ name, value }];
    });
  return {
    set: pairs(m.set, `${path}.set`),
    add: pairs(m.add, `${path}.add`),
    remove: arr(m.remove).flatMap(r => (typeof r === 'string' && r !== '' ? [r] : [])),
  };
}

function readPathModifier(v: unknown, path: string, issues: Issues): PathModifier | undefined {
  if (v === undefined) return undefined;
  const p = rec(v);
  const type = str(p.type);
  if (type === 'ReplaceFullPath') return { type, value: str(p.replaceFullPath) ?? '/' };
  if (type === 'ReplacePrefixMatch') return { type, value: str(p.replacePrefixMatch) ?? '/' };
  issues.add(`${path}.type`, `unsupported path modifier ${JSON.stringify(type)}`);
  return undefined;
}

function readFilter(v: unknown, ns: string, path: string, issues: Issues): RawRouteFilter | undefined {
  const f = rec(v);
  const type = str(f.type);
  switch (type) {
    case 'RequestHeaderModifier':
      return {
        type,
        modifier: readHeaderModifier(f.requestHeaderModifier, `${path}.requestHeaderModifier`, issues),
      };
    case 'ResponseHeaderModifier':
      return {
        type,
        modifier: readHeaderModifier(f.responseHeaderModifier, `${path}.responseHeaderModifier`, issues),
      };
    case 'RequestRedirect': {
      const r = rec(f.requestRedirect);
      const statusCode = r.statusCode === undefined ? 302 : int(r.statusCode);
      if (statusCode === undefined || !REDIRECT_CODES.has(statusCode)) {
        issues.add(`${path}.requestRedirect.statusCode`, 'must be 301, 302, 303, 307 or 308');
        return undefined;
      }
      const scheme = str(r.scheme);
      const hostname = str(r.hostname);
      const port = int(r.port);
      const p = readPathModifier(r.path, `${path}.requestRedirect.path`, issues);
      return {
        type,
        statusCode,
        ...(scheme !== undefined ? { scheme } : {}),
        ...(hostname !== undefined ? { hostname } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(p !== undefined ? { path: p } : {}),
      };
    }
    case 'URLRewrite': {
      const r = rec(f.urlRewrite);
      const hostname = str(r.hostname);
      const p = readPathModifier(r.path, `${path}.urlRewrite.path`, issues);
      return {
        type,
        ...(hostname !== undefined ? { hostname } : {}),
        ...(p !== undefined ? { path: p } : {}),
      };
    }
    case 'RequestMirror': {
      const r = rec(f.requestMirror);
      const backendRef = readBackendRef(r.backendRef, ns, `${path}.requestMirror.backendRef`, issues);
      let percent = 100;
      if (r.percent !== undefined) percent = int(r.percent) ?? -1;
      else if (isRec(r.fraction)) {
        const num = int(r.fraction.numerator) ?? -1;
        const den = r.fraction.denominator === undefined ? 100 : (int(r.fraction.denominator) ?? 0);
        percent = den > 0 ? (num * 100) / den : -1;
      }
      if (percent < 0 || percent > 100) {
        issues.add(`${path}.requestMirror`, 'percent/fraction must be between 0 and 100%');
        return undefined;
      }
      return backendRef === undefined ? undefined : { type, backendRef, percent };
    }
    default:
      issues.add(`${path}.type`, `unsupported filter ${JSON.stringify(type)}`);
      return undefined;
  }
}

function readRetry(v: unknown, path: string, issues: Issues): RetryPolicy | undefined {
  if (!isRec(v)) {
    issues.add(path, 'must be an object');
    return undefined;
  }
  const r: Rec = v;
  const codes = arr(r.codes).flatMap((c, i) => {
    const n = int(c);
    if (n === undefined || n < 400 || n > 599) {
      issues.add(`${path}.codes[${i}]`, 'must be an HTTP status code 400-599');
      return [];
    }
    return [n];
  });
  const attempts = r.attempts === undefined ? 2 : int(r.attempts);
  if (attempts === undefined || attempts < 0) {
    issues.add(`${path}.attempts`, 'must be a non-negative integer');
    return undefined;
  }
  const backoffMs = readDuration(r.backoff, `${path}.backoff`, issues);
  return {
    attempts,
    codes,
    retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled'],
    ...(backoffMs !== undefined ? { backoffMs } : {}),
  };
}
