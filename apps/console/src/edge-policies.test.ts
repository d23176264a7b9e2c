import { describe, expect, it } from 'vitest';
import { edgePolicies } from './edge-policies.ts';
import type { EdgePoliciesView } from './model.ts';
import type { AuthorizationPolicyObject, MeshSnapshot } from './snapshot.ts';
import { fixturePod, sampleSnapshot, withIp } from './testing/fixtures.ts';

/** An L4-only ambient namespace `shop`: client and other call server; no waypoint. */
function shop(policies: readonly AuthorizationPolicyObject[]): MeshSnapshot {
  return {
    namespaces: [
      { metadata: { name: 'istio-system' } },
      { metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } } },
    ],
    pods: [
      withIp(fixturePod('shop', 'client'), '10.2.0.10'),
      withIp(fixturePod('shop', 'other'), '10.2.0.11'),
      withIp(fixturePod('shop', 'server'), '10.2.0.20'),
    ],
    services: [{ metadata: { name: 'server', namespace: 'shop' }, spec: { selector: { app: 'server' } } }],
    gateways: [],
    authorizationPolicies: policies,
  };
}

const allowClient: AuthorizationPolicyObject = {
  metadata: { name: 'server-from-client', namespace: 'shop' },
  spec: {
    action: 'ALLOW',
    selector: { matchLabels: { app: 'server' } },
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
  },
};

const denyAdminPort: AuthorizationPolicyObject = {
  metadata: { name: 'deny-9090', namespace: 'istio-system' },
  spec: { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9090'] } }] }] },
};

function view(snap: MeshSnapshot, source: string, target: string, port?: number): EdgePoliciesView {
  const r = edgePolicies(snap, { source, target, port });
  if (!r.ok) throw new Error(r.message);
  return r.view;
}

describe('edge policies (the policy engine on the live snapshot)', () => {
  it('allows a connection no policy speaks about', () => {
    const v = view(shop([]), 'shop/client', 'shop/server');
    expect(v).toMatchObject({ verdict: 'ALLOW', reason: 'no-policies', l4: [], l7: [], port: 8080 });
    expect(v.sourceIdentity).toBe('spiffe://cluster.local/ns/shop/sa/client');
  });

  it('an ALLOW policy selecting the destination admits its principal and rejects another', () => {
    const snap = shop([allowClient]);
    const ok = view(snap, 'shop/client', 'shop/server');
    expect(ok).toMatchObject({
      verdict: 'ALLOW',
      reason: 'allowed',
      decidingPolicy: 'shop/server-from-client',
    });
    expect(ok.l4).toEqual([
      expect.objectContaining({ name: 'server-from-client', action: 'ALLOW', matches: true }),
    ]);
    const no = view(snap, 'shop/other', 'shop/server');
    expect(no).toMatchObject({ verdict: 'DENY', reason: 'not-allowed' });
    expect(no.l4[0]).toMatchObject({ name: 'server-from-client', matches: false });
  });

  it('a mesh-wide DENY in the root namespace decides by the destination port', () => {
    const snap = shop([allowClient, denyAdminPort]);
    expect(view(snap, 'shop/client', 'shop/server', 9090)).toMatchObject({
      verdict: 'DENY',
      reason: 'explicitly-denied',
      decidingPolicy: 'istio-system/deny-9090',
      port: 9090,
    });
    const v = view(snap, 'shop/client', 'shop/server', 8080);
    expect(v.verdict).toBe('ALLOW');
    expect(v.l4.map(p => `${p.action} ${p.namespace}/${p.name}`).sort()).toEqual([
      'ALLOW shop/server-from-client',
      'DENY istio-system/deny-9090',
    ]);
  });

  it('a policy selecting another workload does not apply; a dry-run one is listed as not applied', () => {
    const snap = shop([
      { ...allowClient, spec: { ...allowClient.spec, selector: { matchLabels: { app: 'client' } } } },
      {
        metadata: { name: 'trial', namespace: 'shop', annotations: { 'istio.io/dry-run': 'true' } },
        spec: { action: 'DENY', rules: [{}] },
      },
    ]);
    const v = view(snap, 'shop/other', 'shop/server');
    expect(v).toMatchObject({ verdict: 'ALLOW', reason: 'no-policies', l4: [] });
    expect(v.notApplied).toEqual([expect.objectContaining({ name: 'trial', action: 'DENY' })]);
  });

  it('through a waypoint: ztunnel sees the waypoint, the L7 policy is listed, the malformed one is not applied', () => {
    const v = view(sampleSnapshot(), 'sample/client', 'sample/echo');
    expect(v.waypoint).toMatchObject({ namespace: 'sample', name: 'waypoint' });
    expect(v.peerIdentity).toBe('spiffe://cluster.local/ns/sample/sa/waypoint');
    // l4-only allows only the client's identity; the connection comes from the waypoint.
    expect(v).toMatchObject({ verdict: 'DENY', reason: 'not-allowed' });
    expect(v.l4.map(p => p.name)).toEqual(['l4-only']);
    expect(v.l7).toEqual([expect.objectContaining({ name: 'echo-get-only', action: 'ALLOW' })]);
    expect(v.l7[0]?.note).toContain('Service sample/echo');
    expect(v.notApplied.map(p => p.name)).toEqual(['bad-when']);
  });

  it('an unknown destination is an error, an unknown source has no identity', () => {
    expect(
      edgePolicies(shop([]), { source: 'shop/client', target: 'shop/ghost', port: undefined }),
    ).toMatchObject({
      ok: false,
      code: 'NOT_FOUND',
    });
    const v = view(shop([allowClient]), 'elsewhere/x', 'shop/server');
    expect(v).toMatchObject({ sourceIdentity: undefined, verdict: 'DENY' });
  });
});
