import { describe, expect, it } from 'vitest';
import { controlPlaneView, namespaceViews, workloadViews } from './mesh-view.ts';
import { l7Attributes, validate } from './validations.ts';
import { manyWorkloads, sampleSnapshot } from './testing/fixtures.ts';

describe('mesh views', () => {
  const snap = sampleSnapshot();

  it('shows the control plane as Ambient when ztunnel pods run', () => {
    const cp = controlPlaneView(snap, 'istio-system');
    expect(cp).toMatchObject({ ambient: true, istiodPods: 1 });
    expect(cp.ztunnels.map(z => z.node)).toEqual(['node-1', 'node-2']);
    expect(controlPlaneView({ ...snap, pods: [] }, 'istio-system').ambient).toBe(false);
  });

  it('badges namespaces ambient by their dataplane-mode label', () => {
    expect(namespaceViews(snap).map(n => [n.name, n.ambient])).toEqual([
      ['broken', true],
      ['istio-system', false],
      ['legacy', false],
      ['sample', true],
    ]);
  });

  it('badges workloads L4, L7 (with the waypoint and who labelled it), sidecar or out of mesh', () => {
    const byName = new Map(workloadViews(snap).map(w => [w.name, w]));
    expect(byName.get('client')).toMatchObject({
      kind: 'Deployment',
      mode: 'L4',
      waypoint: undefined,
      redirected: true,
    });
    expect(byName.get('echo')).toMatchObject({
      mode: 'L7',
      waypoint: { name: 'waypoint', namespace: 'sample', labelledBy: 'service', exists: true },
    });
    expect(byName.get('db')).toMatchObject({ kind: 'StatefulSet', mode: 'out-of-mesh' });
    expect(byName.get('sidecar-app-1')?.mode).toBe('sidecar');
    expect(byName.get('both')).toMatchObject({
      mode: 'L7',
      waypoint: { labelledBy: 'namespace', exists: false },
    });
    expect(byName.get('waypoint')?.isWaypoint).toBe(true);
    expect(byName.get('ztunnel')).toMatchObject({ kind: 'DaemonSet', pods: 2, isZtunnel: true });
  });

  it('lists 1000 workloads of one namespace', () => {
    expect(workloadViews(manyWorkloads(snap, 1000), 'load')).toHaveLength(1000);
  });
});

describe('validate (KIA13xx)', () => {
  const found = validate(sampleSnapshot()).map(v => `${v.code} ${v.kind} ${v.namespace}/${v.name}`);

  it('KIA1311: sidecar injection asked for in ambient', () => {
    expect(found).toContain('KIA1311 Deployment broken/both');
  });

  it('KIA1312: waypoint label on a workload outside ambient', () => {
    expect(found).toContain('KIA1312 StatefulSet legacy/db');
  });

  it('KIA1313: a namespace naming a waypoint that does not exist (and not the existing one)', () => {
    expect(found).toContain('KIA1313 Namespace broken/broken');
    expect(found.filter(f => f.startsWith('KIA1313') && f.includes('sample/'))).toEqual([]);
  });

  it('KIA1317: L7 rules on a selector policy; none for a service bound to a waypoint or an L4-only policy', () => {
    expect(found).toContain('KIA1317 AuthorizationPolicy sample/client-paths');
    expect(found).not.toContain('KIA1317 AuthorizationPolicy sample/echo-get-only');
    expect(found).not.toContain('KIA1317 AuthorizationPolicy sample/l4-only');
  });

  it('finds nothing on a clean mesh', () => {
    const snap = sampleSnapshot();
    const clean = {
      ...snap,
      namespaces: snap.namespaces.filter(n => n.metadata.name === 'sample'),
      pods: snap.pods.filter(p => p.metadata.namespace === 'sample'),
      authorizationPolicies: snap.authorizationPolicies.filter(a => a.metadata.name !== 'client-paths'),
    };
    expect(validate(clean)).toEqual([]);
  });

  it('names the L7 attributes it saw', () => {
    expect(
      l7Attributes({
        metadata: { name: 'x' },
        spec: {
          rules: [
            {
              to: [{ operation: { methods: ['GET'], ports: ['80'] } }],
              when: [{ key: 'request.headers[x]' }, { key: 'source.ip' }],
            },
          ],
        },
      }),
    ).toEqual(['to.operation.methods', 'when request.headers[x]']);
  });
});
