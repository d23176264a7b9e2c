import { describe, expect, it } from 'vitest';
import { authorizationMatches, authorize } from './l4-evaluator.ts';
import type { ConnectionContext } from './l4-evaluator.ts';
import { parseCidr } from './ip-cidr.ts';
import type { security } from './wire.ts';
import { emptyMatch } from './wire.ts';

const exact = (v: string): security.StringMatch => ({ exact: v, matchType: 'exact' });
const prefix = (v: string): security.StringMatch => ({ prefix: v, matchType: 'prefix' });
const suffix = (v: string): security.StringMatch => ({ suffix: v, matchType: 'suffix' });
const presence: security.StringMatch = { presence: {}, matchType: 'presence' };
const cidr = (s: string): security.Address => parseCidr(s)!;
const m = (f: Partial<security.Match>): security.Match => ({ ...emptyMatch(), ...f });

function pol(action: 0 | 1, rules: security.Match[][][], name = 'p'): security.Authorization {
  return {
    name,
    namespace: 'ns',
    scope: 1,
    action,
    rules: rules.map(r => ({ clauses: r.map(matches => ({ matches })) })),
  };
}
const allow = (rules: security.Match[][][], name?: string) => pol(0, rules, name);

const ID = 'spiffe://cluster.local/ns/frontend/sa/web';
const conn = (over: Partial<ConnectionContext> = {}): ConnectionContext => ({
  srcIp: '10.0.0.1',
  srcPort: 40000,
  dstIp: '10.0.0.2',
  dstPort: 8080,
  srcIdentity: ID,
  ...over,
});

interface MatchCase {
  name: string;
  rules: security.Match[][][];
  ctx?: Partial<ConnectionContext>;
  matches: boolean;
}

const matchCases: MatchCase[] = [
  { name: 'policy with no rules never matches', rules: [], matches: false },
  { name: 'rule with no clauses matches', rules: [[]], matches: true },
  { name: 'clause with zero Matches matches', rules: [[[]]], matches: true },
  { name: 'clause of only empty Matches never matches', rules: [[[emptyMatch()]]], matches: false },
  {
    name: 'empty Matches are skipped, a non-empty one in the clause decides',
    rules: [[[emptyMatch(), m({ destinationPorts: [8080] })]]],
    matches: true,
  },
  {
    name: 'all clauses of a rule must match (AND)',
    rules: [[[m({ destinationPorts: [8080] })], [m({ destinationPorts: [9] })]]],
    matches: false,
  },
  {
    name: 'any rule may match (OR)',
    rules: [[[m({ destinationPorts: [9] })]], [[m({ destinationPorts: [8080] })]]],
    matches: true,
  },
  {
    name: 'any Match of a clause may match (OR)',
    rules: [[[m({ destinationPorts: [9] }), m({ destinationPorts: [8080] })]]],
    matches: true,
  },
  {
    name: 'fields within a Match are AND-ed',
    rules: [[[m({ destinationPorts: [8080], sourceIps: [cidr('192.168.0.0/16')] })]]],
    matches: false,
  },
  {
    name: 'values within a field are OR-ed',
    rules: [[[m({ destinationPorts: [1, 8080, 2] })]]],
    matches: true,
  },
  {
    name: 'not_* must match none of its values',
    rules: [[[m({ notDestinationPorts: [1, 8080] })]]],
    matches: false,
  },
  { name: 'not_* with no hit matches', rules: [[[m({ notDestinationPorts: [1, 2] })]]], matches: true },
  {
    name: 'principal compares without spiffe://',
    rules: [[[m({ principals: [exact('cluster.local/ns/frontend/sa/web')] })]]],
    matches: true,
  },
  {
    name: 'principal written with spiffe:// never matches',
    rules: [[[m({ principals: [exact(ID)] })]]],
    matches: false,
  },
  {
    name: 'principal prefix',
    rules: [[[m({ principals: [prefix('cluster.local/ns/front')] })]]],
    matches: true,
  },
  { name: 'principal suffix', rules: [[[m({ principals: [suffix('/sa/web')] })]]], matches: true },
  {
    name: 'plaintext never matches a positive principal, even presence',
    rules: [[[m({ principals: [presence] })]]],
    ctx: { srcIdentity: undefined },
    matches: false,
  },
  {
    name: 'plaintext satisfies not_principals: [presence]',
    rules: [[[m({ notPrincipals: [presence] })]]],
    ctx: { srcIdentity: undefined },
    matches: true,
  },
  {
    name: 'an identity fails not_principals: [presence]',
    rules: [[[m({ notPrincipals: [presence] })]]],
    matches: false,
  },
  {
    name: 'namespace comes from the SPIFFE ID',
    rules: [[[m({ namespaces: [exact('frontend')] })]]],
    matches: true,
  },
  {
    name: 'namespace is not taken from the source IP',
    rules: [[[m({ namespaces: [exact('frontend')] })]]],
    ctx: { srcIdentity: 'spiffe://cluster.local/ns/other/sa/web' },
    matches: false,
  },
  {
    name: 'plaintext has no namespace: namespaces [presence] fails',
    rules: [[[m({ namespaces: [presence] })]]],
    ctx: { srcIdentity: undefined },
    matches: false,
  },
  {
    name: 'service account needs both namespace and name',
    rules: [[[m({ serviceAccounts: [{ namespace: 'frontend', serviceAccount: 'web' }] })]]],
    matches: true,
  },
  {
    name: 'service account in another namespace does not match',
    rules: [[[m({ serviceAccounts: [{ namespace: 'backend', serviceAccount: 'web' }] })]]],
    matches: false,
  },
  {
    name: 'dots in a service account are literal (CVE-2026-39350)',
    rules: [[[m({ serviceAccounts: [{ namespace: 'frontend', serviceAccount: 'a.b' }] })]]],
    ctx: { srcIdentity: 'spiffe://cluster.local/ns/frontend/sa/axb' },
    matches: false,
  },
  {
    name: 'plaintext never matches a service account',
    rules: [[[m({ serviceAccounts: [{ namespace: 'frontend', serviceAccount: 'web' }] })]]],
    ctx: { srcIdentity: undefined },
    matches: false,
  },
  { name: 'source CIDR v4', rules: [[[m({ sourceIps: [cidr('10.0.0.0/24')] })]]], matches: true },
  { name: 'source CIDR v4 miss', rules: [[[m({ sourceIps: [cidr('10.0.1.0/24')] })]]], matches: false },
  { name: 'odd prefix length /31', rules: [[[m({ sourceIps: [cidr('10.0.0.0/31')] })]]], matches: true },
  {
    name: 'destination CIDR v6',
    rules: [[[m({ destinationIps: [cidr('fd00:1::/64')] })]]],
    ctx: { dstIp: 'fd00:1::5', srcIp: 'fd00:1::4' },
    matches: true,
  },
  {
    name: 'an IPv4 block never holds an IPv6 address',
    rules: [[[m({ sourceIps: [cidr('0.0.0.0/0')] })]]],
    ctx: { srcIp: '2001:db8::1' },
    matches: false,
  },
  {
    name: 'IPv4-mapped connection address is matched as IPv4',
    rules: [[[m({ sourceIps: [cidr('10.0.0.0/8')] })]]],
    ctx: { srcIp: '::ffff:10.0.0.1' },
    matches: true,
  },
  {
    name: 'a wire Address with a bad byte count is dropped (Match becomes empty)',
    rules: [[[m({ sourceIps: [{ address: new Uint8Array([10, 0, 0]), length: 8 }] })]]],
    matches: false,
  },
  {
    name: 'a StringMatch without match type is dropped (Match becomes empty)',
    rules: [[[m({ principals: [{}] })]]],
    matches: false,
  },
  {
    name: 'destination port is the real target port',
    rules: [[[m({ destinationPorts: [15008] })]]],
    matches: false,
  },
];

describe('L4 matching (docs/protocols.md#authorization-evaluation, rbac.rs)', () => {
  it.each(matchCases)('$name', ({ rules, ctx, matches }) => {
    expect(authorizationMatches(allow(rules), conn(ctx))).toBe(matches);
  });
});

const denyAll = pol(1, [[]], 'deny-all');
const allowWeb = allow([[[m({ principals: [exact('cluster.local/ns/frontend/sa/web')] })]]], 'allow-web');
const allowOther = allow([[[m({ principals: [exact('cluster.local/ns/x/sa/y')] })]]], 'allow-other');
const denyPlaintext = pol(1, [[[m({ notPrincipals: [presence] })]]], 'strict');
const denyMiss = pol(1, [[[m({ destinationPorts: [1] })]]], 'deny-miss');

interface DecisionCase {
  name: string;
  policies: security.Authorization[];
  ctx?: Partial<ConnectionContext>;
  expected: { allowed: boolean; policy?: string; reason: string };
}

const decisionCases: DecisionCase[] = [
  { name: 'no policies: allowed', policies: [], expected: { allowed: true, reason: 'no-policies' } },
  {
    name: 'only non-matching DENY: allowed (no ALLOW policy)',
    policies: [denyMiss],
    expected: { allowed: true, reason: 'no-policies' },
  },
  {
    name: 'matching DENY wins over a matching ALLOW (DENY first)',
    policies: [allowWeb, denyAll],
    expected: { allowed: false, policy: 'ns/deny-all', reason: 'explicitly-denied' },
  },
  {
    name: 'matching ALLOW: allowed',
    policies: [allowOther, allowWeb],
    expected: { allowed: true, policy: 'ns/allow-web', reason: 'allowed' },
  },
  {
    name: 'ALLOW policies exist but none match: not allowed',
    policies: [allowOther],
    expected: { allowed: false, reason: 'not-allowed' },
  },
  {
    name: 'an ALLOW with no rules (all dropped as L7) denies everything',
    policies: [allow([], 'l7-only')],
    expected: { allowed: false, reason: 'not-allowed' },
  },
  {
    name: 'static STRICT denies plaintext',
    policies: [denyPlaintext],
    ctx: { srcIdentity: undefined },
    expected: { allowed: false, policy: 'ns/strict', reason: 'explicitly-denied' },
  },
  {
    name: 'static STRICT lets HBONE with any identity through',
    policies: [denyPlaintext],
    expected: { allowed: true, reason: 'no-policies' },
  },
  {
    name: 'a SAN with a NUL byte is rejected, not truncated (CVE-2025-66220)',
    policies: [allowWeb],
    ctx: { srcIdentity: 'spiffe://cluster.local/ns/frontend/sa/web\u0000.evil' },
    expected: { allowed: false, reason: 'invalid-connection' },
  },
  {
    name: 'a non-SPIFFE identity fails closed',
    policies: [],
    ctx: { srcIdentity: 'spiffe://cluster.local/ns/frontend/sa/web/extra' },
    expected: { allowed: false, reason: 'invalid-connection' },
  },
  {
    name: 'an unparsable address fails closed',
    policies: [],
    ctx: { srcIp: '10.0.0.256' },
    expected: { allowed: false, reason: 'invalid-connection' },
  },
];

describe('authorize (docs/protocols.md#authorization-evaluation assert_rbac)', () => {
  it.each(decisionCases)('$name', ({ policies, ctx, expected }) => {
    expect(authorize(conn(ctx), policies)).toEqual(expected);
  });

  it('gives the same answer for a policy object evaluated repeatedly (compiled once)', () => {
    const p = allow([[[m({ destinationPorts: [8080] })]]]);
    expect(authorize(conn(), [p]).allowed).toBe(true);
    expect(authorize(conn({ dstPort: 9 }), [p]).allowed).toBe(false);
    expect(authorize(conn(), [p]).allowed).toBe(true);
  });
});
