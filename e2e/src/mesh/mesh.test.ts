// Cluster tier: the mesh's manifests on a real local cluster (own name and slot, so it cannot
// clash with the other cluster tests).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { nodeLayout, podNetnsName } from '../layout.ts';
import { nodeCniBinDir, nodeConflistPath, nodeHostRoot } from '../kubelet/node-cni.ts';
import { installMesh, uninstallMesh, type MeshStatus } from './install.ts';
import { MESH_COMPONENTS, loadManifests } from '@ambient-mesh/install';

const APP_NS = 'mesh-demo';
let cluster: Cluster;
let status: MeshStatus;

describe('the mesh on the local cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'meshe2e',
      slot: 7,
      nodes: 2,
      progress: l => {
        console.log(`[cluster] ${l}`);
      },
    });
    status = await installMesh(cluster, {
      ztunnelTimeoutMs: 20_000,
      progress: l => {
        console.log(`[mesh] ${l}`);
      },
    });
    console.log(`[mesh] ${JSON.stringify(status)}`);
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('installs istiod Ready and the cni-agent Ready on both nodes, with the plugin chained on each node', async () => {
    expect(status.components.find(c => c.name === 'istiod')?.ready).toBe(true);
    expect(status.components.find(c => c.name === 'cni-agent')?.ready).toBe(true);
    for (const [i] of cluster.nodes.entries()) {
      const root = nodeHostRoot(nodeLayout(cluster.layout, i).stateDir);
      const conf = JSON.parse(readFileSync(nodeConflistPath(root, cluster.layout.name), 'utf8')) as {
        plugins: { type: string }[];
      };
      expect(conf.plugins.map(p => p.type)).toEqual(['bridge', 'ambient-istio-cni']);
      expect(existsSync(`${nodeCniBinDir(root)}/ambient-istio-cni`)).toBe(true);
    }
    const pods = await cluster.client.get<{ items: V1Pod[] }>('/api/v1/namespaces/istio-system/pods', {
      labelSelector: 'k8s-app=istio-cni-node',
    });
    expect(new Set(pods.items.map(p => p.spec?.nodeName))).toEqual(new Set(['node-0', 'node-1']));
  });

  it('enrols a pod of a namespace labelled ambient: redirection annotation and nft tables in its netns', async () => {
    await cluster.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: APP_NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    await cluster.client.create(`/api/v1/namespaces/${APP_NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'echo', namespace: APP_NS, labels: { app: 'echo' } },
      spec: {
        nodeName: 'node-1',
        terminationGracePeriodSeconds: 2,
        containers: [{ name: 'echo', image: 'ambient-mesh/echo:0.1.0', ports: [{ containerPort: 8080 }] }],
      },
    });
    const pod = await waitFor(
      'the redirection annotation',
      async () => {
        const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${APP_NS}/pods/echo`);
        const a = p.metadata?.annotations?.['ambient.istio.io/redirection'];
        return a === 'enabled' || a === 'pending' ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const netns = podNetnsName(cluster.layout, pod.metadata!.uid!);
    const tables = await runCommand(['ip', 'netns', 'exec', netns, 'nft', 'list', 'tables']);
    expect(tables.stdout.trim()).not.toBe('');
    await cluster.client.delete(`/api/v1/namespaces/${APP_NS}`);
    await waitFor(
      `namespace ${APP_NS} gone`,
      async () =>
        (await cluster.client.find(`/api/v1/namespaces/${APP_NS}`)) === undefined ? true : undefined,
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }, 180_000);

  it('uninstall leaves no mesh object, pod, ConfigMap or chained plugin behind', async () => {
    await uninstallMesh(cluster);
    for (const component of MESH_COMPONENTS) {
      for (const o of loadManifests(component)) {
        expect(
          await cluster.client.find(await cluster.client.resources.objectPath(o)),
          `${o.kind} ${o.metadata.name}`,
        ).toBeUndefined();
      }
    }
    const cms = await cluster.client.get<{ items: unknown[] }>('/api/v1/configmaps', {
      fieldSelector: 'metadata.name=istio-ca-root-cert',
    });
    expect(cms.items).toEqual([]);
    for (const [i] of cluster.nodes.entries()) {
      const root = nodeHostRoot(nodeLayout(cluster.layout, i).stateDir);
      const conf = JSON.parse(readFileSync(nodeConflistPath(root, cluster.layout.name), 'utf8')) as {
        plugins: { type: string }[];
      };
      expect(conf.plugins.map(p => p.type)).toEqual(['bridge']);
      expect(existsSync(`${nodeCniBinDir(root)}/ambient-istio-cni`)).toBe(false);
    }
  }, 240_000);
});
