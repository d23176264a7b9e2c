// Cluster tier: the cni-agent on a 2-node local cluster (own name and slot, so it never clashes
// with the other cluster tests). One cluster and one mesh install are shared by the whole file.
//
// What is asserted is observable state: the nftables ruleset inside the pod's netns, the pod's
// `ambient.istio.io/redirection` annotation, ztunnel's in-pod state (`/config_dump`
// `workloadState`) and metrics, and the agent's own log.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import type { KubeList } from '@ambient-mesh/kube';
import { podNetnsName } from '../layout.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods, type ZtunnelPod } from '../mesh/observe.ts';
import {
  ambientTables,
  isPodReady,
  jsonLines,
  podLog,
  podRuleset,
  redirection,
  ruleCount,
  workloadState,
} from './cni-observe.ts';

const AMBIENT_TABLES = ['istio-ambient-mangle', 'istio-ambient-nat'];
const DATAPLANE_MODE = 'istio.io/dataplane-mode';
const AGENT_SELECTOR = 'k8s-app=istio-cni-node';
let cluster: Cluster;
const started = Date.now();

interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}

function info(p: V1Pod): PodInfo {
  return {
    name: p.metadata?.name ?? '',
    namespace: p.metadata?.namespace ?? '',
    uid: p.metadata?.uid ?? '',
    ip: p.status?.podIP ?? '',
    netns: podNetnsName(cluster.layout, p.metadata?.uid ?? ''),
    node: p.spec?.nodeName ?? '',
  };
}

const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/pods/${name}`;
const getPod = (ns: string, name: string): Promise<V1Pod> => cluster.client.get<V1Pod>(podPath(ns, name));

async function createNamespace(name: string, ambient: boolean): Promise<void> {
  await cluster.client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: ambient ? { [DATAPLANE_MODE]: 'ambient' } : {} },
  });
}

/** An idle pod (the echo image on a side port) or an echo server on 8080. */
async function createEcho(ns: string, name: string, node: string, port = 8080): Promise<void> {
  await cluster.client.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'echo',
          image: 'ambient-mesh/echo:0.1.0',
          env: [{ name: 'PORT', value: String(port) }],
          // Ready once it listens, so a test never races the server's start.
          readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
        },
      ],
    },
  });
}

async function running(ns: string, name: string): Promise<PodInfo> {
  return waitFor(
    `pod ${ns}/${name} Ready`,
    async () => {
      const p = await getPod(ns, name);
      return isPodReady(p) && p.status?.podIP !== undefined ? info(p) : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}

async function ztunnelOn(node: string): Promise<ZtunnelPod> {
  return waitFor(
    `the ztunnel pod on ${node}`,
    async () => (await ztunnelPods(cluster.client, cluster.layout)).find(z => z.node === node),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

async function ztunnelState(node: string): Promise<Map<string, string>> {
  return workloadState(await ztunnelConfigDump(await ztunnelOn(node)));
}

async function agentPods(node: string): Promise<V1Pod[]> {
  const list = await cluster.client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: AGENT_SELECTOR,
  });
  return list.items.filter(p => p.spec?.nodeName === node);
}

/** An HTTP GET from inside a pod's netns; the HTTP code (0 when the connection failed). */
async function get(from: PodInfo, url: string): Promise<number> {
  const r = await runCommand(
    ['ip', 'netns', 'exec', from.netns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}'].concat([
      '--max-time',
      '5',
      '-H',
      'Connection: close',
      url,
    ]),
    { allowFailure: true },
  );
  return Number(r.stdout.trim() || '0');
}

/** Deletes the cni-agent pod of `node` and waits for the DaemonSet's new one to be Ready. */
async function restartAgent(
  node: string,
  during: () => Promise<void> = () => Promise.resolve(),
): Promise<V1Pod> {
  const [old] = await agentPods(node);
  if (old === undefined) throw new Error(`no cni-agent pod on ${node}`);
  const oldUid = old.metadata?.uid ?? '';
  await cluster.client.delete(podPath(MESH_NAMESPACE, old.metadata?.name ?? ''));
  return waitFor(
    `a new cni-agent pod Ready on ${node}`,
    async () => {
      await during();
      return (await agentPods(node)).find(p => p.metadata?.uid !== oldUid && isPodReady(p));
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}

/** The agent's JSON log lines about one pod (`pod: ns/name`). */
async function agentLogAbout(agent: V1Pod, pod: string): Promise<Record<string, unknown>[]> {
  return jsonLines(await podLog(cluster.client, MESH_NAMESPACE, agent.metadata?.name ?? '')).filter(
    l => l.pod === pod,
  );
}

/**
 * Removes the name of a pod's netns (`ip netns delete`); the pod's processes keep the namespace
 * itself alive, so `restore()` names it again from one of them (`ip netns attach`).
 */
async function vanishNetns(p: PodInfo): Promise<{ restore: () => Promise<void> }> {
  const pids = await runCommand(['ip', 'netns', 'pids', p.netns]);
  const pid = pids.stdout
    .split('\n')
    .find(l => /^\d+$/.test(l.trim()))
    ?.trim();
  if (pid === undefined) throw new Error(`no process in ${p.netns}`);
  await runCommand(['ip', 'netns', 'delete', p.netns]);
  let restored = false;
  return {
    restore: async () => {
      if (restored) return;
      restored = true;
      await runCommand(['ip', 'netns', 'attach', p.netns, pid]);
    },
  };
}

describe('the cni-agent on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'cniscen', slot: 12, nodes: 2 }));
    console.log(`[cni-scenarios] setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(async () => {
    // The agents' warnings and errors, for whoever reads a failed run.
    for (const node of ['node-0', 'node-1']) {
      for (const agent of await agentPods(node).catch(() => [])) {
        const lines = jsonLines(await podLog(cluster.client, MESH_NAMESPACE, agent.metadata?.name ?? ''));
        const bad = lines.filter(l => l.level === 'warn' || l.level === 'error');
        console.log(`[cni-scenarios] ${node} agent warnings:\n${bad.map(l => JSON.stringify(l)).join('\n')}`);
      }
    }
    await cluster.stop();
    console.log(`[cni-scenarios] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('labelling a namespace ambient enrols its running pods; removing the label un-enrols them and ztunnel gets Del', async () => {
    const ns = 'cni-relabel';
    await createNamespace(ns, false);
    await createEcho(ns, 'idle-0', 'node-0', 9090);
    await createEcho(ns, 'idle-1', 'node-1', 9090);
    const pods = [await running(ns, 'idle-0'), await running(ns, 'idle-1')];
    for (const p of pods) {
      expect(redirection(await getPod(ns, p.name))).toBeUndefined();
      expect(ambientTables(await podRuleset(p.netns))).toEqual([]);
      expect((await ztunnelState(p.node)).has(p.uid)).toBe(false);
    }

    await cluster.client.mergePatch(`/api/v1/namespaces/${ns}`, {
      metadata: { labels: { [DATAPLANE_MODE]: 'ambient' } },
    });
    const labelledAt = Date.now();
    for (const p of pods) {
      await waitFor(
        `${p.name} enabled, with the rules and in ztunnel's state`,
        async () => {
          if (redirection(await getPod(ns, p.name)) !== 'enabled') return undefined;
          const tables = ambientTables(await podRuleset(p.netns));
          if (!AMBIENT_TABLES.every(t => tables.includes(t))) return undefined;
          return (await ztunnelState(p.node)).get(p.uid) === 'Up' ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 250 },
      );
    }
    console.log(`[cni-scenarios] enrolled within ${((Date.now() - labelledAt) / 1000).toFixed(1)} s`);

    await cluster.client.mergePatch(`/api/v1/namespaces/${ns}`, {
      metadata: { labels: { [DATAPLANE_MODE]: null } },
    });
    for (const p of pods) {
      await waitFor(
        `${p.name} un-enrolled: no annotation, no rules, gone from ztunnel's state`,
        async () => {
          if (redirection(await getPod(ns, p.name)) !== undefined) return undefined;
          if (ambientTables(await podRuleset(p.netns)).length > 0) return undefined;
          return (await ztunnelState(p.node)).has(p.uid) ? undefined : true;
        },
        { timeoutMs: 20_000, intervalMs: 250 },
      );
    }
  }, 180_000);

  it('redirects a new pod of an ambient namespace before its container starts: its first request is captured', async () => {
    const ns = 'cni-newpod';
    await createNamespace(ns, true);
    await createEcho(ns, 'echo', 'node-1');
    const echo = await running(ns, 'echo');
    await cluster.client.create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'first-request', namespace: ns, labels: { app: 'first-request' } },
      spec: {
        nodeName: 'node-0',
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'load',
            image: 'ambient-mesh/load-client:0.1.0',
            args: [`http://${echo.ip}:8080/`, '--count', '1'],
          },
        ],
      },
    });
    await waitFor(
      'the load client to finish',
      async () => {
        const p = await getPod(ns, 'first-request');
        return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    // The app sent one request from a fresh process, so it made exactly one connection: the
    // first connection of the pod is the only one there is.
    const summary = jsonLines(await podLog(cluster.client, ns, 'first-request')).at(-1);
    expect(Number(summary?.ok) + Number(summary?.failed), JSON.stringify(summary)).toBe(1);
    // ztunnel's access log: that connection reached the pod's in-pod proxy as outbound traffic.
    const source = await ztunnelOn('node-0');
    const captured = await waitFor(
      "the source ztunnel's access log to show the connection",
      async () => {
        const lines = (await podLog(cluster.client, MESH_NAMESPACE, source.name))
          .split('\n')
          .filter(l => l.includes('connection complete') && l.includes(' src.workload=first-request '));
        return lines.length > 0 ? lines : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    console.log(
      `[cni-scenarios] app: ${JSON.stringify(summary)}\n[cni-scenarios] ztunnel: ${captured.join('\n')}`,
    );
    expect(captured).toHaveLength(1);
    expect(captured[0]).toContain(` src.namespace=${ns} `);
    expect(captured[0]).toContain(' direction=outbound ');
    expect(captured[0]).toContain(` dst.hbone_addr=${echo.ip}:8080 `);
    expect(captured[0]).toContain(' dst.workload=echo ');
    if (summary?.ok === 1) {
      // When the request went through, the metrics count it as outbound from the new pod too.
      const opened = (await ztunnelMetrics(source)).find(
        m =>
          m.name === 'istio_tcp_connections_opened_total' &&
          m.labels.reporter === 'source' &&
          m.labels.source_workload === 'first-request',
      );
      expect(opened?.value).toBe(1);
    }
  }, 180_000);

  it('restarting the cni-agent keeps the rules as they were, re-sends the snapshot, and enrolled pods keep working', async () => {
    const ns = 'cni-restart';
    const node = 'node-0';
    await createNamespace(ns, true);
    await createEcho(ns, 'server', node);
    await createEcho(ns, 'client', node, 9090);
    const server = await running(ns, 'server');
    const client = await running(ns, 'client');
    let seen = '';
    await waitFor(
      'both pods enabled and Up in ztunnel',
      async () => {
        const state = await ztunnelState(node);
        const views = [];
        for (const p of [server, client]) {
          views.push({
            pod: p.name,
            annotation: redirection(await getPod(ns, p.name)),
            ztunnel: state.get(p.uid),
          });
        }
        seen = JSON.stringify(views);
        return views.every(v => v.annotation === 'enabled' && v.ztunnel === 'Up') ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}; last seen ${seen}`, { cause: e });
    });
    const url = `http://${server.ip}:8080/`;
    expect(await get(client, url)).toBe(200);
    const before = new Map([
      [server.name, await podRuleset(server.netns)],
      [client.name, await podRuleset(client.netns)],
    ]);
    expect(ruleCount(before.get(client.name)!)).toBeGreaterThan(0);

    // Requests keep succeeding while the agent is gone and while its successor starts.
    const codes: number[] = [];
    const successor = await restartAgent(node, async () => {
      codes.push(await get(client, url));
    });
    for (let i = 0; i < 5; i++) codes.push(await get(client, url));
    console.log(
      `[cni-scenarios] ${codes.length} requests during and after the agent restart: ${[...new Set(codes)].join(',')}`,
    );
    expect(codes.length).toBeGreaterThan(5);
    expect(codes.every(c => c === 200)).toBe(true);

    // The new agent sent ztunnel a snapshot holding both pods, and ztunnel acked it.
    const acked = await waitFor(
      "the new agent's log to show the acked snapshot",
      async () =>
        jsonLines(await podLog(cluster.client, MESH_NAMESPACE, successor.metadata!.name!)).find(
          l => l.msg === 'ZDS snapshot acked',
        ),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(Number(acked.added) + Number(acked.kept)).toBeGreaterThanOrEqual(2);
    expect(acked.rejected).toBe(0);
    const z = await ztunnelOn(node);
    await waitFor(
      'ztunnel Ready, both pods Up',
      async () => {
        const pod = await getPod(MESH_NAMESPACE, z.name);
        const state = await ztunnelState(node);
        return isPodReady(pod) && state.get(server.uid) === 'Up' && state.get(client.uid) === 'Up'
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    // No duplicate and no missing rule: the rulesets are the same as before the restart.
    expect(await podRuleset(server.netns)).toEqual(before.get(server.name));
    expect(await podRuleset(client.netns)).toEqual(before.get(client.name));
    for (const p of [server, client]) expect(redirection(await getPod(ns, p.name))).toBe('enabled');
    expect(await get(client, url)).toBe(200);
  }, 240_000);

  it('a pod whose netns vanished is logged and handled without a crash (docs/protocols.md#zds-handshake: Keep for an enrolled pod)', async () => {
    const ns = 'cni-vanish';
    const node = 'node-0';
    await createNamespace(ns, false);
    await createEcho(ns, 'fresh', node, 9090);
    const fresh = await running(ns, 'fresh');
    const [agentBefore] = await agentPods(node);
    const restartsBefore = agentBefore?.status?.containerStatuses?.[0]?.restartCount ?? -1;

    // A pod that was never enrolled: selected for ambient after its netns is gone.
    const freshNetns = await vanishNetns(fresh);
    try {
      await cluster.client.mergePatch(podPath(ns, 'fresh'), {
        metadata: { labels: { [DATAPLANE_MODE]: 'ambient' } },
      });
      const logged = await waitFor(
        'the agent to log the vanished netns',
        async () =>
          (await agentLogAbout(agentBefore!, `${ns}/fresh`)).find(
            l => l.level === 'warn' && String(l.msg).includes('netns'),
          ),
        { timeoutMs: 20_000, intervalMs: 250 },
      );
      expect(String(logged.reason)).toContain(fresh.netns);
      expect(redirection(await getPod(ns, 'fresh'))).not.toBe('enabled');
      const agentNow = await getPod(MESH_NAMESPACE, agentBefore!.metadata!.name!);
      expect(isPodReady(agentNow)).toBe(true);
      expect(agentNow.status?.containerStatuses?.[0]?.restartCount).toBe(restartsBefore);
    } finally {
      await freshNetns.restore();
    }
    // With its netns back, the next event on the pod enrols it.
    await cluster.client.mergePatch(podPath(ns, 'fresh'), { metadata: { labels: { retry: '1' } } });
    await waitFor(
      'the pod enrolled once its netns is back',
      async () => {
        if (redirection(await getPod(ns, 'fresh')) !== 'enabled') return undefined;
        return (await ztunnelState(node)).get(fresh.uid) === 'Up' ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    const rules = await podRuleset(fresh.netns);
    expect(ambientTables(rules)).toEqual(expect.arrayContaining(AMBIENT_TABLES));

    // An enrolled pod whose netns vanished while the agent was down: the new agent cannot open
    // it, so it sends Keep in the snapshot and ztunnel keeps the pod's proxy.
    const enrolledNetns = await vanishNetns(fresh);
    try {
      const successor = await restartAgent(node);
      const acked = await waitFor(
        "the new agent's acked snapshot",
        async () =>
          jsonLines(await podLog(cluster.client, MESH_NAMESPACE, successor.metadata!.name!)).find(
            l => l.msg === 'ZDS snapshot acked',
          ),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(Number(acked.kept)).toBeGreaterThanOrEqual(1);
      const keepLog = (await agentLogAbout(successor, `${ns}/fresh`)).find(
        l => l.level === 'warn' && String(l.msg).includes('Keep'),
      );
      expect(keepLog).toBeDefined();
      expect((await ztunnelState(node)).get(fresh.uid)).toBe('Up');
      expect(isPodReady(await getPod(MESH_NAMESPACE, successor.metadata!.name!))).toBe(true);
    } finally {
      await enrolledNetns.restore();
    }
    expect(await podRuleset(fresh.netns)).toEqual(rules);
  }, 240_000);
});
