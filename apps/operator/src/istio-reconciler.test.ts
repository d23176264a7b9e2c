import { KubeClient } from '@ambient-mesh/kube';
import { FakeApiServer } from '@ambient-mesh/kube/testing';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IstioReconciler, meshConfigDocument } from './istio-reconciler.ts';
import { ISTIOS, putIstio } from './testing/sail.ts';

const REVISIONS = '/apis/sailoperator.io/v1/istiorevisions';
const DEPLOYMENTS = '/apis/apps/v1/deployments';
const CONFIGMAPS = '/api/v1/configmaps';
const NAMESPACES = '/api/v1/namespaces';
const NOW = new Date('2026-01-02T03:04:05Z');

interface Stored {
  metadata: { name: string; generation?: number; finalizers?: string[]; ownerReferences?: { uid: string }[] };
  spec: Record<string, unknown> & { replicas?: number; values?: Record<string, unknown> };
  status?: {
    state?: string;
    activeRevisionName?: string;
    revisions?: unknown;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  data?: Record<string, string>;
}

describe('IstioReconciler against a fake apiserver', () => {
  let server: FakeApiServer;
  let reconciler: IstioReconciler;
  const get = (path: string, name: string, ns?: string): Stored | undefined =>
    server.get(path, name, ns) as unknown as Stored | undefined;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    reconciler = new IstioReconciler({ client: new KubeClient(server.kubeConfig()), now: () => NOW });
  });
  afterEach(async () => {
    await server.close();
  });

  const istio = (values?: Record<string, unknown>): void => {
    putIstio(server, values === undefined ? {} : { values });
  };

  it('Istio → the IstioRevision default → istiod with the mesh config; Ready follows the Deployment; InUse follows ambient namespaces', async () => {
    istio({ meshConfig: { accessLogFile: '/dev/stdout' }, pilot: { replicaCount: 1 } });
    const first = await reconciler.reconcileIstio('default');
    expect(first).toMatchObject({
      kind: 'reconciled',
      status: { state: 'IstiodNotReady', activeRevisionName: 'default' },
    });
    const rev = get(REVISIONS, 'default');
    expect(rev?.metadata.ownerReferences?.[0]?.uid).toBe('istio-uid');
    expect(rev?.spec).toMatchObject({
      namespace: 'istio-system',
      version: 'v1.27.9',
      values: { profile: 'ambient', revision: '', global: { istioNamespace: 'istio-system' } },
    });
    const revUid = (rev?.metadata as { uid?: string } | undefined)?.uid;
    expect(revUid).toBeDefined();

    const second = await reconciler.reconcileRevision('default');
    expect(second).toMatchObject({ kind: 'reconciled', status: { state: 'IstiodNotReady' } });
    const deployment = get(DEPLOYMENTS, 'istiod', 'istio-system');
    expect(deployment?.spec.replicas).toBe(1);
    expect(deployment?.metadata.ownerReferences?.[0]?.uid).toBe(revUid);
    const mesh = parse(get(CONFIGMAPS, 'istio', 'istio-system')?.data?.mesh ?? '') as Record<string, unknown>;
    expect(mesh).toMatchObject({
      rootNamespace: 'istio-system',
      accessLogFile: '/dev/stdout',
      defaultConfig: { discoveryAddress: 'istiod.istio-system.svc:15012' },
    });
    expect(get(REVISIONS, 'default')?.status?.conditions?.find(c => c.type === 'InUse')).toMatchObject({
      status: 'False',
      reason: 'NotReferencedByAnything',
    });

    server.put(DEPLOYMENTS, { ...(deployment as object), status: { replicas: 1, readyReplicas: 1 } });
    server.put(NAMESPACES, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'app', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    expect(await reconciler.reconcileRevision('default')).toMatchObject({ status: { state: 'Healthy' } });
    expect(get(REVISIONS, 'default')?.status?.conditions?.find(c => c.type === 'InUse')).toMatchObject({
      status: 'True',
      reason: 'ReferencedByWorkloads',
    });
    const third = await reconciler.reconcileIstio('default');
    expect(third).toMatchObject({
      status: { state: 'Healthy', revisions: { total: 1, ready: 1, inUse: 1 } },
    });
  });

  it('pilot.taint.enabled runs istiod with its node untaint controller and the toleration for its taint', async () => {
    istio({ pilot: { taint: { enabled: true } } });
    await reconciler.reconcileIstio('default');
    await reconciler.reconcileRevision('default');
    const spec = (
      get(DEPLOYMENTS, 'istiod', 'istio-system') as unknown as {
        spec: {
          template: {
            spec: { tolerations?: unknown[]; containers: { env?: { name: string; value?: string }[] }[] };
          };
        };
      }
    ).spec.template.spec;
    expect(spec.containers[0]?.env).toContainEqual({
      name: 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS',
      value: 'true',
    });
    expect(spec.tolerations).toContainEqual({ key: 'cni.istio.io/not-ready', operator: 'Exists' });
  });

  it('pilot.taint.namespace passes the CNI namespace to istiod as --cniNamespace', async () => {
    istio({ pilot: { taint: { enabled: true, namespace: 'kube-system' } } });
    await reconciler.reconcileIstio('default');
    await reconciler.reconcileRevision('default');
    const container = (
      get(DEPLOYMENTS, 'istiod', 'istio-system') as unknown as {
        spec: { template: { spec: { containers: { args?: string[] }[] } } };
      }
    ).spec.template.spec.containers[0];
    expect(container?.args).toContain('--cniNamespace=kube-system');
  });

  it('an unknown values field: InvalidValues naming the path, and no revision is written', async () => {
    istio({ pilot: { replicaCont: 2 } });
    const result = await reconciler.reconcileIstio('default');
    expect(result).toMatchObject({ kind: 'reconciled', applied: 0, status: { state: 'InvalidValues' } });
    const reconciled = get(ISTIOS, 'default')?.status?.conditions?.find(c => c.type === 'Reconciled');
    expect(reconciled).toMatchObject({ status: 'False', reason: 'InvalidValues' });
    expect(reconciled?.message).toContain('spec.values.pilot.replicaCont: unknown field');
    expect(get(REVISIONS, 'default')).toBeUndefined();
  });

  it('a deleted Istio deletes its revisions and releases its finalizer; a deleted revision deletes istiod', async () => {
    istio();
    await reconciler.reconcileIstio('default');
    await reconciler.reconcileRevision('default');
    expect(get(DEPLOYMENTS, 'istiod', 'istio-system')).toBeDefined();

    const live = get(ISTIOS, 'default');
    server.put(ISTIOS, {
      ...(live as object),
      metadata: { ...live?.metadata, deletionTimestamp: NOW.toISOString() },
    });
    expect(await reconciler.reconcileIstio('default')).toEqual({ kind: 'uninstalled', deleted: 1 });
    expect(get(ISTIOS, 'default')?.metadata.finalizers).toEqual([]);
  });

  it('meshConfigDocument moves the manifest’s mesh config to the namespace and merges meshConfig over it', () => {
    const doc = meshConfigDocument(
      'rootNamespace: istio-system\ntrustDomain: cluster.local\n',
      'mesh',
      'istiod-canary',
      {
        trustDomain: 'example.org',
        discoverySelectors: [{ matchLabels: { mesh: 'on' } }],
      },
    );
    expect(parse(doc)).toEqual({
      rootNamespace: 'mesh',
      trustDomain: 'example.org',
      defaultConfig: { discoveryAddress: 'istiod-canary.mesh.svc:15012' },
      discoverySelectors: [{ matchLabels: { mesh: 'on' } }],
    });
  });
});
