import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MESH_COMPONENTS, OPERATOR_SETS, loadManifests, renderComponent } from './manifests.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function deployRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'install-manifests-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('manifests', () => {
  it("loads every component of the repository's deploy/", () => {
    for (const c of MESH_COMPONENTS) expect(loadManifests(c).length).toBeGreaterThan(0);
    const kinds = new Set(MESH_COMPONENTS.flatMap(c => loadManifests(c).map(o => o.kind)));
    expect(kinds).toContain('CustomResourceDefinition');
    expect(kinds).toContain('DaemonSet');
  });

  it('adds the API approval annotation to *.k8s.io CRDs that lack one, and to no others', () => {
    const crd = (name: string, group: string): string =>
      `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: ${name} }\nspec: { group: ${group} }\n`;
    const root = deployRoot({
      'crds/a.yaml': crd('widgets.example.k8s.io', 'example.k8s.io'),
      'crds/b.yaml': crd('policies.security.istio.io', 'security.istio.io'),
    });
    const [k8s, istio] = renderComponent('crds', { deployRoot: root });
    expect(k8s?.metadata.annotations?.['api-approved.kubernetes.io']).toMatch(/^unapproved/);
    expect(istio?.metadata.annotations?.['api-approved.kubernetes.io']).toBeUndefined();
    // The repository's Gateway API CRDs carry their own approval: kept.
    const gw = renderComponent('crds').find(o => o.metadata.name === 'gateways.gateway.networking.k8s.io');
    expect(gw?.metadata.annotations?.['api-approved.kubernetes.io']).toMatch(/^https:/);
  });

  it('replaces images by repository, keeping the others', () => {
    const root = deployRoot({
      'istiod/a.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: { name: istiod, namespace: istio-system }
spec:
  template:
    spec:
      containers:
        - { name: discovery, image: ambient-mesh/istiod:0.1.0 }
        - { name: side, image: busybox:1 }
`,
    });
    const [d] = renderComponent('istiod', {
      deployRoot: root,
      images: { 'ambient-mesh/istiod': 'reg.example/istiod:2.0' },
    });
    const containers = (d as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } })
      .spec.template.spec.containers;
    expect(containers.map(c => c.image)).toEqual(['reg.example/istiod:2.0', 'busybox:1']);
  });

  it('runs two istiod replicas behind a PodDisruptionBudget by default; istiodReplicas sets the count', () => {
    const replicas = (objects: readonly { kind: string }[]): number | undefined =>
      (objects.find(o => o.kind === 'Deployment') as { spec?: { replicas?: number } } | undefined)?.spec
        ?.replicas;
    const byDefault = renderComponent('istiod');
    expect(replicas(byDefault)).toBe(2);
    expect(byDefault.find(o => o.kind === 'PodDisruptionBudget')).toMatchObject({
      spec: { minAvailable: 1, selector: { matchLabels: { app: 'istiod' } } },
    });

    const three = renderComponent('istiod', { istiodReplicas: 3 });
    expect(replicas(three)).toBe(3);
    expect(three.some(o => o.kind === 'PodDisruptionBudget')).toBe(true);

    const one = renderComponent('istiod', { istiodReplicas: 1 });
    expect(replicas(one)).toBe(1);
    expect(one.some(o => o.kind === 'PodDisruptionBudget')).toBe(false);
    // Other components are untouched.
    expect(renderComponent('ztunnel', { istiodReplicas: 1 })).toEqual(renderComponent('ztunnel'));
    expect(() => renderComponent('istiod', { istiodReplicas: -1 })).toThrow(RangeError);
  });

  it("nodeUntaint turns on istiod's node untaint controller, lets it patch nodes and tolerate the taint", () => {
    const plain = renderComponent('istiod');
    const on = renderComponent('istiod', { nodeUntaint: true, istiodReplicas: 1 });
    const deployment = (objs: readonly { kind: string }[]) =>
      objs.find(o => o.kind === 'Deployment') as unknown as {
        spec: {
          replicas: number;
          template: {
            spec: {
              tolerations?: { key?: string; operator?: string }[];
              containers: { name: string; env: { name: string; value?: string }[] }[];
            };
          };
        };
      };
    const env = (objs: readonly { kind: string }[]) =>
      deployment(objs).spec.template.spec.containers.find(c => c.name === 'discovery')?.env ?? [];
    const rules = (objs: readonly { kind: string }[]) =>
      (
        objs.find(o => o.kind === 'ClusterRole') as unknown as {
          rules: { resources: string[]; verbs: string[] }[];
        }
      ).rules;
    expect(env(plain).some(e => e.name === 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS')).toBe(false);
    expect(rules(plain).some(r => r.resources.includes('nodes') && r.verbs.includes('patch'))).toBe(false);
    expect(env(on)).toContainEqual({ name: 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS', value: 'true' });
    expect(rules(on)).toContainEqual({ apiGroups: [''], resources: ['nodes'], verbs: ['patch'] });
    expect(deployment(on).spec.template.spec.tolerations).toContainEqual({
      key: 'cni.istio.io/not-ready',
      operator: 'Exists',
    });
    expect(deployment(on).spec.replicas).toBe(1);
    expect(renderComponent('cni-agent', { nodeUntaint: true })).toEqual(renderComponent('cni-agent'));
  });

  it('cniNamespace passes the CNI namespace to the untaint controller as --cniNamespace', () => {
    const args = (objs: readonly { kind: string }[]) =>
      (
        objs.find(o => o.kind === 'Deployment') as unknown as {
          spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } };
        }
      ).spec.template.spec.containers.find(c => c.name === 'discovery')?.args ?? [];
    expect(args(renderComponent('istiod', { nodeUntaint: true, cniNamespace: 'kube-system' }))).toContain(
      '--cniNamespace=kube-system',
    );
    expect(
      args(renderComponent('istiod', { nodeUntaint: true })).some(a => a.startsWith('--cniNamespace')),
    ).toBe(false);
    // Without the controller the namespace means nothing.
    expect(renderComponent('istiod', { cniNamespace: 'kube-system' })).toEqual(renderComponent('istiod'));
  });

  it('says what is wrong with a bad manifest or a missing folder', () => {
    const root = deployRoot({ 'ztunnel/z.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n' });
    expect(() => loadManifests('ztunnel', root)).toThrow(/lacks apiVersion, kind or metadata.name/);
    expect(() => loadManifests('istiod', root)).toThrow(
      expect.objectContaining({ code: 'INSTALL_MANIFESTS_MISSING' }),
    );
  });
});

describe("the operator's manifests", () => {
  it('render from deploy/operator: the sailoperator.io CRDs, then the operator in its own namespace', () => {
    const [crdSet, operatorSet] = OPERATOR_SETS;
    const crds = renderComponent(crdSet);
    expect(crds.map(o => o.metadata.name).sort()).toEqual([
      'istiocnis.sailoperator.io',
      'istiorevisions.sailoperator.io',
      'istiorevisiontags.sailoperator.io',
      'istios.sailoperator.io',
      'ztunnels.sailoperator.io',
    ]);
    const operator = renderComponent(operatorSet, {
      images: { 'ambient-mesh/operator': 'registry.local/op:2' },
    });
    const deployment = operator.find(o => o.kind === 'Deployment') as
      | {
          metadata: { namespace?: string };
          spec: { template: { spec: { containers: { image: string }[] } } };
        }
      | undefined;
    expect(deployment?.metadata.namespace).toBe('ambient-mesh-operator');
    expect(deployment?.spec.template.spec.containers[0]?.image).toBe('registry.local/op:2');
  });
});
