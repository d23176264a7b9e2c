import { describe, expect, it } from 'vitest';
import { BUILTIN_CLASSES } from './classes.ts';
import {
  applyCustomizations,
  classDefaultsFor,
  parametersRefProblem,
  parseCustomization,
  strategicMerge,
  type Customization,
} from './customization.ts';
import { validateGateway } from './model.ts';
import { renderGateway } from './render.ts';

const waypointClass = BUILTIN_CLASSES.find(c => c.waypoint)!;

function rendered() {
  const v = validateGateway({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { namespace: 'app', name: 'wp', uid: 'u1', generation: 1 },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  } as never);
  if (!v.ok) throw new Error(v.errors.join());
  return renderGateway(v.value, waypointClass, {
    image: 'img',
    discoveryAddress: 'istiod.istio-system.svc:15012',
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
  });
}

function layer(data: Record<string, string>, name = 'cm'): Customization {
  const p = parseCustomization({ metadata: { namespace: 'istio-system', name }, data } as never);
  if (!p.ok) throw new Error(p.errors.join());
  return p.value;
}

describe('gateway ConfigMap customisation', () => {
  it('merges maps, deletes on null, merges named lists by key and replaces other lists (strategic merge patch)', () => {
    const base = {
      spec: {
        replicas: 1,
        template: {
          spec: {
            tolerations: [{ key: 'a' }],
            containers: [{ name: 'istio-proxy', image: 'img', env: [{ name: 'A', value: '1' }] }],
          },
        },
      },
      metadata: { labels: { a: '1', b: '2' } },
    };
    const out = strategicMerge(base, {
      metadata: { labels: { b: null, c: '3' } },
      spec: {
        template: {
          spec: {
            tolerations: [{ key: 'b' }],
            containers: [
              { name: 'istio-proxy', env: [{ name: 'B', value: '2' }] },
              { name: 'sidecar', image: 'x' },
            ],
          },
        },
      },
    });
    expect(out).toEqual({
      spec: {
        replicas: 1,
        template: {
          spec: {
            tolerations: [{ key: 'b' }],
            containers: [
              {
                name: 'istio-proxy',
                image: 'img',
                env: [
                  { name: 'A', value: '1' },
                  { name: 'B', value: '2' },
                ],
              },
              { name: 'sidecar', image: 'x' },
            ],
          },
        },
      },
      metadata: { labels: { a: '1', c: '3' } },
    });
    expect(base.metadata.labels).toEqual({ a: '1', b: '2' }); // input untouched
  });

  it('applies class defaults then the Gateway layer, keeping names, namespace and owner as generated', () => {
    const r = rendered();
    const out = applyCustomizations(r, [
      layer({
        deployment: 'spec:\n  replicas: 2\nmetadata:\n  name: renamed\n',
        serviceAccount: 'metadata:\n  annotations: {x: y}\n',
      }),
      layer({
        deployment: 'spec:\n  replicas: 4\n',
        service: 'spec:\n  ports:\n  - port: 15008\n    name: mesh2\n',
      }),
    ]);
    expect((out.deployment as unknown as { spec: { replicas: number } }).spec.replicas).toBe(4);
    expect(out.deployment.metadata.name).toBe('wp');
    expect(out.deployment.metadata.ownerReferences).toEqual(r.deployment.metadata.ownerReferences);
    expect(out.serviceAccount.metadata.annotations).toMatchObject({ x: 'y' });
    const ports = (out.service as unknown as { spec: { ports: { port: number; name: string }[] } }).spec
      .ports;
    expect(ports.map(p => [p.port, p.name])).toEqual([
      [15021, 'status-port'],
      [15008, 'mesh2'],
    ]);
    expect(applyCustomizations(r, [])).toEqual(r);
  });

  it('rejects a key whose YAML is not a map, and reports HPA/PDB keys as not generated', () => {
    const bad = parseCustomization({
      metadata: { namespace: 'a', name: 'b' },
      data: { deployment: '- 1\n- 2' },
    } as never);
    expect(bad).toEqual({
      ok: false,
      errors: ['data.deployment: must be a YAML map (a patch of the generated object)'],
    });
    expect(layer({ horizontalPodAutoscaler: 'spec:\n  minReplicas: 2\n' }).unsupported).toEqual([
      'horizontalPodAutoscaler',
    ]);
  });

  it("finds the class defaults among istiod's namespace's ConfigMaps by label, the oldest first", () => {
    const cm = (name: string, ns: string, cls: string, created: string) => ({
      metadata: {
        name,
        namespace: ns,
        creationTimestamp: created,
        labels: { 'gateway.istio.io/defaults-for-class': cls },
      },
    });
    const all = [
      cm('newer', 'istio-system', 'istio-waypoint', '2026-02-01T00:00:00Z'),
      cm('older', 'istio-system', 'istio-waypoint', '2026-01-01T00:00:00Z'),
      cm('elsewhere', 'app', 'istio-waypoint', '2025-01-01T00:00:00Z'),
      cm('ingress', 'istio-system', 'istio', '2025-01-01T00:00:00Z'),
    ];
    expect(classDefaultsFor('istio-waypoint', all, 'istio-system')?.metadata?.name).toBe('older');
    expect(classDefaultsFor('istio-waypoint', all, 'other')).toBeUndefined();
  });

  it('says why a parametersRef does not resolve (the InvalidParameters message), or nothing when it does', () => {
    const ref = { group: '', kind: 'ConfigMap', name: 'params' };
    const cm = (data: Record<string, string>) =>
      ({ metadata: { namespace: 'app', name: 'params' }, data }) as never;
    expect(parametersRefProblem('app', ref, undefined, false)).toBe(
      'spec.infrastructure.parametersRef core/ConfigMap app/params: not found',
    );
    expect(parametersRefProblem('app', { ...ref, kind: 'Secret' }, undefined, true)).toContain(
      'unsupported kind',
    );
    expect(parametersRefProblem('app', ref, cm({ service: '- a list' }), true)).toBe(
      'spec.infrastructure.parametersRef core/ConfigMap app/params: invalid: data.service: must be a YAML map (a patch of the generated object)',
    );
    expect(parametersRefProblem('app', ref, cm({ deployment: 'spec: {replicas: 2}' }), true)).toBeUndefined();
    // Present without any customisation key: nothing to apply, still valid.
    expect(parametersRefProblem('app', ref, undefined, true)).toBeUndefined();
  });
});
