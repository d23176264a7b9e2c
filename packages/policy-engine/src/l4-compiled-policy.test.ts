import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp } from './ip-cidr.ts';
import {
  ANY_PORT,
  MANY_PORTS,
  NO_PORT,
  compilePolicy,
  ipv4Int,
  policyMatches,
} from './l4-compiled-policy.ts';
import type { PreparedConnection } from './l4-compiled-policy.ts';
import { authorize } from './l4-evaluator.ts';
import type { security } from './wire.ts';
import { emptyMatch } from './wire.ts';

const m = (f: Partial<security.Match>): security.Match => ({ ...emptyMatch(), ...f });
const ports = (...p: number[]) => m({ destinationPorts: p });
function pol(rules: security.Match[][][], action: 0 | 1 = 0, name = 'p'): security.Authorization {
  return {
    name,
    namespace: 'ns',
    scope: 0,
    action,
    rules: rules.map(r => ({ clauses: r.map(matches => ({ matches })) })),
  };
}

function conn(dst: string, dstPort: number): PreparedConnection {
  const d = parseIp(dst)!;
  return {
    src: d,
    dst: d,
    srcIsV4: d.length === 4,
    dstIsV4: d.length === 4,
    src4: d.length === 4 ? ipv4Int(d) : 0,
    dst4: d.length === 4 ? ipv4Int(d) : 0,
    dstPort,
    principal: undefined,
    namespace: '',
    serviceAccount: undefined,
  };
}

describe('destination-port pre-filter', () => {
  it('is the single port when every rule pins the same one', () => {
    const p = compilePolicy(pol([[[ports(8080)]], [[ports(8080)]]]));
    expect(p.port).toBe(8080);
  });

  it('is the union over rules', () => {
    const p = compilePolicy(pol([[[ports(80)]], [[ports(90)]]]));
    expect(p.port).toBe(MANY_PORTS);
    expect([...p.ports!].sort()).toEqual([80, 90]);
  });

  it('is the union over the Matches of a clause, and any port when one Match does not pin it', () => {
    expect([...compilePolicy(pol([[[ports(80), ports(90)]]])).ports!].sort()).toEqual([80, 90]);
    expect(compilePolicy(pol([[[ports(80), m({ notDestinationPorts: [1] })]]])).port).toBe(ANY_PORT);
  });

  it('is the intersection over the clauses of a rule', () => {
    const p = compilePolicy(pol([[[ports(80, 90)], [ports(90, 100)]]]));
    expect(p.port).toBe(90);
    expect(policyMatches(p, conn('10.0.0.1', 90))).toBe(true);
    expect(policyMatches(p, conn('10.0.0.1', 80))).toBe(false);
  });

  it('rejects every port when the clauses of every rule pin disjoint ports', () => {
    const p = compilePolicy(pol([[[ports(80)], [ports(90)]]]));
    expect(p.port).toBe(NO_PORT);
    expect(policyMatches(p, conn('10.0.0.1', 80))).toBe(false);
  });

  it('rejects every port for a policy without rules or with only never-matching rules', () => {
    expect(compilePolicy(pol([])).port).toBe(NO_PORT);
    expect(compilePolicy(pol([[[emptyMatch()]]])).port).toBe(NO_PORT);
  });

  it('uses wrapped u16 ports, as ztunnel does', () => {
    const p = compilePolicy(pol([[[ports(80 + 65536)]]]));
    expect(p.port).toBe(80);
    expect(policyMatches(p, conn('10.0.0.1', 80))).toBe(true);
  });

  it('lets any port through when a rule has no clause with Matches', () => {
    const p = compilePolicy(pol([[[ports(80)]], [[]]]));
    expect(p.port).toBe(ANY_PORT);
    expect(policyMatches(p, conn('10.0.0.1', 1))).toBe(true);
  });
});

describe('flat rule records', () => {
  it('drops a rule with a clause of only empty Matches and keeps evaluating the next rules', () => {
    const p = compilePolicy(pol([[[ports(80)], [emptyMatch()]], [[ports(81)]]]));
    expect(p.port).toBe(81);
    expect(p.restMatches).toHaveLength(0);
    expect(policyMatches(p, conn('10.0.0.1', 81))).toBe(true);
    expect(policyMatches(p, conn('10.0.0.1', 80))).toBe(false);
  });

  it('compares an inline IPv4 block on signed 32-bit integers (high addresses included)', () => {
    const p = compilePolicy(pol([[[m({ destinationIps: [parseCidr('255.255.255.254/31')!] })]]]));
    expect(p.restMatches).toHaveLength(0);
    expect(policyMatches(p, conn('255.255.255.255', 1))).toBe(true);
    expect(policyMatches(p, conn('127.255.255.255', 1))).toBe(false);
    expect(policyMatches(p, conn('fd00::1', 1))).toBe(false);
  });

  it('puts the other populated fields into one closure per Match, compiled on first use', () => {
    const p = compilePolicy(
      pol([[[m({ destinationPorts: [80], principals: [{ presence: {}, matchType: 'presence' }] })]]]),
    );
    expect(p.restMatches).toHaveLength(1);
    expect(p.restChecks).toEqual([undefined]);
    expect(policyMatches(p, conn('10.0.0.1', 81))).toBe(false); // the inline port check fails
    expect(p.restChecks).toEqual([undefined]);
    expect(policyMatches(p, conn('10.0.0.1', 80))).toBe(false); // plaintext has no principal
    expect(p.restChecks[0]).toBeTypeOf('function');
  });

  it('compiles a policy object once', () => {
    const a = pol([[[ports(80)]]]);
    expect(compilePolicy(a)).toBe(compilePolicy(a));
  });
});

describe('decisions', () => {
  it('are frozen and allocated once per deciding policy', () => {
    const deny = pol([[]], 1, 'deny-all');
    const ctx = { srcIp: '10.0.0.1', srcPort: 1, dstIp: '10.0.0.2', dstPort: 80 };
    const first = authorize(ctx, [deny]);
    expect(first).toEqual({ allowed: false, policy: 'ns/deny-all', reason: 'explicitly-denied' });
    expect(Object.isFrozen(first)).toBe(true);
    expect(authorize(ctx, [deny])).toBe(first);
    expect(Object.isFrozen(authorize(ctx, []))).toBe(true);
  });
});

describe('authorize over lists that change between calls (position memo)', () => {
  const ctx = { srcIp: '10.0.0.1', srcPort: 1, dstIp: '10.0.0.2', dstPort: 80 };
  const denyAll = pol([[]], 1, 'deny-all');
  const deny80 = pol([[[ports(80)]]], 1, 'deny-80');
  const deny90 = pol([[[ports(90)]]], 1, 'deny-90');
  const allow80 = pol([[[ports(80)]]], 0, 'allow-80');

  it('uses the policy now at a position, not the one seen there before', () => {
    expect(authorize(ctx, [deny90, allow80]).reason).toBe('allowed');
    expect(authorize(ctx, [deny80, allow80]).policy).toBe('ns/deny-80');
    expect(authorize(ctx, [deny90, allow80]).reason).toBe('allowed');
  });

  it('follows a list that shrinks, grows and reorders', () => {
    expect(authorize(ctx, [deny90, deny90, denyAll]).policy).toBe('ns/deny-all');
    expect(authorize(ctx, [deny90]).reason).toBe('no-policies');
    expect(authorize(ctx, [deny90, allow80, deny80]).policy).toBe('ns/deny-80');
    expect(authorize(ctx, [allow80, deny90]).policy).toBe('ns/allow-80');
    expect(authorize(ctx, []).reason).toBe('no-policies');
    expect(authorize(ctx, [deny90, allow80]).policy).toBe('ns/allow-80');
  });

  it('sees a new policy object at the same position and with the same name', () => {
    const first = pol([[[ports(90)]]], 1, 'same');
    const replaced = pol([[[ports(80)]]], 1, 'same');
    expect(authorize(ctx, [first]).reason).toBe('no-policies');
    expect(authorize(ctx, [replaced]).reason).toBe('explicitly-denied');
  });
});
