/**
 * ztunnel's L4 authorization (`assert_rbac` and `rbac.rs`) over wire `Authorization`s.
 *
 * - Candidate policies are given by the caller (see `PolicyIndex.policiesForWorkload`).
 * - Any matching DENY rejects (`explicitly-denied`); then, with no ALLOW policy the connection
 *   is allowed (`no-policies`); otherwise some ALLOW must match (`allowed`) or it is rejected
 *   (`not-allowed`).
 * - A policy with no rules never matches. A rule matches when all its clauses do (none: matches).
 *   A clause matches when any non-empty Match does (no Matches: matches; empty Matches are
 *   skipped). Within a Match every populated field must match; `not_*` lists must match none.
 * - `principals` compare with the peer's SPIFFE ID without `spiffe://`; `namespaces` with the
 *   namespace inside that ID. A connection without identity matches no positive principal,
 *   namespace or service account.
 *
 * Each policy is compiled once per object (see `l4-compiled-policy.ts` for the compiled form);
 * a decision parses the connection once, then per policy checks a destination-port pre-filter
 * before walking the policy's flat rule records. A position memo of the previous call's list
 * skips the per-object cache lookup when the same policies come in the same order.
 */
import { canonicalIp, parseIp } from './ip-cidr.ts';
import { compilePolicy, ipv4Int, policyMatches } from './l4-compiled-policy.ts';
import type { CompiledPolicy, L4Decision, PreparedConnection } from './l4-compiled-policy.ts';
import { parseSpiffeIdentity } from './spiffe-identity.ts';
import type { security } from './wire.ts';

export type { L4Decision, L4Reason } from './l4-compiled-policy.ts';

/** The L4 view of a connection, as ztunnel sees it on inbound. */
export interface ConnectionContext {
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  /** The real target port (not 15008). */
  readonly dstPort: number;
  /** The TLS peer's SPIFFE ID (`spiffe://td/ns/x/sa/y`); undefined for plaintext. */
  readonly srcIdentity?: string | undefined;
  readonly dstNetwork?: string | undefined;
}

const INVALID: L4Decision = Object.freeze({ allowed: false, reason: 'invalid-connection' });
const NO_POLICIES: L4Decision = Object.freeze({ allowed: true, reason: 'no-policies' });
const NOT_ALLOWED: L4Decision = Object.freeze({ allowed: false, reason: 'not-allowed' });

function prepare(ctx: ConnectionContext): PreparedConnection | undefined {
  const src = parseIp(ctx.srcIp);
  const dst = parseIp(ctx.dstIp);
  if (src === undefined || dst === undefined) return undefined;
  if (!Number.isInteger(ctx.dstPort) || ctx.dstPort < 0 || ctx.dstPort > 65535) return undefined;
  let principal: string | undefined;
  let namespace = '';
  let serviceAccount: string | undefined;
  if (ctx.srcIdentity !== undefined) {
    const id = parseSpiffeIdentity(ctx.srcIdentity);
    if (id === undefined) return undefined;
    ({ principal, namespace, serviceAccount } = id);
  }
  const s = canonicalIp(src);
  const d = canonicalIp(dst);
  return {
    src: s,
    dst: d,
    srcIsV4: s.length === 4,
    dstIsV4: d.length === 4,
    src4: s.length === 4 ? ipv4Int(s) : 0,
    dst4: d.length === 4 ? ipv4Int(d) : 0,
    dstPort: ctx.dstPort,
    principal,
    namespace,
    serviceAccount,
  };
}

/** True when the policy's rules match the connection (regardless of its action). */
export function authorizationMatches(policy: security.Authorization, ctx: ConnectionContext): boolean {
  const c = prepare(ctx);
  if (c === undefined) return false;
  return policyMatches(compilePolicy(policy), c);
}

/**
 * A position memo in front of the per-object cache: the policies of the previous call and their
 * compiled forms, by index. Callers usually pass the same policies in the same order
 * (`PolicyIndex.policiesForWorkload` lists them in a stable order), so one identity comparison
 * per position replaces a WeakMap lookup, which costs as much as rejecting the policy by its
 * port. It is trimmed to each call's length, so it only holds policies of the latest call.
 */
const memoPolicies: security.Authorization[] = [];
const memoCompiled: CompiledPolicy[] = [];

function compiledAt(i: number, policy: security.Authorization): CompiledPolicy {
  if (memoPolicies[i] === policy) return memoCompiled[i]!;
  const p = compilePolicy(policy);
  memoPolicies[i] = policy; // i never exceeds the length: positions are visited in order
  memoCompiled[i] = p;
  return p;
}

/**
 * Decides an inbound connection against the policies that apply to the destination workload.
 * Pure and synchronous; never throws on bad input (it fails closed). The returned decisions are
 * frozen and may be shared between calls.
 */
export function authorize(ctx: ConnectionContext, policies: readonly security.Authorization[]): L4Decision {
  const c = prepare(ctx);
  if (c === undefined) return INVALID;
  const n = policies.length;
  if (memoPolicies.length > n) {
    memoPolicies.length = n;
    memoCompiled.length = n;
  }
  let hasAllow = false;
  for (let i = 0; i < n; i++) {
    const p = compiledAt(i, policies[i]!);
    if (!p.deny) hasAllow = true;
    else if (policyMatches(p, c)) return p.decision;
  }
  if (!hasAllow) return NO_POLICIES;
  for (let i = 0; i < n; i++) {
    const p = compiledAt(i, policies[i]!);
    if (!p.deny && policyMatches(p, c)) return p.decision;
  }
  return NOT_ALLOWED;
}
