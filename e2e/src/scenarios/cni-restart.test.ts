// Cluster tier: the cni-agent fails closed across a restart (docs/operations.md#cni-agent-restarts).
// The cni-agent pod of the node is deleted (its DaemonSet recreates it) while 20 pods of an
// ambient namespace are created. Each pod's only container makes one connection to a server pod
// as soon as it starts. Asserted for every pod: its sandbox waited for an agent whose ztunnel
// acked the pod (redirection `enabled`, Up in ztunnel's in-pod state), its one connection
// succeeded and is counted by ztunnel as outbound from that pod, and no plaintext connection
// reached the server: a counter in the server's netns, ahead of every NAT rule, sees the
// connections arrive on 15008 (HBONE) and none on the app port. A pod outside the mesh then
// shows that the counter does see plaintext.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeList } from '@ambient-mesh/kube';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastLogsDir, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { nodeCniBinDir, nodeConflistPath, nodeHostRoot } from '../kubelet/node-cni.ts';
import { nodeLayout, podNetnsName } from '../layout.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods, type ZtunnelPod } from '../mesh/observe.ts';
import { isPodReady, jsonLines, podLog, redirection, workloadState } from './cni-observe.ts';

const NODE = 'node-0';
const APP_NS = 'cnirs-app';
const PLAIN_NS = 'cnirs-plain';
const PODS = 20;
const SERVER_PORT = 8080;
const AGENT_SELECTOR = 'k8s-app=istio-cni-node';
const CAPTURE_TABLE = 'cnirs_capture';
/** kubelet probes reach pods from this address (host probe SNAT); they are not app traffic. */
const PROBE_SNAT = '169.254.7.127';

let cluster: Cluster;
const started = Date.now();

const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/pods/${name}`;
const getPod = (ns: string, name: string): Promise<V1Pod> => cluster.client.get<V1Pod>(podPath(ns, name));

async function listPods(ns: string, labelSelector?: string): Promise<V1Pod[]> {
  const list = await cluster.client.get<KubeList<V1Pod>>(
    `/api/v1/namespaces/${ns}/pods`,
    labelSelector === undefined ? {} : { labelSelector },
  );
  return list.items;
}

async function agentPods(): Promise<V1Pod[]> {
  return (await listPods(MESH_NAMESPACE, AGENT_SELECTOR)).filter(p => p.spec?.nodeName === NODE);
}

async function createNamespace(name: string, ambient: boolean): Promise<void> {
  await cluster.client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
  });
}

/** A pod whose one container makes one HTTP request (one connection) to `url` and exits. */
async function createClient(ns: string, name: string, url: string): Promise<void> {
  await cluster.client.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name, role: 'client' } },
    spec: {
      nodeName: NODE,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'load', image: 'ambient-mesh/load-client:0.1.0', args: [url, '--count', '1'] }],
    },
  });
}

async function finished(ns: string, name: string): Promise<V1Pod> {
  return waitFor(
    `pod ${ns}/${name} to finish`,
    async () => {
      const p = await getPod(ns, name);
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
}

async function ztunnel(): Promise<ZtunnelPod> {
  return waitFor(
    `the ztunnel pod on ${NODE}`,
    async () => (await ztunnelPods(cluster.client, cluster.layout)).find(z => z.node === NODE),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

/**
 * Counts TCP SYNs arriving on the server pod's eth0, in prerouting ahead of NAT (priority -300),
 * so the destination port is the one the sender used: the app port means plaintext from the
 * client's netns, 15008 means HBONE from a ztunnel.
 */
async function installCapture(netns: string): Promise<void> {
  const syn = 'tcp flags & (syn | ack) == syn';
  const script = [
    `add table inet ${CAPTURE_TABLE}`,
    `add chain inet ${CAPTURE_TABLE} pre { type filter hook prerouting priority -300 ; }`,
    `add rule inet ${CAPTURE_TABLE} pre iifname "eth0" ip saddr != ${PROBE_SNAT} tcp dport ${SERVER_PORT} ${syn} counter comment "plaintext"`,
    `add rule inet ${CAPTURE_TABLE} pre iifname "eth0" tcp dport 15008 ${syn} counter comment "hbone"`,
  ].join('\n');
  await runCommand(['ip', 'netns', 'exec', netns, 'nft', '-f', '-'], { input: `${script}\n` });
}

async function captureCounts(netns: string): Promise<{ plaintext: number; hbone: number }> {
  const r = await runCommand([
    'ip',
    'netns',
    'exec',
    netns,
    'nft',
    '-j',
    'list',
    'table',
    'inet',
    CAPTURE_TABLE,
  ]);
  const out = { plaintext: 0, hbone: 0 };
  const entries = (JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] }).nftables;
  for (const e of entries) {
    const rule = e.rule as { comment?: string; expr?: Record<string, unknown>[] } | undefined;
    if (rule?.comment !== 'plaintext' && rule?.comment !== 'hbone') continue;
    const counter = rule.expr?.find(x => 'counter' in x)?.counter as { packets?: number } | undefined;
    out[rule.comment] = counter?.packets ?? 0;
  }
  return out;
}

/** The plugin types of the node's CNI configuration, if the plugin's launcher is installed. */
async function chainedPlugins(): Promise<string[]> {
  const root = nodeHostRoot(nodeLayout(cluster.layout, 0).stateDir);
  const conf = JSON.parse(await readFile(nodeConflistPath(root, cluster.layout.name), 'utf8')) as {
    plugins: { type: string }[];
  };
  const launcher = await access(join(nodeCniBinDir(root), 'ambient-istio-cni')).then(
    () => true,
    () => false,
  );
  return conf.plugins.map(p => p.type).filter(t => t !== 'ambient-istio-cni' || launcher);
}

function sandboxFailed(p: V1Pod): boolean {
  const reasons = [
    ...(p.status?.conditions ?? []).map(c => c.reason),
    ...(p.status?.containerStatuses ?? []).map(c => c.state?.waiting?.reason),
    p.status?.reason,
  ];
  return reasons.includes('SandboxFailed');
}

describe('cni-agent restart during pod creation (fail closed)', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'cnirs', slot: 110, nodes: 1 }));
    console.log(`[cni-restart] setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(async () => {
    for (const agent of await agentPods().catch(() => [])) {
      const lines = jsonLines(await podLog(cluster.client, MESH_NAMESPACE, agent.metadata?.name ?? ''));
      const bad = lines.filter(l => l.level === 'warn' || l.level === 'error').slice(-40);
      console.log(
        `[cni-restart] agent ${agent.metadata?.name} warnings:\n${bad.map(l => JSON.stringify(l)).join('\n')}`,
      );
    }
    await cluster.stop();
    // The kubelet's own record of the retried sandboxes (failed CNI ADDs) of the client pods.
    const kubeletLog = await readFile(join(lastLogsDir(cluster.layout), `kubelet-${NODE}.log`), 'utf8').catch(
      () => '',
    );
    const attempts = new Map<string, number>();
    for (const m of kubeletLog.matchAll(/pod cnirs-app\/(client-\d+): sandbox attempt (\d+) failed/g)) {
      attempts.set(m[1]!, Math.max(attempts.get(m[1]!) ?? 0, Number(m[2])));
    }
    const failedAdds = [...attempts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `[cni-restart] kubelet: ${attempts.size}/${PODS} client sandboxes retried, ${failedAdds} failed CNI ADDs in all`,
    );
    console.log(`[cni-restart] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it(`${PODS} pods created while the agent restarts are all enrolled before their first connection; every connection is captured, none in plaintext`, async () => {
    await createNamespace(APP_NS, true);
    await cluster.client.create(`/api/v1/namespaces/${APP_NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', namespace: APP_NS, labels: { app: 'server' } },
      spec: {
        nodeName: NODE,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'echo',
            image: 'ambient-mesh/echo:0.1.0',
            env: [{ name: 'PORT', value: String(SERVER_PORT) }],
            readinessProbe: { tcpSocket: { port: SERVER_PORT }, periodSeconds: 1 },
          },
        ],
      },
    });
    const server = await waitFor(
      'the server Ready, enrolled and Up in ztunnel',
      async () => {
        const p = await getPod(APP_NS, 'server');
        if (!isPodReady(p) || redirection(p) !== 'enabled') return undefined;
        const state = workloadState(await ztunnelConfigDump(await ztunnel()));
        return state.get(p.metadata?.uid ?? '') === 'Up' ? p : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const serverNetns = podNetnsName(cluster.layout, server.metadata!.uid!);
    const url = `http://${server.status!.podIP!}:${SERVER_PORT}/`;
    await installCapture(serverNetns);
    expect(await captureCounts(serverNetns)).toEqual({ plaintext: 0, hbone: 0 });

    // Restart: delete the agent pod (its DaemonSet recreates it) and create the pods meanwhile:
    // a few while the old agent stops, most once it is gone, the rest while its successor starts.
    const [old] = await agentPods();
    expect(old, `a cni-agent pod on ${NODE}`).toBeDefined();
    const oldUid = old!.metadata!.uid!;
    const names = Array.from({ length: PODS }, (_, i) => `client-${String(i).padStart(2, '0')}`);
    const agentState = new Map<string, string>();
    const stateNow = async (): Promise<string> => {
      const pods = await agentPods();
      if (pods.some(p => p.metadata?.uid !== oldUid && isPodReady(p))) return 'new agent Ready';
      if (pods.some(p => p.metadata?.uid !== oldUid)) return 'new agent starting';
      return pods.length > 0 ? 'old agent stopping' : 'no agent';
    };
    const create = async (from: number, to: number): Promise<void> => {
      for (const name of names.slice(from, to)) {
        await createClient(APP_NS, name, url);
        agentState.set(name, await stateNow());
      }
    };
    // Pods whose sandbox failed at least once (the kubelet reports SandboxFailed, then retries).
    const retried = new Set<string>();
    let watching = true;
    const watcher = waitFor(
      'the client pods to be done',
      async () => {
        for (const p of await listPods(APP_NS, 'role=client').catch(() => [])) {
          if (sandboxFailed(p)) retried.add(p.metadata?.name ?? '');
        }
        return watching ? undefined : true;
      },
      { timeoutMs: 900_000, intervalMs: 200 },
    ).catch(() => undefined); // it only collects; a failed run must not leave it rejecting later
    const restartAt = Date.now();
    await cluster.client.delete(podPath(MESH_NAMESPACE, old!.metadata!.name!));
    await create(0, 4);
    await waitFor(
      'the old cni-agent pod gone',
      async () => ((await agentPods()).some(p => p.metadata?.uid === oldUid) ? undefined : true),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // The old agent stopped for a restart: its plugin is still chained on the node, so the pods
    // created now wait for the next agent instead of starting uncaptured.
    expect(await chainedPlugins()).toEqual(['bridge', 'ambient-istio-cni']);
    await create(4, 14);
    await waitFor(
      'the new cni-agent pod created',
      async () => ((await agentPods()).some(p => p.metadata?.uid !== oldUid) ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    await create(14, PODS);
    await waitFor(
      'the new cni-agent Ready',
      async () => ((await stateNow()) === 'new agent Ready' ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const agentReadyAfterS = (Date.now() - restartAt) / 1000;

    const ends = new Map<string, V1Pod>();
    for (const name of names) ends.set(name, await finished(APP_NS, name));
    watching = false;
    await watcher;
    // How long each pod's container waited after the pod was created (its sandbox waited for an
    // agent whose ztunnel acked the pod).
    const waitedS = names
      .map(n => {
        const p = ends.get(n)!;
        const startedAt = p.status?.containerStatuses?.[0]?.state?.terminated?.startedAt;
        const created = p.metadata?.creationTimestamp;
        return startedAt === undefined || created === undefined
          ? NaN
          : (new Date(startedAt).getTime() - new Date(created).getTime()) / 1000;
      })
      .filter(v => !Number.isNaN(v))
      .sort((a, b) => a - b);
    const states = new Map<string, number>();
    for (const s of agentState.values()) states.set(s, (states.get(s) ?? 0) + 1);
    console.log(
      `[cni-restart] agent Ready again ${agentReadyAfterS.toFixed(1)} s after the delete; pods created: ` +
        `${JSON.stringify(Object.fromEntries(states))}; SandboxFailed seen on ${retried.size}/${PODS}; ` +
        `container start after creation: min ${waitedS[0]?.toFixed(1)} s, median ` +
        `${waitedS[Math.floor(waitedS.length / 2)]?.toFixed(1)} s, max ${waitedS.at(-1)?.toFixed(1)} s`,
    );
    // The pods really were created while no agent served: the restart overlapped their creation.
    expect(names.filter(n => agentState.get(n) !== 'new agent Ready').length).toBeGreaterThan(0);

    // Every pod's one connection went through. (The pods have finished, so the agent has let
    // them go again: enrolment is judged from what ztunnel saw of their connections below.)
    const z = await ztunnel();
    for (const name of names) {
      const p = ends.get(name)!;
      const summary = jsonLines(await podLog(cluster.client, APP_NS, name)).at(-1);
      expect({ name, ok: summary?.ok, failed: summary?.failed }).toEqual({ name, ok: 1, failed: 0 });
      expect(p.status?.phase, name).toBe('Succeeded');
    }

    // The first (and only) connection of every pod went through the pod's in-pod ztunnel proxy:
    // ztunnel's access log has exactly one outbound connection from each, to the server over
    // HBONE. A pod not yet enrolled would have sent it straight from its netns instead.
    const accessLog = await waitFor(
      "ztunnel's access log to show one outbound connection per pod",
      async () => {
        const lines = (await podLog(cluster.client, MESH_NAMESPACE, z.name))
          .split('\n')
          .filter(l => l.includes('connection complete') && l.includes(' direction=outbound '));
        const perPod = new Map(names.map(n => [n, lines.filter(l => l.includes(` src.workload=${n} `))]));
        return [...perPod.values()].every(v => v.length >= 1) ? perPod : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    for (const [name, lines] of accessLog) {
      expect(lines, name).toHaveLength(1);
      expect(lines[0]).toContain(` dst.hbone_addr=${server.status!.podIP!}:${SERVER_PORT} `);
      expect(lines[0]).toContain(' dst.workload=server ');
    }

    // Every connection counted at ztunnel as outbound from its pod: one each, none missing.
    const counted = await waitFor(
      'ztunnel to count one outbound connection per pod',
      async () => {
        const samples = await ztunnelMetrics(z);
        const perPod = new Map(names.map(n => [n, 0]));
        for (const s of samples) {
          if (s.name !== 'istio_tcp_connections_opened_total' || s.labels.reporter !== 'source') continue;
          const n = s.labels.source_workload ?? '';
          if (perPod.has(n)) perPod.set(n, perPod.get(n)! + s.value);
        }
        const atServer = samples
          .filter(
            s =>
              s.name === 'istio_tcp_connections_opened_total' &&
              s.labels.reporter === 'destination' &&
              s.labels.destination_workload === 'server' &&
              names.includes(s.labels.source_workload ?? ''),
          )
          .reduce((sum, s) => sum + s.value, 0);
        return [...perPod.values()].every(v => v === 1) && atServer === PODS
          ? { perPod, atServer }
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    ).catch(async (e: unknown) => {
      const samples = (await ztunnelMetrics(z)).filter(s => s.name === 'istio_tcp_connections_opened_total');
      throw new Error(`${String(e)}; opened: ${JSON.stringify(samples)}`, { cause: e });
    });
    // ... and with mutual TLS: the destination side saw each one arrive over HBONE.
    const mtls = (await ztunnelMetrics(z)).filter(
      s =>
        s.name === 'istio_tcp_connections_opened_total' &&
        s.labels.reporter === 'destination' &&
        names.includes(s.labels.source_workload ?? ''),
    );
    expect(mtls.every(s => s.labels.connection_security_policy === 'mutual_tls')).toBe(true);

    // Nothing reached the server in plaintext; the HBONE side saw traffic.
    const capture = await captureCounts(serverNetns);
    console.log(
      `[cni-restart] connections: ${names.length} made, ${[...counted.perPod.values()].reduce((a, b) => a + b, 0)} ` +
        `counted at ztunnel (source), ${counted.atServer} at the server side (mutual_tls); ` +
        `server netns SYNs: ${capture.plaintext} plaintext to :${SERVER_PORT}, ${capture.hbone} HBONE to :15008`,
    );
    expect(capture.plaintext).toBe(0);
    expect(capture.hbone).toBeGreaterThan(0);

    // The counter does see plaintext: a pod outside the mesh connects directly.
    await createNamespace(PLAIN_NS, false);
    await createClient(PLAIN_NS, 'outsider', url);
    const outsider = await finished(PLAIN_NS, 'outsider');
    expect(redirection(outsider)).toBeUndefined();
    expect(jsonLines(await podLog(cluster.client, PLAIN_NS, 'outsider')).at(-1)?.ok).toBe(1);
    expect((await captureCounts(serverNetns)).plaintext).toBeGreaterThanOrEqual(1);
  }, 900_000);
});
