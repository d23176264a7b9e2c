import { describe, expect, it } from 'vitest';
import { edgePolicies, type EdgePolicyQuery } from './edge-policies.ts';
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
    // sample's STRICT PeerAuthentication adds istiod's converted policy; the waypoint has an identity.
    expect(v.l4.map(p => `${p.name}:${String(p.matches)}`)).toEqual([
      'l4-only:false',
      'istio_converted_static_strict:false',
    ]);
    expect(v.mtls).toMatchObject({ strict: true, plaintext: false, peerAuthentications: ['sample/strict'] });
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

  it('PeerAuthentication STRICT denies plaintext from a source outside the mesh, not an in-mesh source', () => {
    const base = shop([]);
    const snap: MeshSnapshot = {
      ...base,
      namespaces: [...base.namespaces, { metadata: { name: 'outside' } }],
      pods: [...base.pods, withIp(fixturePod('outside', 'curl'), '10.3.0.5')],
      peerAuthentications: [
        { metadata: { name: 'default', namespace: 'istio-system' }, spec: { mtls: { mode: 'STRICT' } } },
      ],
    };
    const outside = view(snap, 'outside/curl', 'shop/server');
    expect(outside).toMatchObject({
      verdict: 'DENY',
      overall: 'DENY',
      reason: 'explicitly-denied',
      decidingPolicy: 'istio-system/istio_converted_static_strict',
      peerIdentity: undefined,
      mtls: { strict: true, plaintext: true, peerAuthentications: ['istio-system/default'] },
    });
    expect(outside.summary).toContain('plaintext');
    expect(outside.peer).toContain('outside the mesh');
    expect(outside.l4).toEqual([
      expect.objectContaining({ name: 'istio_converted_static_strict', action: 'DENY', matches: true }),
    ]);
    expect(outside.l4[0]?.note).toContain('PeerAuthentication STRICT');
    // The same destination from inside the mesh: mTLS with an identity, allowed.
    const inside = view(snap, 'shop/client', 'shop/server');
    expect(inside).toMatchObject({ verdict: 'ALLOW', mtls: { strict: true, plaintext: false } });
    expect(inside.l4[0]).toMatchObject({ name: 'istio_converted_static_strict', matches: false });
    // A namespace PERMISSIVE overrides the mesh STRICT: plaintext is accepted.
    const permissive = view(
      {
        ...snap,
        peerAuthentications: [
          ...snap.peerAuthentications!,
          { metadata: { name: 'open', namespace: 'shop' }, spec: { mtls: { mode: 'PERMISSIVE' } } },
        ],
      },
      'outside/curl',
      'shop/server',
    );
    expect(permissive).toMatchObject({ verdict: 'ALLOW', mtls: { strict: false, plaintext: true } });
    // Without any PeerAuthentication nothing is converted.
    expect(view(shop([]), 'shop/client', 'shop/server').mtls).toMatchObject({
      strict: false,
      peerAuthentications: [],
    });
  });

  it("decides the waypoint's L7 rules (methods, paths, headers) for a request shape, naming the waypoint", () => {
    const base = sampleSnapshot();
    const snap: MeshSnapshot = {
      ...base,
      authorizationPolicies: [
        ...base.authorizationPolicies.filter(p => p.metadata.name !== 'l4-only'),
        {
          metadata: { name: 'deny-admin-without-header', namespace: 'sample' },
          spec: {
            action: 'DENY',
            targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
            rules: [
              {
                to: [{ operation: { paths: ['/admin*'] } }],
                when: [{ key: 'request.headers[x-role]', notValues: ['ops'] }],
              },
            ],
          },
        },
      ],
    };
    const get = edgePolicies(snap, { source: 'sample/client', target: 'sample/echo', port: undefined });
    if (!get.ok) throw new Error(get.message);
    expect(get.view.l7Verdict).toMatchObject({
      enforcedBy: 'sample/waypoint',
      request: { method: 'GET', path: '/', host: 'echo.sample.svc.cluster.local', headers: {} },
      verdict: 'ALLOW',
      reason: 'allowed',
      decidingPolicy: 'sample/echo-get-only',
    });
    expect(get.view.overall).toBe('ALLOW');
    const row = (v: EdgePoliciesView, name: string) => v.l7.find(p => p.name === name);
    expect(row(get.view, 'echo-get-only')).toMatchObject({ matches: true });
    expect(row(get.view, 'deny-admin-without-header')).toMatchObject({ action: 'DENY', matches: false });

    const post = view2(snap, { method: 'POST', path: '/' });
    expect(post.l7Verdict).toMatchObject({ verdict: 'DENY', reason: 'not-allowed' });
    expect(post.overall).toBe('DENY');
    expect(row(post, 'echo-get-only')).toMatchObject({ matches: false });

    const admin = view2(snap, { method: 'GET', path: '/admin/users' });
    expect(admin.l7Verdict).toMatchObject({
      verdict: 'DENY',
      reason: 'explicitly-denied',
      decidingPolicy: 'sample/deny-admin-without-header',
    });
    const ops = view2(snap, { method: 'GET', path: '/admin/users', headers: { 'x-role': 'ops' } });
    expect(ops.l7Verdict).toMatchObject({ verdict: 'ALLOW', decidingPolicy: 'sample/echo-get-only' });
    // No waypoint, no L7 verdict.
    expect(view(shop([]), 'shop/client', 'shop/server').l7Verdict).toBeUndefined();
  });
});

function view2(snap: MeshSnapshot, request: EdgePolicyQuery['request']): EdgePoliciesView {
  const r = edgePolicies(snap, { source: 'sample/client', target: 'sample/echo', port: undefined, request });
  if (!r.ok) throw new Error(r.message);
  return r.view;
}
