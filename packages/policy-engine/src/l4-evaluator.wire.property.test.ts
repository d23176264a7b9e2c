/**
 * Property: on arbitrary wire `Authorization`s (several rules, clauses and Matches, empty Matches,
 * dropped entries, `not_*` lists, IPv4 and IPv6 blocks, wrapped ports), `authorize` gives the same
 * decision, deciding policy included, as a deliberately naive reference evaluator of docs/protocols.md#authorization-evaluation
 * written directly over the wire types. This guards the compiled form (port pre-filter, flat
 * records, folding of empty Matches and clauses) against the plain semantics.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize } from './l4-evaluator.ts';
import type { ConnectionContext, L4Decision } from './l4-evaluator.ts';
import type { security } from './wire.ts';

// ---- reference evaluator (independent of the engine's modules) ----

interface Peer {
  principal: string;
  ns: string;
  sa: string;
}
interface RefConn {
  src: number[];
  dst: number[];
  port: number;
  peer: Peer | undefined;
}

function bitsOf(bytes: readonly number[]): string {
  return bytes.map(b => b.toString(2).padStart(8, '0')).join('');
}
function validAddress(a: security.Address): boolean {
  const n = a.address.length;
  return (n === 4 || n === 16) && a.length >= 0 && a.length <= n * 8;
}
function inBlock(a: security.Address, ip: readonly number[]): boolean {
  if (a.address.length !== ip.length) return false;
  return bitsOf([...a.address]).slice(0, a.length) === bitsOf(ip).slice(0, a.length);
}
function validString(m: security.StringMatch): boolean {
  return (
    m.exact !== undefined || m.prefix !== undefined || m.suffix !== undefined || m.presence !== undefined
  );
}
function stringHit(m: security.StringMatch, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (m.exact !== undefined) return v === m.exact;
  if (m.prefix !== undefined) return v.startsWith(m.prefix);
  if (m.suffix !== undefined) return v.endsWith(m.suffix);
  return v !== '';
}
/** Populated-field check: positive list empty or some hit; negative list no hit. */
function field<T>(pos: readonly T[], neg: readonly T[], hit: (v: T) => boolean): boolean {
  return (pos.length === 0 || pos.some(hit)) && !neg.some(hit);
}
function refMatch(m: security.Match, c: RefConn): boolean {
  const port = (p: number) => p % 65536 === c.port;
  const src = (a: security.Address) => inBlock(a, c.src);
  const dst = (a: security.Address) => inBlock(a, c.dst);
  const principal = (s: security.StringMatch) => stringHit(s, c.peer?.principal);
  const ns = (s: security.StringMatch) => stringHit(s, c.peer?.ns ?? '');
  const sa = (s: security.ServiceAccountMatch) =>
    c.peer !== undefined && c.peer.ns === s.namespace && c.peer.sa === s.serviceAccount;
  return (
    field(m.destinationPorts, m.notDestinationPorts, port) &&
    field(m.sourceIps.filter(validAddress), m.notSourceIps.filter(validAddress), src) &&
    field(m.destinationIps.filter(validAddress), m.notDestinationIps.filter(validAddress), dst) &&
    field(m.principals.filter(validString), m.notPrincipals.filter(validString), principal) &&
    field(m.namespaces.filter(validString), m.notNamespaces.filter(validString), ns) &&
    field(m.serviceAccounts, m.notServiceAccounts, sa)
  );
}
function emptyAfterDrops(m: security.Match): boolean {
  return (
    m.destinationPorts.length +
      m.notDestinationPorts.length +
      m.sourceIps.filter(validAddress).length +
      m.notSourceIps.filter(validAddress).length +
      m.destinationIps.filter(validAddress).length +
      m.notDestinationIps.filter(validAddress).length +
      m.principals.filter(validString).length +
      m.notPrincipals.filter(validString).length +
      m.namespaces.filter(validString).length +
      m.notNamespaces.filter(validString).length +
      m.serviceAccounts.length +
      m.notServiceAccounts.length ===
    0
  );
}
function refPolicy(p: security.Authorization, c: RefConn): boolean {
  return p.rules.some(r =>
    r.clauses.every(
      cl => cl.matches.length === 0 || cl.matches.filter(m => !emptyAfterDrops(m)).some(m => refMatch(m, c)),
    ),
  );
}
function refDecide(policies: readonly security.Authorization[], c: RefConn): L4Decision {
  const key = (p: security.Authorization) => `${p.namespace}/${p.name}`;
  const deny = policies.find(p => p.action === 1 && refPolicy(p, c));
  if (deny !== undefined) return { allowed: false, policy: key(deny), reason: 'explicitly-denied' };
  const allows = policies.filter(p => p.action === 0);
  if (allows.length === 0) return { allowed: true, reason: 'no-policies' };
  const allow = allows.find(p => refPolicy(p, c));
  if (allow !== undefined) return { allowed: true, policy: key(allow), reason: 'allowed' };
  return { allowed: false, reason: 'not-allowed' };
}

// ---- generators ----

/** Connection addresses with their bytes as the reference sees them (mapped IPv4 unmapped). */
const ADDRESSES: readonly (readonly [string, number[]])[] = [
  ['10.0.0.1', [10, 0, 0, 1]],
  ['10.0.0.2', [10, 0, 0, 2]],
  ['192.168.1.1', [192, 168, 1, 1]],
  ['255.255.255.255', [255, 255, 255, 255]],
  ['::ffff:10.0.0.1', [10, 0, 0, 1]],
  ['fd00::1', [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
  ['fd00:0:0:1::5', [0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]],
];
const v6 = (head: number[]): number[] => [...head, ...new Array<number>(16 - head.length).fill(0)];
const address: fc.Arbitrary<security.Address> = fc
  .constantFrom(
    { bytes: [10, 0, 0, 0], lengths: [8, 24, 30, 31, 32, 0] },
    { bytes: [10, 0, 0, 2], lengths: [32, 31] },
    { bytes: [192, 168, 0, 0], lengths: [16] },
    { bytes: [255, 255, 255, 255], lengths: [32, 1] },
    { bytes: [0, 0, 0, 0], lengths: [0] },
    { bytes: v6([0xfd]), lengths: [8, 64, 128, 0] },
    { bytes: v6([0xfd, 0, 0, 0, 0, 0, 0, 1]), lengths: [64, 127] },
    { bytes: [10, 0, 0], lengths: [8] }, // bad byte count: dropped
    { bytes: [10, 0, 0, 0], lengths: [33] }, // prefix too long: dropped
  )
  .chain(({ bytes, lengths }) =>
    fc.constantFrom(...lengths).map(length => ({ address: Uint8Array.from(bytes), length })),
  );
const stringMatch: fc.Arbitrary<security.StringMatch> = fc.oneof(
  fc
    .constantFrom('cluster.local/ns/a/sa/x', 'cluster.local/ns/b/sa/y', 'a', 'b')
    .map(v => ({ exact: v, matchType: 'exact' as const })),
  fc.constantFrom('cluster.local/ns/a', 'a', 'b').map(v => ({ prefix: v, matchType: 'prefix' as const })),
  fc.constantFrom('/sa/x', 'a', 'y').map(v => ({ suffix: v, matchType: 'suffix' as const })),
  fc.constant<security.StringMatch>({ presence: {}, matchType: 'presence' }),
  fc.constant<security.StringMatch>({}), // no match type: dropped
);
const serviceAccount = fc
  .tuple(fc.constantFrom('a', 'b'), fc.constantFrom('x', 'y'))
  .map(([namespace, serviceAccount]) => ({ namespace, serviceAccount }));
const port = fc.constantFrom(80, 8080, 9000, 80 + 65536);
const few = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T[]> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant<T[]>([]) }, fc.array(a, { minLength: 1, maxLength: 3 }));
const match: fc.Arbitrary<security.Match> = fc.record({
  namespaces: few(stringMatch),
  notNamespaces: few(stringMatch),
  principals: few(stringMatch),
  notPrincipals: few(stringMatch),
  sourceIps: few(address),
  notSourceIps: few(address),
  destinationIps: few(address),
  notDestinationIps: few(address),
  destinationPorts: fc.oneof(
    { weight: 2, arbitrary: fc.constant<number[]>([]) },
    fc.array(port, { minLength: 1, maxLength: 3 }),
  ),
  notDestinationPorts: few(port),
  serviceAccounts: few(serviceAccount),
  notServiceAccounts: few(serviceAccount),
});
const rule: fc.Arbitrary<security.Rule> = fc
  .array(fc.array(match, { maxLength: 3 }), { maxLength: 3 })
  .map(clauses => ({ clauses: clauses.map(matches => ({ matches })) }));
const policy: fc.Arbitrary<security.Authorization> = fc.record({
  name: fc.constantFrom('p', 'q', 'r', 's'),
  namespace: fc.constantFrom('a', 'b'),
  scope: fc.constant(0 as const),
  action: fc.constantFrom(0 as const, 1 as const),
  rules: fc.array(rule, { maxLength: 3 }),
});
const peer: fc.Arbitrary<Peer | undefined> = fc.option(
  fc
    .tuple(fc.constantFrom('a', 'b'), fc.constantFrom('x', 'y'))
    .map(([ns, sa]) => ({ principal: `cluster.local/ns/${ns}/sa/${sa}`, ns, sa })),
  { nil: undefined },
);
const connection = fc.record({
  src: fc.constantFrom(...ADDRESSES),
  dst: fc.constantFrom(...ADDRESSES),
  port: fc.constantFrom(80, 8080, 9000, 0),
  peer,
});

describe('authorize equals a naive wire-level reference (docs/protocols.md#authorization-evaluation)', () => {
  it('gives the same decision and deciding policy', () => {
    fc.assert(
      fc.property(
        fc.array(policy, { maxLength: 5 }),
        fc.array(connection, { minLength: 1, maxLength: 4 }),
        (policies, conns) => {
          for (const { src, dst, port: dstPort, peer: p } of conns) {
            const ctx: ConnectionContext = {
              srcIp: src[0],
              srcPort: 40000,
              dstIp: dst[0],
              dstPort,
              srcIdentity: p === undefined ? undefined : `spiffe://${p.principal}`,
            };
            const ref = refDecide(policies, { src: src[1], dst: dst[1], port: dstPort, peer: p });
            expect(authorize(ctx, policies)).toEqual(ref);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
