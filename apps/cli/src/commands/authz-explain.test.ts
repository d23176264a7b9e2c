import { describe, expect, it } from 'vitest';
import {
  explainAuthz,
  formatExplanation,
  parseTarget,
  splitRef,
  type AuthzDestination,
  type AuthzSource,
} from './authz-explain.ts';

const from: AuthzSource = {
  namespace: 'sample',
  name: 'client-1',
  ip: '10.244.1.5',
  serviceAccount: 'client',
};
const to: AuthzDestination = {
  namespace: 'sample',
  name: 'echo-1',
  ip: '10.244.2.7',
  port: 8080,
  labels: { app: 'echo' },
};

function policy(name: string, namespace: string, spec: Record<string, unknown>): unknown {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace },
    spec,
  };
}

const denyClient = policy('deny-client', 'sample', {
  selector: { matchLabels: { app: 'echo' } },
  action: 'DENY',
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/sample/sa/client'] } }] }],
});
const allowClient = policy('allow-client', 'sample', {
  action: 'ALLOW',
  rules: [
    {
      from: [{ source: { principals: ['cluster.local/ns/sample/sa/client'] } }],
      to: [{ operation: { ports: ['8080'] } }],
    },
  ],
});

describe('explainAuthz', () => {
  it('allows with no policies', () => {
    const e = explainAuthz({ policies: [], from, to });
    expect(e).toMatchObject({
      allowed: true,
      policy: undefined,
      identity: 'spiffe://cluster.local/ns/sample/sa/client',
    });
  });

  it('names the DENY policy that blocks the connection', () => {
    const e = explainAuthz({ policies: [denyClient, allowClient], from, to });
    expect(e.allowed).toBe(false);
    expect(e.policy).toBe('sample/deny-client');
    expect(e.reason).toMatch(/DENY policy matches/);
    expect(e.considered.map(c => [c.policy, c.matches])).toEqual([
      ['sample/deny-client', true],
      ['sample/allow-client', true],
    ]);
  });

  it('names the ALLOW policy that admits it, and denies what no ALLOW matches', () => {
    expect(explainAuthz({ policies: [allowClient], from, to })).toMatchObject({
      allowed: true,
      policy: 'sample/allow-client',
    });
    const other = explainAuthz({ policies: [allowClient], from: { ...from, serviceAccount: 'other' }, to });
    expect(other).toMatchObject({ allowed: false, policy: undefined });
    expect(other.reason).toMatch(/none matches/);
  });

  it('ignores policies of other namespaces and non-matching selectors', () => {
    const elsewhere = policy('deny-all', 'other', { action: 'DENY', rules: [{}] });
    const otherApp = policy('deny-web', 'sample', {
      selector: { matchLabels: { app: 'web' } },
      action: 'DENY',
      rules: [{}],
    });
    const rootDeny = policy('root-deny', 'istio-system', { action: 'DENY', rules: [{}] });
    expect(explainAuthz({ policies: [elsewhere, otherApp], from, to }).allowed).toBe(true);
    expect(explainAuthz({ policies: [rootDeny], from, to }).policy).toBe('istio-system/root-deny');
  });

  it('warns when a policy is enforced only by a waypoint the destination lacks', () => {
    const l7 = policy('waypoint-only', 'sample', {
      targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
      action: 'DENY',
      rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
    });
    const e = explainAuthz({ policies: [l7], from, to });
    expect(e.considered[0]).toMatchObject({ enforcedBy: 'waypoint' });
    expect(e.warnings[0]).toMatch(/enforced only by a waypoint.*uses none: it has no effect/);
    expect(explainAuthz({ policies: [l7], from, to: { ...to, waypoint: 'waypoint' } }).warnings).toEqual([]);
  });

  it('formats the decision with the deciding policy', () => {
    const text = formatExplanation(explainAuthz({ policies: [denyClient], from, to }), from, to, 'table');
    expect(text).toMatch(
      /^DENY: sample\/client-1 .* -> sample\/echo-1 10.244.2.7:8080\n {2}decided by policy sample\/deny-client/,
    );
    expect(text).toContain('POLICY             ACTION ENFORCED BY MATCHES');
  });
});

describe('target parsing', () => {
  it('reads [ns/]name and [ns/]name:port', () => {
    expect(splitRef('client', 'sample')).toEqual({ namespace: 'sample', name: 'client' });
    expect(parseTarget('other/echo:8080', 'sample')).toEqual({
      namespace: 'other',
      name: 'echo',
      port: 8080,
    });
    expect(() => parseTarget('echo', 'sample')).toThrow(/needs a port/);
  });
});
