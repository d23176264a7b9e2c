/**
 * Validation of the Istio `networking.istio.io` subset a waypoint honours:
 * - DestinationRule: `host`, `trafficPolicy` (`loadBalancer`, `connectionPool`,
 *   `outlierDetection`, `tls`, `portLevelSettings`) and `subsets` (with their own traffic policy);
 * - VirtualService: `hosts` and `http[]` routes with `match` (uri, headers, method,
 *   queryParams), weighted `route` destinations (with subsets), `fault`, `retries`, `timeout`.
 * A VirtualService becomes the same `ValidRoute` an HTTPRoute does, so one translator serves both.
 */
import type {
  BackendRefInput,
  ClientTls,
  ClientTlsMode,
  ConnectionPool,
  ConsistentHash,
  DestinationRuleSubset,
  FaultPolicy,
  LoadBalancerPolicy,
  OutlierDetection,
  PathMatch,
  PortTrafficPolicy,
  RawRouteRule,
  RetryPolicy,
  RouteMatch,
  SimpleLb,
  TrafficPolicy,
  Validated,
  ValidDestinationRule,
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
} from './validate-support.ts';

const SIMPLE_LB = new Set<string>([
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'LEAST_CONN',
  'RANDOM',
  'PASSTHROUGH',
  'UNSPECIFIED',
]);

export function validateDestinationRule(obj: unknown): Validated<ValidDestinationRule> {
  const issues = new Issues();
  const meta = readMeta(obj, issues);
  const spec = rec(rec(obj).spec);
  const host = str(spec.host) ?? '';
  if (host === '') issues.add('spec.host', 'is required');
  const trafficPolicy =
    spec.trafficPolicy === undefined
      ? undefined
      : readTrafficPolicy(spec.trafficPolicy, 'spec.trafficPolicy', issues);
  const names = new Set<string>();
  const subsets = arr(spec.subsets).flatMap((s, i): DestinationRuleSubset[] => {
    const r = rec(s);
    const p = `spec.subsets[${i}]`;
    const name = str(r.name) ?? '';
    if (name === '') {
      issues.add(`${p}.name`, 'is required');
      return [];
    }
    if (names.has(name)) issues.add(`${p}.name`, `duplicate subset ${JSON.stringify(name)}`);
    names.add(name);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(rec(r.labels))) {
      if (typeof v === 'string') labels[k] = v;
      else issues.add(`${p}.labels.${k}`, 'must be a string');
    }
    const tp =
      r.trafficPolicy === undefined
        ? undefined
        : readTrafficPolicy(r.trafficPolicy, `${p}.trafficPolicy`, issues);
    return [{ name, labels, ...(tp !== undefined ? { trafficPolicy: tp } : {}) }];
  });
  if (meta === undefined || issues.list.length > 0) return { ok: false, errors: issues.list };
  return {
    ok: true,
    value: {
      namespace: meta.namespace,
      name: meta.name,
      creationTimestamp: meta.creationTimestamp,
      host,
      subsets,
      ...(trafficPolicy !== undefined ? { trafficPolicy } : {}),
    },
  };
}

function nonNegative(v: unknown, path: string, issues: Issues): number | undefined {
  if (v === undefined) return undefined;
  const n = int(v);
  if (n === undefined || n < 0) {
    issues.add(path, 'must be a non-negative integer');
    return undefined;
  }
  return n;
}

function percent(v: unknown, path: string, issues: Issues): number | undefined {
  if (v === undefined) return undefined;
  const n = int(v);
  if (n === undefined || n < 0 || n > 100) {
    issues.add(path, 'must be an integer 0-100');
    return undefined;
  }
  return n;
}

function readTrafficPolicy(v: unknown, path: string, issues: Issues, portLevel = true): TrafficPolicy {
  const tp = rec(v);
  const loadBalancer =
    tp.loadBalancer === undefined
      ? undefined
      : readLoadBalancer(tp.loadBalancer, `${path}.loadBalancer`, issues);
  const connectionPool =
    tp.connectionPool === undefined
      ? undefined
      : readConnectionPool(tp.connectionPool, `${path}.connectionPool`, issues);
  const outlierDetection =
    tp.outlierDetection === undefined
      ? undefined
      : readOutlierDetection(tp.outlierDetection, `${path}.outlierDetection`, issues);
  const tls = tp.tls === undefined ? undefined : readClientTls(tp.tls, `${path}.tls`, issues);
  const portLevelSettings =
    portLevel && Array.isArray(tp.portLevelSettings)
      ? tp.portLevelSettings.flatMap((s, i): PortTrafficPolicy[] => {
          const p = `${path}.portLevelSettings[${i}]`;
          const port = int(rec(rec(s).port).number);
          if (port === undefined || port < 1 || port > 65535) {
            issues.add(`${p}.port.number`, 'must be a port 1-65535');
            return [];
          }
          return [{ port, ...readTrafficPolicy(s, p, issues, false) }];
        })
      : undefined;
  return {
    ...(loadBalancer !== undefined ? { loadBalancer } : {}),
    ...(connectionPool !== undefined ? { connectionPool } : {}),
    ...(outlierDetection !== undefined ? { outlierDetection } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(portLevelSettings !== undefined && portLevelSettings.length > 0 ? { portLevelSettings } : {}),
  };
}

const TLS_MODES = new Set<string>(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']);

/** `ClientTLSSettings` (the mode defaults to `DISABLE`, as upstream's enum zero value). */
function readClientTls(v: unknown, path: string, issues: Issues): ClientTls {
  const t = rec(v);
  const modeText = t.mode === undefined ? 'DISABLE' : (str(t.mode) ?? '');
  let mode: ClientTlsMode = 'DISABLE';
  if (TLS_MODES.has(modeText)) mode = modeText as ClientTlsMode;
  else issues.add(`${path}.mode`, `unsupported TLS mode ${JSON.stringify(t.mode)}`);
  const text = (key: string): string | undefined => {
    const value = t[key];
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') {
      issues.add(`${path}.${key}`, 'must be a string');
      return undefined;
    }
    return value;
  };
  const subjectAltNames = arr(t.subjectAltNames).flatMap((n, i) => {
    if (typeof n === 'string' && n !== '') return [n];
    issues.add(`${path}.subjectAltNames[${i}]`, 'must be a non-empty string');
    return [];
  });
  const skip = t.insecureSkipVerify;
  if (skip !== undefined && typeof skip !== 'boolean')
    issues.add(`${path}.insecureSkipVerify`, 'must be a boolean');
  const out: Record<string, unknown> = { mode, subjectAltNames };
  for (const key of ['credentialName', 'sni', 'caCertificates', 'clientCertificate', 'privateKey']) {
    const value = text(key);
    if (value !== undefined) out[key] = value;
  }
  if (skip === true) out.insecureSkipVerify = true;
  return out as unknown as ClientTls;
}

function readLoadBalancer(v: unknown, path: string, issues: Issues): LoadBalancerPolicy {
  const lb = rec(v);
  let simple: SimpleLb | undefined;
  if (lb.simple !== undefined) {
    const s = str(lb.simple) ?? '';
    if (!SIMPLE_LB.has(s))
      issues.add(`${path}.simple`, `unsupported load balancer ${JSON.stringify(lb.simple)}`);
    else simple = s === 'LEAST_CONN' ? 'LEAST_REQUEST' : (s as SimpleLb);
  }
  let consistentHash: ConsistentHash | undefined;
  if (lb.consistentHash !== undefined) {
    const ch = rec(lb.consistentHash);
    const p = `${path}.consistentHash`;
    const ring = rec(ch.ringHash);
    const minimumRingSize = nonNegative(
      ring.minimumRingSize ?? ch.minimumRingSize,
      `${p}.ringHash.minimumRingSize`,
      issues,
    );
    const size = minimumRingSize !== undefined ? { minimumRingSize } : {};
    if (typeof ch.httpHeaderName === 'string' && ch.httpHeaderName !== '')
      consistentHash = { kind: 'header', header: ch.httpHeaderName, ...size };
    else if (isRec(ch.httpCookie)) {
      const c = ch.httpCookie;
      const name = str(c.name) ?? '';
      if (name === '') issues.add(`${p}.httpCookie.name`, 'is required');
      const ttlMs = readDuration(c.ttl, `${p}.httpCookie.ttl`, issues);
      const cookiePath = str(c.path);
      consistentHash = {
        kind: 'cookie',
        name,
        ...(cookiePath !== undefined ? { path: cookiePath } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...size,
      };
    } else if (ch.useSourceIp === true) consistentHash = { kind: 'sourceIp', ...size };
    else if (typeof ch.httpQueryParameterName === 'string' && ch.httpQueryParameterName !== '')
      consistentHash = { kind: 'queryParameter', name: ch.httpQueryParameterName, ...size };
    else issues.add(p, 'needs one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName');
    if (simple !== undefined) issues.add(path, 'simple and consistentHash are mutually exclusive');
  }
  return {
    ...(simple !== undefined ? { simple } : {}),
    ...(consistentHash !== undefined ? { consistentHash } : {}),
  };
}

function readConnectionPool(v: unknown, path: string, issues: Issues): ConnectionPool {
  const cp = rec(v);
  const tcp = rec(cp.tcp);
  const http = rec(cp.http);
  const out: Record<string, number> = {};
  const set = (key: keyof ConnectionPool, value: number | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set('maxConnections', nonNegative(tcp.maxConnections, `${path}.tcp.maxConnections`, issues));
  set('connectTimeoutMs', readDuration(tcp.connectTimeout, `${path}.tcp.connectTimeout`, issues));
  set(
    'http1MaxPendingRequests',
    nonNegative(http.http1MaxPendingRequests, `${path}.http.http1MaxPendingRequests`, issues),
  );
  set('http2MaxRequests', nonNegative(http.http2MaxRequests, `${path}.http.http2MaxRequests`, issues));
  set(
    'maxRequestsPerConnection',
    nonNegative(http.maxRequestsPerConnection, `${path}.http.maxRequestsPerConnection`, issues),
  );
  set('maxRetries', nonNegative(http.maxRetries, `${path}.http.maxRetries`, issues));
  set(
    'maxConcurrentStreams',
    nonNegative(http.maxConcurrentStreams, `${path}.http.maxConcurrentStreams`, issues),
  );
  set('idleTimeoutMs', readDuration(http.idleTimeout, `${path}.http.idleTimeout`, issues));
  return out;
}

function readOutlierDetection(v: unknown, path: string, issues: Issues): OutlierDetection {
  const od = rec(v);
  const out: Record<string, number> = {};
  const set = (key: keyof OutlierDetection, value: number | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set(
    'consecutive5xxErrors',
    nonNegative(od.consecutive5xxErrors ?? od.consecutiveErrors, `${path}.consecutive5xxErrors`, issues),
  );
  set(
    'consecutiveGatewayErrors',
    nonNegative(od.consecutiveGatewayErrors, `${path}.consecutiveGatewayErrors`, issues),
  );
  set('intervalMs', readDuration(od.interval, `${path}.interval`, issues));
  set('baseEjectionTimeMs', readDuration(od.baseEjectionTime, `${path}.baseEjectionTime`, issues));
  set('maxEjectionPercent', percent(od.maxEjectionPercent, `${path}.maxEjectionPercent`, issues));
  set('minHealthPercent', percent(od.minHealthPercent, `${path}.minHealthPercent`, issues));
  return out;
}

// VirtualService.

/** A VirtualService host → Service (`name`, `name.ns`, `name.ns.svc[.domain]`), or undefined. */
export function hostToService(
  host: string,
  defaultNs: string,
  domain: string,
): { namespace: string; name: string } | undefined {
  if (host === '' || host.includes('*')) return undefined;
  const parts = host.split('.');
  if (parts.length === 1) return { namespace: defaultNs, name: parts[0]! };
  if (parts.length === 2) return { namespace: parts[1]!, name: parts[0]! };
  const suffix = parts.slice(2).join('.');
  if (suffix === 'svc' || suffix === `svc.${domain}`) return { namespace: parts[1]!, name: parts[0]! };
  return undefined;
}

export function validateVirtualService(obj: unknown, domain: string): Validated<ValidRoute> {
  const issues = new Issues();
  const meta = readMeta(obj, issues);
  const spec = rec(rec(obj).spec);
  const ns = meta?.namespace ?? '';
  const hosts = arr(spec.hosts).flatMap(h => (typeof h === 'string' ? [h] : []));
  if (hosts.length === 0) issues.add('spec.hosts', 'needs at least one host');
  const parentRefs = hosts.flatMap(h => {
    const svc = hostToService(h, ns, domain);
    return svc === undefined
      ? []
      : [{ group: '', kind: 'Service', namespace: svc.namespace, name: svc.name }];
  });
  const rules = arr(spec.http).map((r, i) => readVsRoute(r, i, ns, domain, `spec.http[${i}]`, issues));
  if (meta === undefined || issues.list.length > 0) return { ok: false, errors: issues.list };
  return {
    ok: true,
    value: {
      kind: 'VirtualService',
      namespace: meta.namespace,
      name: meta.name,
      generation: meta.generation,
      creationTimestamp: meta.creationTimestamp,
      parentRefs,
      hostnames: [],
      rules,
    },
  };
}

function readStringMatch(
  v: unknown,
  path: string,
  issues: Issues,
  isPath: boolean,
): { type: PathMatch['type'] | 'Prefix'; value: string } | undefined {
  const m = rec(v);
  if (typeof m.exact === 'string') return { type: 'Exact', value: m.exact };
  if (typeof m.prefix === 'string') return { type: isPath ? 'PathPrefix' : 'Prefix', value: m.prefix };
  if (typeof m.regex === 'string') {
    const problem = regexProblem(m.regex);
    if (problem !== undefined) issues.add(`${path}.regex`, problem);
    return { type: 'RegularExpression', value: m.regex };
  }
  issues.add(path, 'needs one of exact, prefix or regex');
  return undefined;
}

function readVsMatches(v: unknown, path: string, issues: Issues): RouteMatch[] {
  const list = arr(v);
  if (list.length === 0) return [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }];
  return list.map((m, i) => {
    const r = rec(m);
    const p = `${path}[${i}]`;
    const uri = r.uri === undefined ? undefined : readStringMatch(r.uri, `${p}.uri`, issues, true);
    const values = (x: unknown, sub: string, lower: boolean): ValueMatch[] =>
      Object.entries(rec(x)).flatMap(([name, sm]) => {
        const s = readStringMatch(sm, `${p}.${sub}.${name}`, issues, false);
        if (s === undefined) return [];
        const type = s.type === 'PathPrefix' ? 'Prefix' : s.type;
        return [{ type: type, name: lower ? name.toLowerCase() : name, value: s.value }];
      });
    const method =
      r.method === undefined ? undefined : readStringMatch(r.method, `${p}.method`, issues, false);
    return {
      ...(uri !== undefined
        ? { path: { type: uri.type === 'Prefix' ? 'PathPrefix' : uri.type, value: uri.value } }
        : {}),
      headers: values(r.headers, 'headers', true),
      queryParams: values(r.queryParams, 'queryParams', false),
      ...(method?.type === 'Exact' ? { method: method.value } : {}),
    };
  });
}

function readVsRoute(
  v: unknown,
  index: number,
  ns: string,
  domain: string,
  path: string,
  issues: Issues,
): RawRouteRule {
  const r = rec(v);
  const matches = readVsMatches(r.match, `${path}.match`, issues);
  const backendRefs = arr(r.route).flatMap((d, i): BackendRefInput[] => {
    const dst = rec(rec(d).destination);
    const p = `${path}.route[${i}].destination`;
    const host = str(dst.host) ?? '';
    const svc = hostToService(host, ns, domain);
    if (svc === undefined) {
      issues.add(`${p}.host`, `host ${JSON.stringify(host)} is not a Kubernetes Service name`);
      return [];
    }
    const port = int(rec(dst.port).number);
    const subset = str(dst.subset);
    const weight = rec(d).weight === undefined ? 1 : (int(rec(d).weight) ?? 1);
    return [
      {
        group: '',
        kind: 'Service',
        namespace: svc.namespace,
        name: svc.name,
        weight,
        ...(port !== undefined ? { port } : {}),
        ...(subset !== undefined ? { subset } : {}),
      },
    ];
  });
  const requestTimeoutMs = readDuration(r.timeout, `${path}.timeout`, issues);
  let retry: RetryPolicy | undefined;
  if (isRec(r.retries)) {
    const rr = r.retries;
    const attempts = nonNegative(rr.attempts, `${path}.retries.attempts`, issues) ?? 2;
    const perTryTimeoutMs = readDuration(rr.perTryTimeout, `${path}.retries.perTryTimeout`, issues);
    const conditions = (str(rr.retryOn) ?? 'connect-failure,refused-stream,unavailable,cancelled,5xx')
      .split(',')
      .map(s => s.trim())
      .filter(s => s !== '');
    const codes = conditions.flatMap(c => (/^\d{3}$/.test(c) ? [Number(c)] : []));
    retry = {
      attempts,
      codes,
      retryOn: conditions.filter(c => !/^\d{3}$/.test(c)),
      ...(perTryTimeoutMs !== undefined ? { perTryTimeoutMs } : {}),
    };
  }
  const fault = isRec(r.fault) ? readFault(r.fault, `${path}.fault`, issues) : undefined;
  return {
    index,
    matches,
    filters: [],
    backendRefs,
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
    ...(retry !== undefined ? { retry } : {}),
    ...(fault !== undefined ? { fault } : {}),
  };
}

function faultPercent(v: unknown, path: string, issues: Issues): number {
  if (v === undefined) return 100;
  const n = rec(v).value;
  if (typeof n !== 'number' || n < 0 || n > 100) {
    issues.add(`${path}.percentage.value`, 'must be a number 0-100');
    return 0;
  }
  return n;
}

function readFault(v: Readonly<Record<string, unknown>>, path: string, issues: Issues): FaultPolicy {
  let delay: FaultPolicy['delay'];
  let abort: FaultPolicy['abort'];
  if (isRec(v.delay)) {
    const fixedDelayMs = readDuration(v.delay.fixedDelay, `${path}.delay.fixedDelay`, issues);
    if (fixedDelayMs === undefined) issues.add(`${path}.delay.fixedDelay`, 'is required');
    else delay = { fixedDelayMs, percent: faultPercent(v.delay.percentage, `${path}.delay`, issues) };
  }
  if (isRec(v.abort)) {
    const httpStatus = int(v.abort.httpStatus);
    if (httpStatus === undefined || httpStatus < 200 || httpStatus > 599)
      issues.add(`${path}.abort.httpStatus`, 'must be an HTTP status 200-599');
    else abort = { httpStatus, percent: faultPercent(v.abort.percentage, `${path}.abort`, issues) };
  }
  return { ...(delay !== undefined ? { delay } : {}), ...(abort !== undefined ? { abort } : {}) };
}
