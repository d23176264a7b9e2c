import { KubeClient } from '@ambient-mesh/kube';
import { FakeApiServer } from '@ambient-mesh/kube/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IstioReconciler } from './istio-reconciler.ts';
import { readMeshReferences } from './mesh-references.ts';
import { TagReconciler } from './tag-reconciler.ts';
import { ISTIOS, putIstio } from './testing/sail.ts';

const REVISIONS = '/apis/sailoperator.io/v1/istiorevisions';
const TAGS = '/apis/sailoperator.io/v1/istiorevisiontags';
const MWCS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const SERVICES = '/api/v1/services';
const NAMESPACES = '/api/v1/namespaces';
const DEPLOYMENTS = '/apis/apps/v1/deployments';

interface Stored {
  metadata: {
    name: string;
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  spec: Record<string, unknown> & { selector?: Record<string, string> };
  status?: {
    state?: string;
    activeRevisionName?: string;
    istioRevision?: string;
    istiodNamespace?: string;
    conditions?: {
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastTransitionTime?: string;
    }[];
  };
}

describe('RevisionBased Istio and IstioRevisionTag against a fake apiserver', () => {
  let server: FakeApiServer;
  let now = new Date('2026-01-02T03:04:05Z');
  let istios: IstioReconciler;
  let tags: TagReconciler;
  let client: KubeClient;
  const get = (path: string, name: string, ns?: string): Stored | undefined =>
    server.get(path, name, ns) as unknown as Stored | undefined;
  const condition = (o: Stored | undefined, type: string) =>
    o?.status?.conditions?.find(c => c.type === type);

  beforeEach(async () => {
    server = await FakeApiServer.start();
    client = new KubeClient(server.kubeConfig());
    istios = new IstioReconciler({ client, now: () => now });
    tags = new TagReconciler({
      client,
      now: () => now,
      references: () => readMeshReferences(client),
    });
  });
  afterEach(async () => {
    await server.close();
  });

  const istio = (version: string): void => {
    putIstio(server, {
      version,
      updateStrategy: { type: 'RevisionBased', inactiveRevisionDeletionGracePeriodSeconds: 30 },
    });
  };
  const tag = (): void => {
    server.put(TAGS, {
      apiVersion: 'sailoperator.io/v1',
      kind: 'IstioRevisionTag',
      metadata: { name: 'default', uid: 'tag-uid', generation: 1 },
      spec: { targetRef: { kind: 'Istio', name: 'default' } },
    });
  };
  /** One round of the operator's reconciles, in the order its watches would queue them. */
  const revisions = async (): Promise<void> => {
    for (const r of (await client.list<Stored>(REVISIONS)).items)
      await istios.reconcileRevision(r.metadata.name);
  };
  const round = async (): Promise<void> => {
    await istios.reconcileIstio('default');
    await revisions();
    await tags.reconcile('default');
    await revisions();
    await istios.reconcileIstio('default');
  };

  it('a new version makes a second revision; the default tag moves to it with its Service; the old one is pruned only after InUse=False and the grace period', async () => {
    server.put(NAMESPACES, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'app', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    istio('v1.27.8');
    tag();
    await round();
    expect(get(ISTIOS, 'default')?.status?.activeRevisionName).toBe('default-v1-27-8');
    expect(get(DEPLOYMENTS, 'istiod-default-v1-27-8', 'istio-system')).toBeDefined();
    const t = get(TAGS, 'default');
    expect(t?.status).toMatchObject({ istioRevision: 'default-v1-27-8', istiodNamespace: 'istio-system' });
    expect(condition(t, 'Reconciled')?.status).toBe('True');
    expect(condition(t, 'InUse')).toMatchObject({ status: 'True', reason: 'ReferencedByWorkloads' });
    expect(get(MWCS, 'istio-revision-tag-default')?.metadata.labels).toMatchObject({
      'istio.io/tag': 'default',
      'istio.io/rev': 'default-v1-27-8',
    });
    expect(get(SERVICES, 'istiod', 'istio-system')?.spec.selector).toMatchObject({
      app: 'istiod',
      'istio.io/rev': 'default-v1-27-8',
    });
    expect(condition(get(REVISIONS, 'default-v1-27-8'), 'InUse')?.status).toBe('True');

    istio('v1.27.9');
    await round();
    expect(get(ISTIOS, 'default')?.status?.activeRevisionName).toBe('default-v1-27-9');
    expect(get(TAGS, 'default')?.status?.istioRevision).toBe('default-v1-27-9');
    expect(get(MWCS, 'istio-revision-tag-default')?.metadata.labels?.['istio.io/rev']).toBe(
      'default-v1-27-9',
    );
    expect(get(SERVICES, 'istiod', 'istio-system')?.spec.selector?.['istio.io/rev']).toBe('default-v1-27-9');
    expect(condition(get(REVISIONS, 'default-v1-27-9'), 'InUse')?.status).toBe('True');
    expect(condition(get(REVISIONS, 'default-v1-27-8'), 'InUse')?.status).toBe('False');
    // Within the grace period the old revision stays, and the Istio asks to look again.
    const waiting = await istios.reconcileIstio('default');
    expect(waiting).toMatchObject({ kind: 'reconciled' });
    expect((waiting as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
    expect(get(REVISIONS, 'default-v1-27-8')).toBeDefined();
    expect(get(ISTIOS, 'default')?.status).toMatchObject({ state: expect.any(String) });

    now = new Date(now.getTime() + 31_000);
    await istios.reconcileIstio('default');
    expect(get(REVISIONS, 'default-v1-27-8')).toBeUndefined();
  });

  it('a tag named like an existing revision is refused (NameAlreadyExists); a tag of a missing target is RefNotFound', async () => {
    tag();
    await tags.reconcile('default');
    expect(condition(get(TAGS, 'default'), 'Reconciled')).toMatchObject({
      status: 'False',
      reason: 'RefNotFound',
    });
    expect(get(TAGS, 'default')?.status?.state).toBe('RefNotFound');

    putIstio(server);
    await istios.reconcileIstio('default');
    await istios.reconcileRevision('default');
    await tags.reconcile('default');
    expect(condition(get(TAGS, 'default'), 'Reconciled')).toMatchObject({
      status: 'False',
      reason: 'NameAlreadyExists',
    });
    expect(get(MWCS, 'istio-revision-tag-default')).toBeUndefined();
    // Deleting the refused tag leaves the revision's own istiod Service alone.
    const live = get(TAGS, 'default');
    server.put(TAGS, {
      ...(live as object),
      metadata: { ...live?.metadata, deletionTimestamp: now.toISOString() },
    });
    expect(await tags.reconcile('default')).toEqual({ kind: 'uninstalled', deleted: 0 });
    expect(get(SERVICES, 'istiod', 'istio-system')).toBeDefined();
  });
});
