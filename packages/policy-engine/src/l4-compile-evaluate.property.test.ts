/**
 * Property: for L4-only policies, compiling to ztunnel `Authorization`s and evaluating them
 * gives the same decision as evaluating the original AuthorizationPolicies directly with a
 * deliberately naive reference written from Istio's documented semantics.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileAuthorizationPolicy } from './compile-authorization-policy.ts';
import { authorize } from './l4-evaluator.ts';
import type { ConnectionContext } from './l4-evaluator.ts';
import type { AuthorizationPolicy, PolicyCondition, PolicyRule, PolicySource } from './policy-types.ts';
import type { security } from './wire.ts';

// ---- reference evaluator (independent of the engine's modules) ----

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}
function inBlock(block: string, ip: string): boolean {
  const [base, bits] = block.includes('/') ? block.split('/') : [block, '32'];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipToInt(base!) / size) === Math.floor(ipToInt(ip) / size);
}
function wildcard(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern === '*') return value !== '';
  if (pattern.startsWith('*')) return value.endsWith(pattern.substring(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.substring(0, pattern.length - 1));
  return pattern === value;
}
interface Peer {
  principal?: string;
  ns?: string;
  sa?: string;
}
function peerOf(ctx: ConnectionContext): Peer {
  if (ctx.srcIdentity === undefined) return {};
  const p = ctx.srcIdentity.replace('spiffe://', '');
  const parts = p.split('/');
  return { principal: p, ns: parts[2]!, sa: parts[4]! };
}
function field(pos: string[] | undefined, neg: string[] | undefined, hit: (v: string) => boolean): boolean {
  return (pos === undefined || pos.some(hit)) && (neg === undefined || !neg.some(hit));
}
function refSource(s: PolicySource, ctx: ConnectionContext, peer: Peer, policyNs: string): boolean {
  const sa = (v: string) => {
    const [ns, name] = v.includes('/') ? v.split('/') : [policyNs, v];
    return peer.ns === ns && peer.sa === name;
  };
  return (
    field(s.principals, s.notPrincipals, v => wildcard(v, peer.principal)) &&
    field(s.namespaces, s.notNamespaces, v => wildcard(v, peer.ns)) &&
    field(s.serviceAccounts, s.notServiceAccounts, sa) &&
    field(s.ipBlocks, s.notIpBlocks, b => inBlock(b, ctx.srcIp))
  );
}
function refWhen(c: PolicyCondition, ctx: ConnectionContext, peer: Peer): boolean {
  const hit: Record<string, (v: string) => boolean> = {
    'source.ip': b => inBlock(b, ctx.srcIp),
    'destination.ip': b => inBlock(b, ctx.dstIp),
    'destination.port': p => Number(p) === ctx.dstPort,
    'source.namespace': v => wildcard(v, peer.ns),
    'source.principal': v => wildcard(v, peer.principal),
  };
  return field(c.values, c.notValues, hit[c.key]!);
}
function refRule(r: PolicyRule, ctx: ConnectionContext, peer: Peer, ns: string): boolean {
  const from = r.from === undefined || r.from.some(f => refSource(f.source, ctx, peer, ns));
  const to =
    r.to === undefined ||
    r.to.some(t => field(t.operation.ports, t.operation.notPorts, p => Number(p) === ctx.dstPort));
  return from && to && (r.when ?? []).every(c => refWhen(c, ctx, peer));
}
function refDecide(policies: AuthorizationPolicy[], ctx: ConnectionContext): boolean {
  const peer = peerOf(ctx);
  const matches = (p: AuthorizationPolicy) =>
    (p.spec.rules ?? []).some(r => refRule(r, ctx, peer, p.metadata.namespace));
  if (policies.some(p => p.spec.action === 'DENY' && matches(p))) return false;
  const allows = policies.filter(p => p.spec.action !== 'DENY');
  return allows.length === 0 || allows.some(matches);
}

// ---- generators ----

const nsName = fc.constantFrom('a', 'b');
const saName = fc.constantFrom('x', 'y.z');
const identity = fc.option(
  fc.tuple(nsName, saName).map(([ns, sa]) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`),
  { nil: undefined },
);
const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.5', '192.168.1.1');
const port = fc.constantFrom(80, 8080, 9000);
const principalPat = fc.constantFrom(
  'cluster.local/ns/a/sa/x',
  'cluster.local/ns/b/sa/y.z',
  '*',
  '*/sa/x',
  'cluster.local/ns/a/*',
);
const nsPat = fc.constantFrom('a', 'b', '*', 'b*', '*a');
const saPat = fc.constantFrom('x', 'a/x', 'b/y.z', 'a/y.z', 'b/yxz');
const block = fc.constantFrom('10.0.0.0/30', '10.0.0.2', '10.0.0.0/31', '192.168.0.0/16', '0.0.0.0/0');
const portStr = fc.constantFrom('80', '8080', '9000');
const list = <T>(a: fc.Arbitrary<T>) =>
  fc.option(fc.array(a, { minLength: 1, maxLength: 2 }), { nil: undefined });

const source: fc.Arbitrary<PolicySource> = fc
  .oneof(
    fc.record({
      principals: list(principalPat),
      notPrincipals: list(principalPat),
      namespaces: list(nsPat),
      notNamespaces: list(nsPat),
      ipBlocks: list(block),
      notIpBlocks: list(block),
    }),
    fc.record({ serviceAccounts: list(saPat), notServiceAccounts: list(saPat), ipBlocks: list(block) }),
  )
  .map(s => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as PolicySource)
  .filter(s => Object.keys(s).length > 0);
const condition: fc.Arbitrary<PolicyCondition> = fc
  .oneof(
    fc.record({ key: fc.constant('source.ip'), values: list(block), notValues: list(block) }),
    fc.record({ key: fc.constant('destination.ip'), values: list(block), notValues: list(block) }),
    fc.record({ key: fc.constant('destination.port'), values: list(portStr), notValues: list(portStr) }),
    fc.record({ key: fc.constant('source.namespace'), values: list(nsPat), notValues: list(nsPat) }),
    fc.record({
      key: fc.constant('source.principal'),
      values: list(principalPat),
      notValues: list(principalPat),
    }),
  )
  .map(
    c =>
      Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as unknown as PolicyCondition,
  )
  .filter(c => c.values !== undefined || c.notValues !== undefined);
const operation = fc
  .record({ ports: list(portStr), notPorts: list(portStr) })
  .map(o => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)))
  .filter(o => Object.keys(o).length > 0);
const rule: fc.Arbitrary<PolicyRule> = fc
  .record({
    from: fc.option(
      fc.array(
        source.map(s => ({ source: s })),
        { minLength: 1, maxLength: 2 },
      ),
      { nil: undefined },
    ),
    to: fc.option(
      fc.array(
        operation.map(o => ({ operation: o })),
        { minLength: 1, maxLength: 2 },
      ),
      { nil: undefined },
    ),
    when: fc.option(fc.array(condition, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  })
  .map(r => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as PolicyRule);
const policy: fc.Arbitrary<AuthorizationPolicy> = fc
  .record({
    name: fc.string({ minLength: 1, maxLength: 4, unit: fc.constantFrom('p', 'q', 'r') }),
    ns: nsName,
    action: fc.constantFrom('ALLOW' as const, 'DENY' as const),
    rules: fc.option(fc.array(rule, { maxLength: 3 }), { nil: undefined }),
  })
  .map(({ name, ns, action, rules }) => ({
    metadata: { name, namespace: ns },
    spec: rules === undefined ? { action } : { action, rules },
  }));
const connection: fc.Arbitrary<ConnectionContext> = fc.record({
  srcIp: ip,
  srcPort: fc.constant(40000),
  dstIp: ip,
  dstPort: port,
  srcIdentity: identity,
});

describe('compile → evaluate equals direct reference evaluation (L4-only policies)', () => {
  it('decides every connection the same way', () => {
    fc.assert(
      fc.property(
        fc.array(policy, { maxLength: 4 }),
        fc.array(connection, { minLength: 1, maxLength: 5 }),
        (policies, conns) => {
          const compiled = policies
            .map(p => compileAuthorizationPolicy(p).authorization)
            .filter((a): a is security.Authorization => a !== undefined);
          expect(compiled).toHaveLength(policies.length);
          for (const ctx of conns) {
            expect(authorize(ctx, compiled).allowed).toBe(refDecide(policies, ctx));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
