import { KubeClient } from '@ambient-mesh/kube';
import { FakeApiServer } from '@ambient-mesh/kube/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ComponentReconciler } from './component-reconciler.ts';

const ZTUNNELS = '/apis/sailoperator.io/v1/ztunnels';
const CNIS = '/apis/sailoperator.io/v1/istiocnis';
const DAEMONSETS = '/apis/apps/v1/daemonsets';
const NOW = new Date('2026-01-02T03:04:05Z');

describe('ComponentReconciler against a fake apiserver', () => {
  let server: FakeApiServer;
  let reconciler: ComponentReconciler;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    reconciler = new ComponentReconciler({ client: new KubeClient(server.kubeConfig()), now: () => NOW });
  });
  afterEach(async () => {
    await server.close();
  });

  it('ZTunnel: applies the owned DaemonSet, adds the finalizer, reports Ready when the pods are', async () => {
    server.put(ZTUNNELS, {
      apiVersion: 'sailoperator.io/v1',
      kind: 'ZTunnel',
      metadata: { name: 'default', uid: 'zt-uid', generation: 2 },
      spec: {
        namespace: 'ztunnel',
        version: 'v1.27.9',
        values: { ztunnel: { terminationGracePeriodSeconds: 45 } },
      },
    });
    const generation = server.get(ZTUNNELS, 'default')?.metadata.generation;
    const first = await reconciler.reconcile('ZTunnel', 'default');
    expect(first).toMatchObject({
      kind: 'reconciled',
      status: { observedGeneration: generation, state: 'DaemonSetNotReady' },
    });

    const ds = server.get(DAEMONSETS, 'ztunnel', 'ztunnel') as unknown as {
      metadata: { ownerReferences: { uid: string }[] };
      spec: { template: { spec: { terminationGracePeriodSeconds: number } } };
    };
    expect(ds.metadata.ownerReferences[0]?.uid).toBe('zt-uid');
    expect(ds.spec.template.spec.terminationGracePeriodSeconds).toBe(45);
    expect(
      (server.get(ZTUNNELS, 'default')?.metadata as { finalizers?: string[] } | undefined)?.finalizers,
    ).toEqual(['sailoperator.io/ambient-mesh-operator']);

    server.put(DAEMONSETS, {
      ...(ds as unknown as { metadata: { name: string } }),
      status: { desiredNumberScheduled: 2, numberReady: 2 },
    });
    const second = await reconciler.reconcile('ZTunnel', 'default');
    expect(second).toMatchObject({ kind: 'reconciled', status: { state: 'Healthy' } });
    const stored = server.get(ZTUNNELS, 'default') as unknown as {
      status: { conditions: { type: string; status: string; reason: string }[] };
    };
    expect(stored.status.conditions.map(c => [c.type, c.status, c.reason])).toEqual([
      ['Reconciled', 'True', 'Healthy'],
      ['Ready', 'True', 'Healthy'],
    ]);
  });

  it('IstioCNI with an unknown values field: Reconciled=False InvalidValues naming it, nothing applied', async () => {
    server.put(CNIS, {
      apiVersion: 'sailoperator.io/v1',
      kind: 'IstioCNI',
      metadata: { name: 'default', uid: 'cni-uid', generation: 1 },
      spec: { namespace: 'istio-cni', version: 'v1.27.9', values: { cni: { ambient: { enabld: true } } } },
    });
    const result = await reconciler.reconcile('IstioCNI', 'default');
    expect(result).toMatchObject({ kind: 'reconciled', applied: 0, status: { state: 'InvalidValues' } });
    const stored = server.get(CNIS, 'default') as unknown as {
      status: { conditions: { type: string; message?: string }[] };
    };
    expect(stored.status.conditions.find(c => c.type === 'Reconciled')?.message).toContain(
      'spec.values.cni.ambient.enabld',
    );
    expect(server.get(DAEMONSETS, 'istio-cni-node', 'istio-cni')).toBeUndefined();
  });

  it('a CR being deleted: deletes what it owns and releases the finalizer', async () => {
    server.put(ZTUNNELS, {
      apiVersion: 'sailoperator.io/v1',
      kind: 'ZTunnel',
      metadata: { name: 'default', uid: 'zt-uid', generation: 1 },
      spec: { namespace: 'ztunnel', version: 'v1.27.9' },
    });
    await reconciler.reconcile('ZTunnel', 'default');
    expect(server.get(DAEMONSETS, 'ztunnel', 'ztunnel')).toBeDefined();
    const live = server.get(ZTUNNELS, 'default');
    server.put(ZTUNNELS, {
      ...(live as never as object),
      metadata: { ...live?.metadata, deletionTimestamp: NOW.toISOString() },
    });
    const result = await reconciler.reconcile('ZTunnel', 'default');
    expect(result).toMatchObject({ kind: 'uninstalled' });
    expect(server.get(DAEMONSETS, 'ztunnel', 'ztunnel')).toBeUndefined();
    expect(
      (server.get(ZTUNNELS, 'default')?.metadata as { finalizers?: string[] } | undefined)?.finalizers,
    ).toEqual([]);
  });

  it('a CR that is gone is a no-op', async () => {
    expect(await reconciler.reconcile('ZTunnel', 'default')).toEqual({ kind: 'gone' });
  });
});
