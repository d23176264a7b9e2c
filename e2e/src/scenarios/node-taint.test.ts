// Cluster tier: the `cni.istio.io/not-ready` node taint (docs/operations.md#node-not-ready-taint).
// The node registers with the taint (a kubelet's `--register-with-taints`) and the mesh is
// installed with istiod's node untaint controller on (upstream's `taint.enabled`): once the
// node's CNI agent is Ready, istiod removes the taint. Then the node's CNI agent is taken away (its DaemonSet is pointed at no node) and the node gets the
// taint, as a freshly provisioned node has it. An ambient pod created then is not scheduled
// (the scheduler reports the untolerated taint) while a pod tolerating the taint is. When the
// agent comes back and is Ready, istiod removes the taint (never before: the agent is Ready in
// every observation without it), and the held pod is scheduled, enrolled by the agent and Up in
// ztunnel.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { KubeList } from '@ambient-mesh/kube';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ztunnelConfigDump, ztunnelPods } from '../mesh/observe.ts';
import { isPodReady, jsonLines, podLog, redirection, workloadState } from './cni-observe.ts';

const NODE = 'node-0';
const TAINT = 'cni.istio.io/not-ready';
const APP_NS = 'taint-app';
const PLAIN_NS = 'taint-plain';
const AGENT_SELECTOR = 'k8s-app=istio-cni-node';
const DAEMONSET = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets/istio-cni-node`;
/** A node label no node has: the DaemonSet's pods go away while it selects on it. */
const PARK_LABEL = 'ambient-mesh.io/taint-test-park';

let cluster: Cluster;
const started = Date.now();

const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/pods/${name}`;
const getPod = (ns: string, name: string): Promise<V1Pod> => cluster.client.get<V1Pod>(podPath(ns, name));
const getNode = (): Promise<V1Node> => cluster.client.get<V1Node>(`/api/v1/nodes/${NODE}`);
const tainted = (n: V1Node): boolean => (n.spec?.taints ?? []).some(t => t.key === TAINT);

async function agentPods(): Promise<V1Pod[]> {
  const list = await cluster.client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: AGENT_SELECTOR,
  });
  return list.items.filter(p => p.spec?.nodeName === NODE);
}

async function createNamespace(name: string, ambient: boolean): Promise<void> {
  await cluster.client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
  });
}

/** An echo server pod left to the scheduler (no nodeName). */
async function createServer(ns: string, name: string, tolerate: boolean): Promise<void> {
  await cluster.client.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(tolerate ? { tolerations: [{ key: TAINT, operator: 'Exists', effect: 'NoSchedule' }] } : {}),
      containers: [
        {
          name: 'echo',
          image: 'ambient-mesh/echo:0.1.0',
          env: [{ name: 'PORT', value: '8080' }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
    },
  });
}

/** istiod's log lines about removing the taint from the node, across its replicas. */
async function removalLines(): Promise<Record<string, unknown>[]> {
  const istiods = await cluster.client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: 'app=istiod',
  });
  const out: Record<string, unknown>[] = [];
  for (const p of istiods.items) {
    out.push(
      ...jsonLines(await podLog(cluster.client, MESH_NAMESPACE, p.metadata!.name!)).filter(
        l => l.node === NODE && String(l.msg).includes('removed the not-ready taint'),
      ),
    );
  }
  return out;
}

function scheduledCondition(
  p: V1Pod,
): { status?: string; reason?: string; message?: string; lastTransitionTime?: Date | string } | undefined {
  return p.status?.conditions?.find(c => c.type === 'PodScheduled');
}

describe('cni.istio.io/not-ready taint: pods wait for the CNI agent', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({
      name: 'taint',
      slot: 113,
      nodes: 1,
      nodeUntaint: true,
      nodeTaints: [{ key: TAINT, value: 'true', effect: 'NoSchedule' }],
    }));
    console.log(`[node-taint] setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
    console.log(`[node-taint] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('holds back an untolerating pod while the node has no Ready agent; istiod removes the taint once the agent is Ready, and the pod is captured', async () => {
    // The node registered tainted; istiod removed the taint once the agent there was Ready.
    const [agent] = await agentPods();
    expect(agent, `a cni-agent pod on ${NODE}`).toBeDefined();
    const first = await waitFor(
      "istiod's removal of the taint the node registered with",
      async () => {
        const lines = await removalLines();
        return lines.length > 0 && !tainted(await getNode()) ? lines : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(first).toHaveLength(1);

    // The node loses its agent, as a node that is still being provisioned has none yet.
    await cluster.client.mergePatch(DAEMONSET, {
      spec: { template: { spec: { nodeSelector: { [PARK_LABEL]: 'true' } } } },
    });
    await waitFor(
      'the cni-agent pod gone from the node',
      async () => ((await agentPods()).length === 0 ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    // Conditional on the version read; a conflict (the kubelet's status heartbeat) is retried.
    await waitFor(
      'the node tainted',
      async () => {
        const node = await getNode();
        await cluster.client.mergePatch(`/api/v1/nodes/${NODE}`, {
          metadata: { resourceVersion: node.metadata!.resourceVersion! },
          spec: {
            taints: [...(node.spec?.taints ?? []), { key: TAINT, value: 'true', effect: 'NoSchedule' }],
          },
        });
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    await createNamespace(APP_NS, true);
    await createNamespace(PLAIN_NS, false);
    await createServer(APP_NS, 'held', false);
    await createServer(PLAIN_NS, 'tolerating', true);

    // The scheduler holds the untolerating pod back, naming the taint; the tolerating one goes.
    const unschedulable = await waitFor(
      'the scheduler to report the held pod Unschedulable',
      async () => {
        const p = await getPod(APP_NS, 'held');
        const c = scheduledCondition(p);
        return c?.status === 'False' && c.reason === 'Unschedulable' ? { pod: p, condition: c } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    expect(unschedulable.pod.spec?.nodeName ?? '').toBe('');
    expect(unschedulable.condition.message ?? '').toContain(TAINT);
    const tolerating = await waitFor(
      'the tolerating pod scheduled',
      async () => {
        const p = await getPod(PLAIN_NS, 'tolerating');
        return (p.spec?.nodeName ?? '') !== '' ? p : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    expect(tolerating.spec?.nodeName).toBe(NODE);
    await cluster.client.delete(podPath(PLAIN_NS, 'tolerating'), { gracePeriodSeconds: 0 });

    // Without an agent nothing removes the taint, and the held pod stays unscheduled.
    expect(tainted(await getNode())).toBe(true);
    expect((await getPod(APP_NS, 'held')).spec?.nodeName ?? '').toBe('');

    // The agent comes back. Every observation reads the node first, then the agent: when the
    // taint is gone, the agent had become Ready before.
    const observations: { tainted: boolean; agentReady: boolean }[] = [];
    await cluster.client.mergePatch(DAEMONSET, {
      spec: { template: { spec: { nodeSelector: { [PARK_LABEL]: null } } } },
    });
    const backAt = Date.now();
    await waitFor(
      'istiod to remove the taint',
      async () => {
        const isTainted = tainted(await getNode());
        const agentReady = (await agentPods()).some(
          p => isPodReady(p) && p.metadata?.deletionTimestamp === undefined,
        );
        observations.push({ tainted: isTainted, agentReady });
        return isTainted ? undefined : true;
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
    const untaintedAfterS = (Date.now() - backAt) / 1000;
    const early = observations.filter(o => !o.tainted && !o.agentReady);
    expect(early, 'observations of an untainted node without a Ready agent').toEqual([]);
    expect(
      observations.some(o => o.tainted),
      'the taint was seen before the agent was Ready',
    ).toBe(true);

    // It was istiod's untaint controller, and the held pod now lands on the node and is enrolled.
    const removed = await waitFor(
      "istiod's log of the second removal",
      async () => {
        const lines = await removalLines();
        return lines.length >= 2 ? lines : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(removed.every(l => l.taint === TAINT)).toBe(true);

    const held = await waitFor(
      'the held pod scheduled, Ready, enrolled and Up in ztunnel',
      async () => {
        const p = await getPod(APP_NS, 'held');
        if (p.spec?.nodeName !== NODE || !isPodReady(p) || redirection(p) !== 'enabled') return undefined;
        const z = (await ztunnelPods(cluster.client, cluster.layout)).find(x => x.node === NODE);
        if (z === undefined) return undefined;
        return workloadState(await ztunnelConfigDump(z)).get(p.metadata?.uid ?? '') === 'Up' ? p : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    const scheduledAt = String(scheduledCondition(held)?.lastTransitionTime ?? '?');
    console.log(
      `[node-taint] taint removed ${untaintedAfterS.toFixed(1)} s after the agent was let back ` +
        `(${observations.length} observations); held pod scheduled at ${scheduledAt}, ` +
        `enrolled (${redirection(held)}) and Up in ztunnel`,
    );
  }, 900_000);
});
