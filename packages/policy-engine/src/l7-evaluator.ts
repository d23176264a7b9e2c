/**
 * The waypoint's HTTP authorization over AuthorizationPolicies (targetRefs policies, evaluated
 * as written): CUSTOM first, then DENY, then ALLOW; AUDIT never changes the decision.
 *
 * Bypass defences: paths are normalised before matching (`path-normalization.ts`); each value of
 * a repeated header is matched on its own, never joined (CVE-2026-26308); identities are parsed
 * strictly, so a SAN with a NUL byte matches nothing; no regex is built from policy values.
 * A condition the engine cannot evaluate (`experimental.*`) matches in DENY and CUSTOM policies
 * and does not match in ALLOW policies: unknown input fails closed.
 */
import { canonicalIp, cidrContains, parseCidr, parseIp } from './ip-cidr.ts';
import { normalizePath, pathMatches, PathNormalization } from './path-normalization.ts';
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
} from './policy-types.ts';
import { policyKey } from './policy-types.ts';
import { parseSpiffeIdentity } from './spiffe-identity.ts';
import type { SpiffeIdentity } from './spiffe-identity.ts';
import { parsePattern, patternMatches, patternMatchesIgnoreCase } from './string-match.ts';

/** An HTTP request as the waypoint sees it. */
export interface HttpRequestContext {
  readonly method: string;
  /** `:authority` / Host, possibly with `:port`. */
  readonly host: string;
  /** `:path` as received (query and fragment allowed). */
  readonly path: string;
  /** Header names in any case; repeated headers as arrays. */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly sourceIp: string;
  /** The peer's SPIFFE ID (`spiffe://...`), undefined for plaintext. Its namespace is `source.namespace`. */
  readonly sourceIdentity?: string | undefined;
  /** Original client IP (from trusted X-Forwarded-For); defaults to `sourceIp`. */
  readonly remoteIp?: string | undefined;
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** `iss/sub` of a validated JWT. */
  readonly requestPrincipal?: string | undefined;
  readonly requestAuth?: {
    readonly audiences?: readonly string[];
    readonly presenter?: string;
    readonly claims?: Readonly<Record<string, unknown>>;
  };
  readonly sni?: string | undefined;
}

export type L7Reason =
  'custom-denied' | 'explicitly-denied' | 'not-allowed' | 'allowed' | 'no-policies' | 'invalid-request';

export interface L7Decision {
  readonly allowed: boolean;
  /** `ns/name` of the deciding policy. */
  readonly policy?: string;
  readonly reason: L7Reason;
  /** `ns/name` of every AUDIT policy that matched. */
  readonly audited: readonly string[];
}

export interface L7Options {
  /** Default `DECODE_AND_MERGE_SLASHES`. */
  readonly pathNormalization?: PathNormalization;
  /**
   * The CUSTOM (ext_authz) check for a matching CUSTOM policy: true allows. Without it a matching
   * CUSTOM policy denies (fail closed).
   */
  readonly customAuthorizer?: (policy: AuthorizationPolicy, request: HttpRequestContext) => boolean;
}

interface Prepared {
  readonly req: HttpRequestContext;
  readonly path: string;
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly identity: SpiffeIdentity | undefined;
  readonly src: Uint8Array;
  readonly remote: Uint8Array;
  readonly dst: Uint8Array;
}

function prepare(req: HttpRequestContext, mode: PathNormalization): Prepared | undefined {
  const norm = normalizePath(req.path, mode);
  const src = parseIp(req.sourceIp);
  const remote = req.remoteIp === undefined ? src : parseIp(req.remoteIp);
  const dst = parseIp(req.destinationIp);
  if (norm === undefined || src === undefined || remote === undefined || dst === undefined) return undefined;
  let identity: SpiffeIdentity | undefined;
  if (req.sourceIdentity !== undefined) {
    identity = parseSpiffeIdentity(req.sourceIdentity);
    if (identity === undefined) return undefined;
  }
  const headers = new Map<string, string[]>();
  for (const [name, value] of Object.entries(req.headers)) {
    const key = name.toLowerCase();
    const list = headers.get(key) ?? [];
    if (typeof value === 'string') list.push(value);
    else list.push(...value);
    headers.set(key, list);
  }
  return {
    req,
    path: norm.path,
    headers,
    identity,
    src: canonicalIp(src),
    remote: canonicalIp(remote),
    dst: canonicalIp(dst),
  };
}

/** Values OR'ed; `not` values must all miss. Absent lists impose nothing. */
function check(
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  hit: (v: string) => boolean,
): boolean {
  if (values !== undefined && values.length > 0 && !values.some(hit)) return false;
  if (notValues !== undefined && notValues.some(hit)) return false;
  return true;
}

const stringHit = (actual: string | undefined) => (v: string) =>
  actual !== undefined && patternMatches(parsePattern(v), actual);

const ipHit = (ip: Uint8Array) => (v: string) => {
  const c = parseCidr(v);
  return c !== undefined && cidrContains(c.address, c.length, ip);
};

function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 48 || s.charCodeAt(i) > 57) return false;
  return true;
}

/** Host values: case-insensitive; an exact value also matches the host with any `:port`. */
function hostHit(host: string) {
  const h = host.toLowerCase();
  return (v: string): boolean => {
    const p = parsePattern(v);
    if (patternMatchesIgnoreCase(p, h)) return true;
    if (p.kind !== 0) return false;
    const colon = h.lastIndexOf(':');
    if (colon < 0 || h.endsWith(']')) return false;
    const port = h.slice(colon + 1);
    return (
      port.length > 0 && port.length <= 5 && isDigits(port) && h.slice(0, colon) === p.value.toLowerCase()
    );
  };
}

function sourceMatches(s: PolicySource, r: Prepared): boolean {
  const principal = r.identity?.principal;
  const ns = r.identity?.namespace;
  const saHit = (v: string): boolean => {
    if (r.identity === undefined) return false;
    const slash = v.indexOf('/');
    // A bare service account is in the policy namespace; the caller resolves it (see below).
    return (
      slash >= 0 &&
      v.slice(0, slash) === r.identity.namespace &&
      v.slice(slash + 1) === r.identity.serviceAccount
    );
  };
  return (
    check(s.principals, s.notPrincipals, stringHit(principal)) &&
    check(s.namespaces, s.notNamespaces, stringHit(ns)) &&
    check(s.serviceAccounts, s.notServiceAccounts, saHit) &&
    check(s.requestPrincipals, s.notRequestPrincipals, stringHit(r.req.requestPrincipal)) &&
    check(s.ipBlocks, s.notIpBlocks, ipHit(r.src)) &&
    check(s.remoteIpBlocks, s.notRemoteIpBlocks, ipHit(r.remote))
  );
}

function operationMatches(o: PolicyOperation, r: Prepared): boolean {
  const port = String(r.req.destinationPort);
  return (
    check(o.hosts, o.notHosts, hostHit(r.req.host)) &&
    check(o.ports, o.notPorts, v => v === port) &&
    check(o.methods, o.notMethods, stringHit(r.req.method)) &&
    check(o.paths, o.notPaths, v => pathMatches(v, r.path))
  );
}

/** `request.auth.claims[a][b]` → claim path `a`, `b`. */
function claimValues(claims: Readonly<Record<string, unknown>> | undefined, key: string): string[] {
  const path = key.slice('request.auth.claims['.length, -1).split('][');
  let cur: unknown = claims;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, p)) return [];
    cur = (cur as Record<string, unknown>)[p];
  }
  if (typeof cur === 'string') return [cur];
  if (Array.isArray(cur)) return cur.filter((v): v is string => typeof v === 'string');
  return [];
}

/** Any of the (separately matched) values hits. */
const anyValue = (actual: readonly string[]) => (v: string) => {
  const p = parsePattern(v);
  return actual.some(a => patternMatches(p, a));
};

function conditionMatches(c: PolicyCondition, r: Prepared, unknownMatches: boolean): boolean {
  const k = c.key;
  const ev = (hit: (v: string) => boolean): boolean => check(c.values, c.notValues, hit);
  switch (k) {
    case 'source.ip':
      return ev(ipHit(r.src));
    case 'remote.ip':
      return ev(ipHit(r.remote));
    case 'destination.ip':
      return ev(ipHit(r.dst));
    case 'destination.port':
      return ev(v => v === String(r.req.destinationPort));
    case 'source.namespace':
      return ev(stringHit(r.identity?.namespace));
    case 'source.principal':
      return ev(stringHit(r.identity?.principal));
    case 'request.auth.principal':
      return ev(stringHit(r.req.requestPrincipal));
    case 'request.auth.audiences':
      return ev(anyValue(r.req.requestAuth?.audiences ?? []));
    case 'request.auth.presenter':
      return ev(stringHit(r.req.requestAuth?.presenter));
    case 'connection.sni':
      return ev(stringHit(r.req.sni));
    default:
      break;
  }
  if (k.startsWith('request.headers[') && k.endsWith(']')) {
    const name = k.slice('request.headers['.length, -1).toLowerCase();
    return ev(anyValue(r.headers.get(name) ?? []));
  }
  if (k.startsWith('request.auth.claims[') && k.endsWith(']')) {
    return ev(anyValue(claimValues(r.req.requestAuth?.claims, k)));
  }
  return unknownMatches;
}

/** Resolves bare service accounts against the policy namespace. */
function qualify(s: PolicySource, namespace: string): PolicySource {
  if (s.serviceAccounts === undefined && s.notServiceAccounts === undefined) return s;
  const q = (list: string[] | undefined): string[] | undefined =>
    list?.map(v => (v.includes('/') ? v : `${namespace}/${v}`));
  const out: PolicySource = { ...s };
  const sa = q(s.serviceAccounts);
  const notSa = q(s.notServiceAccounts);
  if (sa !== undefined) out.serviceAccounts = sa;
  if (notSa !== undefined) out.notServiceAccounts = notSa;
  return out;
}

function ruleMatches(rule: PolicyRule, r: Prepared, namespace: string, unknownMatches: boolean): boolean {
  if (rule.from !== undefined && rule.from.length > 0) {
    if (!rule.from.some(f => sourceMatches(qualify(f.source, namespace), r))) return false;
  }
  if (rule.to !== undefined && rule.to.length > 0) {
    if (!rule.to.some(t => operationMatches(t.operation, r))) return false;
  }
  return (rule.when ?? []).every(c => conditionMatches(c, r, unknownMatches));
}

function policyMatches(p: AuthorizationPolicy, r: Prepared): boolean {
  const action = p.spec.action ?? 'ALLOW';
  const unknownMatches = action !== 'ALLOW';
  return (p.spec.rules ?? []).some(rule => ruleMatches(rule, r, p.metadata.namespace, unknownMatches));
}

/** True when the policy's rules match the request (regardless of its action). */
export function httpPolicyMatches(
  policy: AuthorizationPolicy,
  request: HttpRequestContext,
  options: L7Options = {},
): boolean {
  const r = prepare(request, options.pathNormalization ?? PathNormalization.DECODE_AND_MERGE_SLASHES);
  return r !== undefined && policyMatches(policy, r);
}

/**
 * Decides an HTTP request against the policies bound to the waypoint for its destination.
 * Pure and synchronous; never throws on bad input (it fails closed).
 */
export function authorizeHttp(
  request: HttpRequestContext,
  policies: readonly AuthorizationPolicy[],
  options: L7Options = {},
): L7Decision {
  const r = prepare(request, options.pathNormalization ?? PathNormalization.DECODE_AND_MERGE_SLASHES);
  if (r === undefined) return { allowed: false, reason: 'invalid-request', audited: [] };
  const audited = policies
    .filter(p => p.spec.action === 'AUDIT' && policyMatches(p, r))
    .map(p => policyKey(p.metadata));
  for (const p of policies) {
    if (p.spec.action !== 'CUSTOM' || !policyMatches(p, r)) continue;
    const ok = options.customAuthorizer?.(p, request) ?? false;
    if (!ok) return { allowed: false, policy: policyKey(p.metadata), reason: 'custom-denied', audited };
  }
  for (const p of policies) {
    if (p.spec.action === 'DENY' && policyMatches(p, r)) {
      return { allowed: false, policy: policyKey(p.metadata), reason: 'explicitly-denied', audited };
    }
  }
  const allows = policies.filter(p => (p.spec.action ?? 'ALLOW') === 'ALLOW');
  if (allows.length === 0) return { allowed: true, reason: 'no-policies', audited };
  for (const p of allows) {
    if (policyMatches(p, r))
      return { allowed: true, policy: policyKey(p.metadata), reason: 'allowed', audited };
  }
  return { allowed: false, reason: 'not-allowed', audited };
}
