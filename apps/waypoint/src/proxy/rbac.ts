/**
 * Envoy's HTTP RBAC semantics, pure: a request is allowed when every enforced filter allows it.
 * ALLOW rules allow when some policy matches; DENY rules deny when some policy matches; a policy
 * matches when any of its permissions and any of its principals match. LOG rules (istiod's AUDIT
 * policies) and shadow rules never change the outcome: a LOG match is reported as `logged` (Envoy
 * sets `envoy.common` `access_log_hint: true` in the dynamic metadata), shadow matches as `shadow`.
 */
import { headerMatches, stringMatches } from '../config/matchers.ts';
import type { RequestHeaders } from '../config/matchers.ts';
import { cidrContains, ipBytes } from './route.ts';
import type {
  Cidr,
  MetadataMatch,
  Permission,
  Principal,
  RbacFilter,
  RbacPolicy,
  RbacRules,
  ValueMatch,
} from '../config/types.ts';

/** Dynamic metadata: filter namespace → its struct (e.g. `envoy.filters.http.jwt_authn` → `{payload}`). */
export type DynamicMetadata = ReadonlyMap<string, Readonly<Record<string, unknown>>>;

export interface RbacRequest {
  readonly headers: RequestHeaders;
  /** The path without the query, as Envoy's `url_path` sees it. */
  readonly path: string;
  readonly destinationPort: number;
  /** The HBONE peer's SPIFFE ID (from its mTLS certificate). */
  readonly peerPrincipal: string;
  /** The CONNECT destination IP and the peer's address. */
  readonly destinationIp: string;
  readonly remoteIp: string;
  /** Dynamic metadata set by earlier filters (the JWT payload). */
  readonly metadata?: DynamicMetadata;
}

function valueMatches(m: ValueMatch, v: unknown): boolean {
  switch (m.kind) {
    case 'present':
      return (v !== undefined && v !== null) === m.present;
    case 'bool':
      return v === m.value;
    case 'string':
      return typeof v === 'string' && stringMatches(m.match, v);
    case 'list-one-of':
      return Array.isArray(v) && v.some(x => valueMatches(m.match, x));
    case 'or':
      return m.matches.some(x => valueMatches(x, v));
  }
}

/** Envoy's `MetadataMatcher`: walks the keys; a missing value matches only `present_match: false`. */
export function metadataMatches(m: MetadataMatch, metadata: DynamicMetadata | undefined): boolean {
  let v: unknown = metadata?.get(m.filter);
  for (const key of m.path) {
    v =
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? (v as Record<string, unknown>)[key]
        : undefined;
  }
  const result = valueMatches(m.value, v);
  return m.invert ? !result : result;
}

function inCidr(cidr: Cidr, ip: string): boolean {
  const bytes = ipBytes(ip);
  return bytes !== undefined && cidrContains(cidr, bytes);
}

/** The dynamic metadata namespace and key Envoy's RBAC filter marks a LOG match with. */
export const ACCESS_LOG_HINT_NAMESPACE = 'envoy.common';
export const ACCESS_LOG_HINT_KEY = 'access_log_hint';

export type RbacDecision =
  | {
      readonly kind: 'allow';
      readonly shadow: readonly string[];
      /** `<filter>/<policy>` of every LOG rule that matched (the request is to be audited). */
      readonly logged: readonly string[];
    }
  | {
      readonly kind: 'deny';
      readonly filter: string;
      readonly policy: string | undefined;
      readonly logged: readonly string[];
    };

function permissionMatches(p: Permission, req: RbacRequest): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'and':
      return p.rules.every(x => permissionMatches(x, req));
    case 'or':
      return p.rules.some(x => permissionMatches(x, req));
    case 'not':
      return !permissionMatches(p.rule, req);
    case 'header':
      return headerMatches(p.header, req.headers);
    case 'path':
      return stringMatches(p.match, req.path);
    case 'destination-port':
      return p.port === req.destinationPort;
    case 'destination-ip':
      return inCidr(p.cidr, req.destinationIp);
  }
}

function principalMatches(p: Principal, req: RbacRequest): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'and':
      return p.ids.every(x => principalMatches(x, req));
    case 'or':
      return p.ids.some(x => principalMatches(x, req));
    case 'not':
      return !principalMatches(p.id, req);
    case 'authenticated':
      return req.peerPrincipal !== '' && (p.match === undefined || stringMatches(p.match, req.peerPrincipal));
    case 'header':
      return headerMatches(p.header, req.headers);
    case 'remote-ip':
      return inCidr(p.cidr, req.remoteIp);
    case 'metadata':
      return metadataMatches(p.metadata, req.metadata);
  }
}

export function matchingPolicy(rules: RbacRules, req: RbacRequest): RbacPolicy | undefined {
  return rules.policies.find(
    policy =>
      policy.permissions.some(p => permissionMatches(p, req)) &&
      policy.principals.some(p => principalMatches(p, req)),
  );
}

export function evaluateRbac(filters: readonly RbacFilter[], req: RbacRequest): RbacDecision {
  const shadow: string[] = [];
  const logged: string[] = [];
  for (const filter of filters) {
    if (filter.shadowRules !== undefined) {
      const hit = matchingPolicy(filter.shadowRules, req);
      if (hit !== undefined) shadow.push(`${filter.name}/${hit.name}`);
    }
    const rules = filter.rules;
    if (rules === undefined) continue;
    const hit = matchingPolicy(rules, req);
    if (rules.action === 'ALLOW' && hit === undefined)
      return { kind: 'deny', filter: filter.name, policy: undefined, logged };
    if (rules.action === 'DENY' && hit !== undefined)
      return { kind: 'deny', filter: filter.name, policy: hit.name, logged };
    if (rules.action === 'LOG' && hit !== undefined) logged.push(`${filter.name}/${hit.name}`);
  }
  return { kind: 'allow', shadow, logged };
}
