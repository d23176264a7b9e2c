/**
 * AuthorizationPolicies that target a waypoint (or a Service it serves) to Envoy HTTP RBAC
 * filter configs (pure). As upstream: one RBAC filter for the AUDIT policies (`action: LOG`:
 * never denies; a match sets `envoy.common` `access_log_hint` for the access log), then one for
 * the DENY policies, then one for the ALLOW policies; each rule is an RBAC policy named
 * `ns[<ns>]-policy[<name>]-rule[<i>]`.
 * An ALLOW policy without rules matches nothing (so it denies); a rule without `from`/`to`/`when`
 * matches everything. CUSTOM policies are translate-ext-authz.ts's.
 * `requestPrincipals` and `request.auth.*` match the JWT payload the jwt_authn filter puts in the
 * dynamic metadata (`envoy.filters.http.jwt_authn` → `payload`), as upstream's generator does.
 */
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicySource,
} from '@ambient-mesh/policy-engine';

export const RBAC_FILTER = 'envoy.filters.http.rbac';
const JWT_FILTER = 'envoy.filters.http.jwt_authn';
/** The filter state upstream's waypoint keeps the HBONE peer's SPIFFE ID in. */
const PEER_PRINCIPAL_KEY = 'io.istio.peer_principal';
const JWT_PAYLOAD_KEY = 'payload';

export interface RbacFilters {
  /** `envoy.extensions.filters.http.rbac.v3.RBAC` configs in filter order (LOG, DENY, then ALLOW). */
  readonly configs: readonly object[];
  /** `when` keys we could not translate, per policy (the policy's rule then matches nothing). */
  readonly unsupported: readonly string[];
}

function stringMatch(value: string, ignoreCase = false): object {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (value === '*') return { safeRegex: { regex: '.+' } };
  if (value.startsWith('*')) return { suffix: value.slice(1), ...ic };
  if (value.endsWith('*')) return { prefix: value.slice(0, -1), ...ic };
  return { exact: value, ...ic };
}

function orIds<T>(values: readonly T[] | undefined, make: (v: T) => object): object | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return values.length === 1 ? make(values[0]!) : { orIds: { ids: values.map(make) } };
}

function orRules<T>(values: readonly T[] | undefined, make: (v: T) => object): object | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return values.length === 1 ? make(values[0]!) : { orRules: { rules: values.map(make) } };
}

function cidr(value: string): { addressPrefix: string; prefixLen: number } {
  const [ip = '', len] = value.split('/');
  return { addressPrefix: ip, prefixLen: len !== undefined ? Number(len) : ip.includes(':') ? 128 : 32 };
}

/**
 * The HBONE peer's identity as upstream's waypoint matches it: the `io.istio.peer_principal`
 * filter state (its Envoy terminates HBONE on another listener, so the peer is no TLS peer here).
 */
function peerPrincipal(match: object): object {
  return { filterState: { key: PEER_PRINCIPAL_KEY, stringMatch: match } };
}

function principalName(value: string): object {
  if (value === '*') return peerPrincipal({ safeRegex: { regex: '.+' } });
  const withScheme = value.startsWith('spiffe://') || value.startsWith('*') ? value : `spiffe://${value}`;
  return peerPrincipal(stringMatch(withScheme));
}

function namespacePrincipal(ns: string): object {
  const re = ns === '*' ? '.+' : ns.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return peerPrincipal({ safeRegex: { regex: `.*/ns/${re}/.*` } });
}

const MATCH_ANY = { safeRegex: { regex: '.+' } };

/** A metadata matcher on one JWT claim (path `payload`, then the claim names). */
function claimMatcher(claims: readonly string[], value: object): object {
  return {
    metadata: {
      filter: JWT_FILTER,
      path: [JWT_PAYLOAD_KEY, ...claims].map(key => ({ key })),
      value,
    },
  };
}

/** A claim that may be a string or a list of strings (upstream's extended JWT matcher). */
function claimListMatcher(claims: readonly string[], values: readonly string[]): object {
  const value =
    values.length === 1
      ? { stringMatch: stringMatch(values[0]!) }
      : { orMatch: { valueMatchers: values.map(v => ({ stringMatch: stringMatch(v) })) } };
  return claimMatcher(claims, { orMatch: { valueMatchers: [{ listMatch: { oneOf: value } }, value] } });
}

/** `requestPrincipals` (`<iss>/<sub>`, `*` prefix or suffix): `iss` and `sub` claim matchers. */
function requestPrincipal(value: string): object {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  let matchIss: object;
  let matchSub: object;
  if (value === '*') {
    matchIss = MATCH_ANY;
    matchSub = MATCH_ANY;
  } else if (value.startsWith('*')) {
    if (found) {
      matchIss = iss === '*' ? MATCH_ANY : { suffix: iss.slice(1) };
      matchSub = { exact: sub };
    } else {
      matchIss = MATCH_ANY;
      matchSub = { suffix: value.slice(1) };
    }
  } else if (value.endsWith('*')) {
    if (found) {
      matchIss = { exact: iss };
      matchSub = sub === '*' ? MATCH_ANY : { prefix: sub.slice(0, -1) };
    } else {
      matchIss = { prefix: value.slice(0, -1) };
      matchSub = MATCH_ANY;
    }
  } else {
    matchIss = { exact: iss };
    matchSub = { exact: sub };
  }
  return {
    andIds: {
      ids: [
        claimMatcher(['iss'], { stringMatch: matchIss }),
        claimMatcher(['sub'], { stringMatch: matchSub }),
      ],
    },
  };
}

/** `request.auth.claims[a][b]` → `a`, `b`; undefined when malformed. */
function claimPath(key: string): string[] | undefined {
  const m = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/.exec(key);
  if (m === null) return undefined;
  return [...m[1]!.matchAll(/\[([^[\]]+)\]/g)].map(x => x[1]!);
}

function sourcePrincipals(s: PolicySource): object[] {
  const ids: object[] = [];
  const add = (positive: object | undefined, negative: object | undefined): void => {
    if (positive !== undefined) ids.push(positive);
    if (negative !== undefined) ids.push({ notId: negative });
  };
  add(orIds(s.principals, principalName), orIds(s.notPrincipals, principalName));
  add(orIds(s.namespaces, namespacePrincipal), orIds(s.notNamespaces, namespacePrincipal));
  add(
    orIds(s.ipBlocks, v => ({ directRemoteIp: cidr(v) })),
    orIds(s.notIpBlocks, v => ({ directRemoteIp: cidr(v) })),
  );
  add(
    orIds(s.remoteIpBlocks, v => ({ remoteIp: cidr(v) })),
    orIds(s.notRemoteIpBlocks, v => ({ remoteIp: cidr(v) })),
  );
  add(orIds(s.requestPrincipals, requestPrincipal), orIds(s.notRequestPrincipals, requestPrincipal));
  return ids;
}

function header(name: string, value: string, ignoreCase = false): object {
  return { header: { name, stringMatch: stringMatch(value, ignoreCase) } };
}

function pathPermission(p: string): object {
  return { urlPath: { path: stringMatch(p) } };
}

function operationPermissions(o: PolicyOperation): object[] {
  const rules: object[] = [];
  const add = (positive: object | undefined, negative: object | undefined): void => {
    if (positive !== undefined) rules.push(positive);
    if (negative !== undefined) rules.push({ notRule: negative });
  };
  add(
    orRules(o.hosts, h => header(':authority', h, true)),
    orRules(o.notHosts, h => header(':authority', h, true)),
  );
  add(
    orRules(o.methods, m => header(':method', m)),
    orRules(o.notMethods, m => header(':method', m)),
  );
  add(orRules(o.paths, pathPermission), orRules(o.notPaths, pathPermission));
  add(
    orRules(o.ports, p => ({ destinationPort: Number(p) })),
    orRules(o.notPorts, p => ({ destinationPort: Number(p) })),
  );
  return rules;
}

/** A `when` condition as a permission or principal; undefined when the key is not supported. */
function condition(c: PolicyCondition): { permission?: object; principal?: object } | undefined {
  const values = c.values ?? [];
  const notValues = c.notValues ?? [];
  const build = (make: (v: string) => object): object | undefined => {
    const pos = orRules(values, make);
    const neg = orRules(notValues, make);
    if (pos !== undefined && neg !== undefined) return { andRules: { rules: [pos, { notRule: neg }] } };
    return pos ?? (neg !== undefined ? { notRule: neg } : undefined);
  };
  const buildIds = (make: (v: string) => object): object | undefined => {
    const pos = orIds(values, make);
    const neg = orIds(notValues, make);
    if (pos !== undefined && neg !== undefined) return { andIds: { ids: [pos, { notId: neg }] } };
    return pos ?? (neg !== undefined ? { notId: neg } : undefined);
  };
  const claims = claimPath(c.key);
  const authKey =
    c.key === 'request.auth.principal'
      ? 'principal'
      : c.key === 'request.auth.audiences'
        ? ['aud']
        : c.key === 'request.auth.presenter'
          ? ['azp']
          : claims;
  if (authKey !== undefined) {
    const make = (list: readonly string[]): object | undefined => {
      if (list.length === 0) return undefined;
      if (authKey === 'principal') return orIds(list, requestPrincipal);
      return claimListMatcher(authKey, list);
    };
    const pos = make(values);
    const neg = make(notValues);
    const p =
      pos !== undefined && neg !== undefined
        ? { andIds: { ids: [pos, { notId: neg }] } }
        : (pos ?? (neg !== undefined ? { notId: neg } : undefined));
    return p === undefined ? undefined : { principal: p };
  }
  const m = /^request\.headers\[(.+)\]$/.exec(c.key);
  if (m !== null) {
    // A principal, as upstream generates it (the same match as a permission would be).
    const name = m[1]!.toLowerCase();
    const p = buildIds(v => header(name, v));
    return p === undefined ? undefined : { principal: p };
  }
  switch (c.key) {
    case 'destination.port': {
      const p = build(v => ({ destinationPort: Number(v) }));
      return p === undefined ? undefined : { permission: p };
    }
    case 'destination.ip': {
      const p = build(v => ({ destinationIp: cidr(v) }));
      return p === undefined ? undefined : { permission: p };
    }
    case 'source.ip': {
      const p = buildIds(v => ({ directRemoteIp: cidr(v) }));
      return p === undefined ? undefined : { principal: p };
    }
    case 'remote.ip': {
      const p = buildIds(v => ({ remoteIp: cidr(v) }));
      return p === undefined ? undefined : { principal: p };
    }
    case 'source.namespace': {
      const p = buildIds(namespacePrincipal);
      return p === undefined ? undefined : { principal: p };
    }
    case 'source.principal': {
      const p = buildIds(principalName);
      return p === undefined ? undefined : { principal: p };
    }
    default:
      return undefined;
  }
}

function and(list: readonly object[], kind: 'rules' | 'ids'): object {
  if (kind === 'rules')
    return list.length === 0 ? { any: true } : list.length === 1 ? list[0]! : { andRules: { rules: list } };
  return list.length === 0 ? { any: true } : list.length === 1 ? list[0]! : { andIds: { ids: list } };
}

/** The RBAC policies (name → Policy) of one AuthorizationPolicy; `unsupported` collects skipped keys. */
export function rbacPolicies(policy: AuthorizationPolicy, unsupported: string[]): Record<string, object> {
  const { namespace, name } = policy.metadata;
  const out: Record<string, object> = {};
  (policy.spec.rules ?? []).forEach((rule, i) => {
    const permissionsAnd: object[] = [];
    const principalsAnd: object[] = [];
    const froms = rule.from ?? [];
    const tos = rule.to ?? [];
    if (tos.length > 0)
      permissionsAnd.push(orRules(tos, t => and(operationPermissions(t.operation), 'rules'))!);
    if (froms.length > 0) principalsAnd.push(orIds(froms, f => and(sourcePrincipals(f.source), 'ids'))!);
    let skip = false;
    for (const c of rule.when ?? []) {
      const t = condition(c);
      if (t === undefined) {
        unsupported.push(`${namespace}/${name}: when.key ${c.key}`);
        skip = true;
        continue;
      }
      if (t.permission !== undefined) permissionsAnd.push(t.permission);
      if (t.principal !== undefined) principalsAnd.push(t.principal);
    }
    // A rule with a condition we cannot evaluate must never widen access: for ALLOW it matches
    // nothing; for DENY it matches everything it otherwise would (upstream does the same); for
    // AUDIT it matches nothing (no request is marked on a guess).
    if (skip && policy.spec.action !== 'DENY') return;
    out[`ns[${namespace}]-policy[${name}]-rule[${i}]`] = {
      permissions: [and(permissionsAnd, 'rules')],
      principals: [and(principalsAnd, 'ids')],
    };
  });
  return out;
}

/** LOG (AUDIT), DENY, then ALLOW RBAC configs for the policies that apply to one filter chain. */
export function buildRbacFilters(policies: readonly AuthorizationPolicy[]): RbacFilters {
  const unsupported: string[] = [];
  const sorted = [...policies].sort((a, b) => {
    const ka = `${a.metadata.namespace}/${a.metadata.name}`;
    const kb = `${b.metadata.namespace}/${b.metadata.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const configs: object[] = [];
  for (const action of ['AUDIT', 'DENY', 'ALLOW'] as const) {
    const selected = sorted.filter(p => (p.spec.action ?? 'ALLOW') === action);
    if (selected.length === 0) continue;
    const policiesMap: Record<string, object> = {};
    for (const p of selected) Object.assign(policiesMap, rbacPolicies(p, unsupported));
    configs.push({ rules: { action: action === 'AUDIT' ? 'LOG' : action, policies: policiesMap } });
  }
  return { configs, unsupported };
}
