import { KubeClient } from '@ambient-mesh/kube';
import { FakeApiServer, ManualTimers, until } from '@ambient-mesh/kube/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INSTALL_FIELD_MANAGER, installMesh } from './install.ts';
import { MESH_COMPONENTS, loadManifests } from './manifests.ts';
import { meshStatus } from './status.ts';
import { waitUntil } from './wait.ts';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const PODS = '/api/v1/pods';

const readyPod = (name: string, labels: Record<string, string>, node: string, ready = true) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'istio-system', labels },
  spec: { nodeName: node },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

describe('installMesh against an apiserver on loopback', () => {
  let server: FakeApiServer;
  let client: KubeClient;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    client = new KubeClient(server.kubeConfig());
    // The apiserver establishes CRDs and the kubelets run the pods; here they already are.
    for (const crd of loadManifests('crds')) {
      server.put(CRDS, { ...crd, status: { conditions: [{ type: 'Established', status: 'True' }] } });
    }
  });

  afterEach(async () => {
    await server.close();
  });

  it('server-side applies every object as the installer and reports a ready mesh', async () => {
    server.put(PODS, readyPod('istiod-1', { app: 'istiod' }, 'n1'));
    for (const n of ['n1', 'n2']) {
      server.put(PODS, readyPod(`cni-${n}`, { 'k8s-app': 'istio-cni-node' }, n));
      server.put(PODS, readyPod(`ztunnel-${n}`, { app: 'ztunnel' }, n, n === 'n1'));
    }
    const lines: string[] = [];
    const status = await installMesh(
      { client, nodes: [{ name: 'n1' }, { name: 'n2' }] },
      { progress: l => lines.push(l), ztunnelTimeoutMs: 0, intervalMs: 1 },
    );
    const applies = server.requests.filter(r => r.contentType === 'application/apply-patch+yaml');
    const objects = MESH_COMPONENTS.flatMap(c => loadManifests(c));
    expect(applies).toHaveLength(objects.length);
    expect(
      applies.every(r => r.query.fieldManager === INSTALL_FIELD_MANAGER && r.query.force === 'true'),
    ).toBe(true);
    expect(applies.map(r => r.path)).toContain('/apis/apps/v1/namespaces/istio-system/daemonsets/ztunnel');
    expect(lines[0]).toBe(`apply crds (${loadManifests('crds').length} objects)`);
    expect(lines).toContain('waiting for the cni-agent Ready on 2 nodes');
    expect(status.components.map(c => [c.name, c.ready])).toEqual([
      ['istiod', true],
      ['cni-agent', true],
      ['ztunnel', false],
    ]);
    expect(status.components[2]?.detail).toMatch(/^1\/2 ready; .*n2: Running/);
  });

  it('counts the nodes of the cluster when none are given', async () => {
    server.put('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'only' } });
    server.put(PODS, readyPod('istiod-1', { app: 'istiod' }, 'only'));
    const status = await meshStatus({ client });
    expect(status.components.map(c => c.detail.split(';')[0])).toEqual([
      '1/1 ready',
      '0/1 ready',
      '0/1 ready',
    ]);
  });

  it('reports progress during a long wait and times out saying why', async () => {
    const timers = new ManualTimers();
    const lines: string[] = [];
    const waiting = waitUntil(
      'istiod Ready',
      () => Promise.resolve(undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 5_000,
        progressEveryMs: 10_000,
        timers,
        onProgress: l => lines.push(l),
      },
      () => Promise.resolve('istiod: 0/1 ready; n1: ImagePullBackOff'),
    );
    const failed = waiting.catch((e: unknown) => e);
    for (let i = 0; i < 6; i++) {
      await until('a pending poll', () => timers.pending === 1);
      timers.fire();
    }
    expect(lines).toEqual([
      'still waiting for istiod Ready (10 s): istiod: 0/1 ready; n1: ImagePullBackOff',
      'still waiting for istiod Ready (20 s): istiod: 0/1 ready; n1: ImagePullBackOff',
    ]);
    expect(await failed).toMatchObject({
      code: 'INSTALL_TIMEOUT',
      message: 'istiod Ready: not done after 30 s; istiod: 0/1 ready; n1: ImagePullBackOff',
    });
  });
});
