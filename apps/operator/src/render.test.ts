import { renderComponent } from '@ambient-mesh/install';
import { describe, expect, it } from 'vitest';
import { overrideImages, renderCni, renderIstiod, renderZtunnel } from './render.ts';

const owner = (name: string) => ({ metadata: { name, uid: `uid-${name}` } });

interface Rendered {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; uid: string }[];
  };
  spec?: {
    replicas?: number;
    template?: {
      spec?: {
        terminationGracePeriodSeconds?: number;
        containers?: { image?: string; env?: { name: string; value?: string }[] }[];
      };
    };
  };
}
const find = (objs: readonly unknown[], kind: string): Rendered => {
  const o = (objs as Rendered[]).find(x => x.kind === kind);
  if (o === undefined) throw new Error(`no ${kind}`);
  return o;
};
const env = (o: Rendered, name: string) =>
  o.spec?.template?.spec?.containers?.[0]?.env?.find(e => e.name === name)?.value;

describe('render', () => {
  it('ZTunnel: the install package’s DaemonSet in spec.namespace, owned, with values applied', () => {
    const objs = renderZtunnel(
      renderComponent('ztunnel'),
      { kind: 'ZTunnel', owner: owner('default'), namespace: 'ztunnel' },
      {
        global: { hub: 'registry.local/mesh', tag: '1.2.3' },
        ztunnel: { terminationGracePeriodSeconds: 60, logLevel: 'debug' },
      },
    );
    expect(objs.some(o => o.kind === 'Namespace')).toBe(false);
    const ds = find(objs, 'DaemonSet');
    expect(ds.metadata).toMatchObject({
      name: 'ztunnel',
      namespace: 'ztunnel',
      labels: { 'sailoperator.io/owner': 'ztunnel.default' },
    });
    expect(ds.metadata.ownerReferences).toMatchObject([{ kind: 'ZTunnel', uid: 'uid-default' }]);
    expect(ds.spec?.template?.spec?.containers?.[0]?.image).toBe('registry.local/mesh/ztunnel:1.2.3');
    expect(ds.spec?.template?.spec?.terminationGracePeriodSeconds).toBe(60);
    expect(env(ds, 'TERMINATION_GRACE_PERIOD_SECONDS')).toBe('60');
    expect(env(ds, 'RUST_LOG')).toBe('debug');
    expect(env(ds, 'XDS_ADDRESS')).toBe('https://istiod.istio-system.svc:15012');
  });

  it('IstioCNI: the istio-cni-node DaemonSet in spec.namespace with env from values', () => {
    const objs = renderCni(
      renderComponent('cni-agent'),
      { kind: 'IstioCNI', owner: owner('default'), namespace: 'istio-cni' },
      { cni: { env: { EXTRA: 'yes' } } },
    );
    const ds = find(objs, 'DaemonSet');
    expect(ds.metadata).toMatchObject({ name: 'istio-cni-node', namespace: 'istio-cni' });
    expect(env(ds, 'EXTRA')).toBe('yes');
    const binding = find(objs, 'ClusterRoleBinding') as unknown as { subjects: { namespace: string }[] };
    expect(binding.subjects.every(s => s.namespace === 'istio-cni')).toBe(true);
  });

  it("IstioRevision: a revisioned istiod gets suffixed names, istio.io/rev, the trusted ztunnel namespace and the waypoints' CA address", () => {
    const objs = renderIstiod(
      renderComponent('istiod'),
      {
        kind: 'IstioRevision',
        owner: owner('default-v1-27-9'),
        namespace: 'istio-system',
        revision: 'default-v1-27-9',
      },
      {
        revision: 'default-v1-27-9',
        global: { caAddress: 'cert-manager-istio-csr.cert-manager.svc:443' },
        pilot: { replicaCount: 2, trustedZtunnelNamespace: 'ztunnel' },
      },
    );
    const deploy = find(objs, 'Deployment');
    expect(deploy.metadata.name).toBe('istiod-default-v1-27-9');
    expect(deploy.metadata.labels?.['istio.io/rev']).toBe('default-v1-27-9');
    expect(deploy.spec?.replicas).toBe(2);
    expect(env(deploy, 'CA_TRUSTED_NODE_ACCOUNTS')).toBe('ztunnel/ztunnel');
    expect(env(deploy, 'REVISION')).toBe('default-v1-27-9');
    // global.caAddress: the CA of the waypoints this istiod deploys.
    expect(env(deploy, 'WAYPOINT_CA_ADDR')).toBe('cert-manager-istio-csr.cert-manager.svc:443');
    // Its pods, Deployment and Service belong to this revision only.
    const spec = deploy.spec as unknown as {
      selector: { matchLabels: Record<string, string> };
      template: { metadata: { labels: Record<string, string> } };
    };
    expect(spec.template.metadata.labels['istio.io/rev']).toBe('default-v1-27-9');
    expect(spec.selector.matchLabels['istio.io/rev']).toBe('default-v1-27-9');
    const svc = find(objs, 'Service') as unknown as {
      metadata: { name: string };
      spec: { selector: Record<string, string> };
    };
    expect(svc.metadata.name).toBe('istiod-default-v1-27-9');
    expect(svc.spec.selector['istio.io/rev']).toBe('default-v1-27-9');
    expect(find(objs, 'ConfigMap').metadata.name).toBe('istio-default-v1-27-9');
    // Each binding grants the revision's own (suffixed) role.
    const names = new Set(objs.map(o => `${o.kind}/${(o.metadata as { name: string }).name}`));
    const bindings = objs.filter(o => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) {
      const ref = (b as unknown as { roleRef: { kind: string; name: string } }).roleRef;
      expect(names.has(`${ref.kind}/${ref.name}`), `${b.kind} -> ${ref.kind}/${ref.name}`).toBe(true);
      expect(ref.name.endsWith('-default-v1-27-9')).toBe(true);
    }
    // The pods run as the revision's own ServiceAccount, the one its bindings name.
    const sa = find(objs, 'ServiceAccount').metadata.name;
    expect(sa).toBe('istiod-default-v1-27-9');
    expect(
      (deploy.spec as unknown as { template: { spec: { serviceAccountName: string } } }).template.spec
        .serviceAccountName,
    ).toBe(sa);
  });

  it('IstioRevision default: names as in deploy/', () => {
    const objs = renderIstiod(
      renderComponent('istiod'),
      { kind: 'IstioRevision', owner: owner('default'), namespace: 'istio-system' },
      {},
    );
    expect(find(objs, 'Deployment').metadata.name).toBe('istiod');
    expect(find(objs, 'Service').metadata.name).toBe('istiod');
  });

  it('spec.version is the images’ tag unless the values name one; the OPERATOR_IMAGES map wins over both', () => {
    const image = (objs: readonly unknown[]) =>
      find(objs, 'DaemonSet').spec?.template?.spec?.containers?.[0]?.image;
    const target = {
      kind: 'ZTunnel' as const,
      owner: owner('default'),
      namespace: 'ztunnel',
      version: 'v1.27.8',
    };
    expect(image(renderZtunnel(renderComponent('ztunnel'), target, {}))).toBe('ambient-mesh/ztunnel:v1.27.8');
    expect(image(renderZtunnel(renderComponent('ztunnel'), target, { ztunnel: { tag: 'dev' } }))).toBe(
      'ambient-mesh/ztunnel:dev',
    );
    const istiod = renderIstiod(
      renderComponent('istiod'),
      { kind: 'IstioRevision', owner: owner('default'), namespace: 'istio-system', version: 'v1.27.9' },
      {},
    );
    expect(find(istiod, 'Deployment').spec?.template?.spec?.containers?.[0]?.image).toBe(
      'ambient-mesh/istiod:v1.27.9',
    );
    const mapped = overrideImages(renderZtunnel(renderComponent('ztunnel'), target, {}), {
      'ambient-mesh/ztunnel': 'registry.local/zt:7',
    });
    expect(image(mapped)).toBe('registry.local/zt:7');
  });
});
