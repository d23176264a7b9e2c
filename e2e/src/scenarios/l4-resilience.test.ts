// Cluster tier: L4 AuthorizationPolicy, mTLS on the wire, a large transfer, dynamic enrolment and
// the mesh under failure (certificate rotation, istiod down, a ztunnel rollout restart), on a
// 2-node local cluster of its own (name `l4res`, slot 10). One cluster and one mesh are shared by
// the whole file; the tests run in order and each one leaves the mesh as it found it (policies
// deleted, components back).
//
// Clients run on node-0 and the echo server on node-1, so every call crosses nodes. Traffic is
// sent from inside the client pods' network namespaces (curl or python3), which the in-pod
// redirection captures like the pod's own traffic.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import type { KubeList } from '@ambient-mesh/kube';
import { installMesh, MESH_NAMESPACE, uninstallMesh } from '../mesh/install.ts';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import {
  echoPod,
  httpCode,
  inEveryZtunnelConfig,
  isPodReady,
  mtlsConnectionsTo,
  readyPod,
  setZtunnelEnv,
  type CertDump,
} from '../mesh/workloads.ts';
import {
  captureInNetns,
  sendHashed,
  startHashingSink,
  startRequestLoop,
  tcpEchoWorks,
  type CaptureSummary,
  type LoopSummary,
} from './netns-python.ts';

const NS = 'res-a';
const NS_B = 'res-b';
const NS_LATE = 'res-late';
const TD = 'spiffe://cluster.local';
const ECHO_TCP_PORT = 9000;
const SINK_PORT = 9100;
const TRANSFER_MIB = 1024;
// Renewal happens at half-life (75 s), so the rotation scenario sees one renewal per node, and a
// certificate outlives the 60 s istiod outage that follows it.
const CERT_TTL_S = 150;
let meshInstalled = false;

interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}

const scenario = new ScenarioContext<PodInfo>('l4-resilience');
const { log, kube, pod, pods } = scenario;

const ratio = (s: LoopSummary): string =>
  `${s.ok}/${s.ok + s.failed} (${((100 * s.ok) / Math.max(1, s.ok + s.failed)).toFixed(2)} %)`;

async function podInfo(name: string, namespace: string, wantEnrolled: boolean): Promise<PodInfo> {
  return { ...(await readyPod(kube(), namespace, name, { enrolled: wantEnrolled })), namespace };
}

/** Waits until every ztunnel has the workload of `ip` in its config. */
const inZtunnelConfig = (ip: string): Promise<void> => inEveryZtunnelConfig(kube(), ip);

/** Every pod of a mesh component (label `app`), terminating ones included. */
async function meshPods(app: string): Promise<V1Pod[]> {
  const list = await kube().client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: `app=${app}`,
  });
  return list.items;
}

const echoUrl = (): string => `http://${pod('echo').ip}:8080/`;

/** Sum of the destination ztunnels' opened-connection counters for `echo` with `flags`. */
async function destinationConnections(flags: string): Promise<number> {
  const c = kube();
  let n = 0;
  for (const z of await ztunnelPods(c.client, c.layout)) {
    for (const s of await ztunnelMetrics(z)) {
      if (
        s.name === 'istio_tcp_connections_opened_total' &&
        s.labels.reporter === 'destination' &&
        s.labels.destination_workload === 'echo' &&
        s.labels.response_flags === flags
      )
        n += s.value;
    }
  }
  return n;
}

/** mTLS connections the destination ztunnels counted to `echo` from `sourcePrincipal`. */
const mtlsToEcho = (sourcePrincipal: string): Promise<number> =>
  mtlsConnectionsTo(kube(), 'echo', sourcePrincipal);

const policiesPath = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;

async function withPolicy(
  name: string,
  spec: object,
  check: { refused: () => Promise<boolean>; allowed: () => Promise<boolean>; deniedPrincipal: string },
): Promise<void> {
  const c = kube();
  const deniesBefore = await destinationConnections('DENY');
  await c.client.create(policiesPath, {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: { app: 'echo' } }, ...spec },
  });
  try {
    await waitFor(
      `policy ${name} to refuse the call`,
      async () => ((await check.refused()) ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );
    expect(await check.allowed(), `the call ${name} still allows`).toBe(true);
    // Once enforced, it refuses every time.
    expect(await check.refused()).toBe(true);
    await waitFor(
      'the destination ztunnel to count the refused connection with response_flags="DENY"',
      async () => ((await destinationConnections('DENY')) > deniesBefore ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    const denied = (await Promise.all((await ztunnelPods(c.client, c.layout)).map(z => ztunnelMetrics(z))))
      .flat()
      .find(
        s =>
          s.name === 'istio_tcp_connections_opened_total' &&
          s.labels.response_flags === 'DENY' &&
          s.labels.reporter === 'destination' &&
          s.labels.source_principal === check.deniedPrincipal,
      );
    expect(denied?.labels.destination_workload, 'a DENY sample for the refused source').toBe('echo');
  } finally {
    await c.client.delete(`${policiesPath}/${name}`);
  }
  await waitFor(
    `policy ${name} removed from the data plane`,
    async () => ((await check.refused()) ? undefined : true),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

describe('L4 resilience on a 2-node local cluster', () => {
  beforeAll(async () => {
    scenario.cluster = await startCluster({
      name: 'l4res',
      slot: 10,
      nodes: 2,
      progress: l => {
        log(`cluster: ${l}`);
      },
    });
    const c = scenario.cluster;
    const status = await installMesh(c, {
      progress: l => {
        log(`mesh: ${l}`);
      },
    });
    meshInstalled = true;
    expect(
      status.components.every(x => x.ready),
      JSON.stringify(status),
    ).toBe(true);
    // Short-lived workload certificates for the whole file (the rotation scenario watches them
    // renew), set before any workload exists so the DaemonSet rollout disturbs nothing.
    await setZtunnelEnv(c, { SECRET_TTL: `${String(CERT_TTL_S)}s` });
    for (const [ns, ambient] of [
      [NS, true],
      [NS_B, true],
      [NS_LATE, false],
    ] as const) {
      await c.client.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
      });
    }
    for (const sa of ['echo', 'client', 'other']) {
      await c.client.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: NS },
      });
    }
    const idle = { PORT: '9090' };
    const created: [string, string, object][] = [
      [
        'echo',
        NS,
        echoPod('echo', {
          namespace: NS,
          node: 'node-1',
          labels: { app: 'echo' },
          env: { TCP_PORT: String(ECHO_TCP_PORT) },
        }),
      ],
      [
        'client',
        NS,
        echoPod('client', { namespace: NS, node: 'node-0', serviceAccount: 'client', env: idle }),
      ],
      ['other', NS, echoPod('other', { namespace: NS, node: 'node-0', serviceAccount: 'other', env: idle })],
      [
        'client-b',
        NS_B,
        echoPod('client-b', { namespace: NS_B, node: 'node-0', serviceAccount: 'default', env: idle }),
      ],
      [
        'late',
        NS_LATE,
        echoPod('late', { namespace: NS_LATE, node: 'node-0', serviceAccount: 'default', env: idle }),
      ],
    ];
    for (const [, ns, body] of created) await c.client.create(`/api/v1/namespaces/${ns}/pods`, body);
    for (const [name, ns] of created) pods.set(name, await podInfo(name, ns, ns !== NS_LATE));
    for (const name of ['echo', 'client', 'other', 'client-b']) await inZtunnelConfig(pod(name).ip);
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    try {
      const { cluster } = scenario;
      if (cluster !== undefined && meshInstalled) await uninstallMesh(cluster, { timeoutMs: 60_000 });
    } finally {
      await scenario.cluster?.stop();
      scenario.logWallTime();
    }
  }, 240_000);

  it('AuthorizationPolicy by principal: ALLOW only the client SA refuses another SA', async () => {
    await withPolicy(
      'allow-client-sa',
      {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/client`] } }] }],
      },
      {
        refused: async () => (await httpCode(pod('other'), echoUrl())) === 0,
        allowed: async () => (await httpCode(pod('client'), echoUrl())) === 200,
        deniedPrincipal: `${TD}/ns/${NS}/sa/other`,
      },
    );
  }, 120_000);

  it('AuthorizationPolicy by namespace: DENY from a namespace refuses its pods only', async () => {
    await withPolicy(
      'deny-res-b',
      { action: 'DENY', rules: [{ from: [{ source: { namespaces: [NS_B] } }] }] },
      {
        refused: async () => (await httpCode(pod('client-b'), echoUrl())) === 0,
        allowed: async () => (await httpCode(pod('client'), echoUrl())) === 200,
        deniedPrincipal: `${TD}/ns/${NS_B}/sa/default`,
      },
    );
  }, 120_000);

  it('AuthorizationPolicy by IP block: DENY one source IP refuses that pod only', async () => {
    await withPolicy(
      'deny-other-ip',
      { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: [`${pod('other').ip}/32`] } }] }] },
      {
        refused: async () => (await httpCode(pod('other'), echoUrl())) === 0,
        allowed: async () => (await httpCode(pod('client'), echoUrl())) === 200,
        deniedPrincipal: `${TD}/ns/${NS}/sa/other`,
      },
    );
  }, 120_000);

  it('AuthorizationPolicy by port: DENY to one port refuses it, the other port still answers', async () => {
    const client = pod('client');
    await withPolicy(
      'deny-tcp-port',
      { action: 'DENY', rules: [{ to: [{ operation: { ports: [String(ECHO_TCP_PORT)] } }] }] },
      {
        refused: async () => !(await tcpEchoWorks(client.netns, pod('echo').ip, ECHO_TCP_PORT)),
        allowed: async () => (await httpCode(client, echoUrl())) === 200,
        deniedPrincipal: `${TD}/ns/${NS}/sa/client`,
      },
    );
  }, 120_000);

  it('carries the payload as TLS on port 15008 on the wire: the marker is never seen in plaintext', async () => {
    const c = kube();
    const client = pod('client');
    const echo = pod('echo');
    const node = c.nodes.find(n => n.name === echo.node);
    expect(node, `node ${echo.node}`).toBeDefined();
    const marker = `ambient-marker-${String(Date.now())}-${Math.random().toString(36).slice(2)}`;
    const capture = await captureInNetns(node?.netns ?? '', marker);
    const codes: number[] = [];
    let summary: CaptureSummary | undefined;
    try {
      for (let i = 0; i < 5; i++) {
        const r = await runCommand(
          ['ip', 'netns', 'exec', client.netns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}'].concat(
            ['--max-time', '5', '-d', `${marker}-${String(i)}`, echoUrl()],
          ),
          { allowFailure: true },
        );
        codes.push(Number(r.stdout.trim() || '0'));
      }
    } finally {
      summary = await capture.stop();
    }
    log(`capture on ${echo.node}: ${JSON.stringify(summary)}`);
    expect(codes).toEqual([200, 200, 200, 200, 200]);
    expect(summary.hbone).toBeGreaterThan(0);
    expect(summary.tlsRecords).toBeGreaterThan(0);
    expect(summary.plaintext).toBe(0);
  }, 60_000);

  it(`moves ${String(TRANSFER_MIB)} MiB across nodes through the mesh with equal sha256 at both ends`, async () => {
    const client = pod('client');
    const echo = pod('echo');
    const before = await mtlsToEcho(`${TD}/ns/${NS}/sa/client`);
    const sink = await startHashingSink(echo.netns, SINK_PORT, 300_000);
    try {
      const t0 = Date.now();
      const sent = await sendHashed(client.netns, echo.ip, SINK_PORT, TRANSFER_MIB, 280_000);
      const got = await sink.result;
      const s = (Date.now() - t0) / 1000;
      log(
        `transfer ${String(TRANSFER_MIB)} MiB in ${s.toFixed(1)} s (${(TRANSFER_MIB / s).toFixed(0)} MiB/s)`,
      );
      expect(sent.ack).toBe('done');
      expect(got.bytes).toBe(TRANSFER_MIB * 1024 * 1024);
      expect(got.sha256).toBe(sent.sha256);
    } finally {
      sink.kill();
    }
    await waitFor(
      'the transfer counted as an mTLS connection by the destination ztunnel',
      async () => ((await mtlsToEcho(`${TD}/ns/${NS}/sa/client`)) > before ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 320_000);

  it('enrols a namespace labelled while its pod sends requests: the traffic becomes mTLS and keeps succeeding', async () => {
    const c = kube();
    const late = pod('late');
    const principal = `${TD}/ns/${NS_LATE}/sa/default`;
    const before = await mtlsToEcho(principal);
    const loop = await startRequestLoop(late.netns, { host: pod('echo').ip, port: 8080 }, 45);
    let summary: LoopSummary | undefined;
    try {
      await c.client.mergePatch(`/api/v1/namespaces/${NS_LATE}`, {
        metadata: { labels: { 'istio.io/dataplane-mode': 'ambient' } },
      });
      await podInfo('late', NS_LATE, true);
      await waitFor(
        'the labelled pod`s requests to arrive over mTLS',
        async () => ((await mtlsToEcho(principal)) >= before + 10 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(`dynamic enrolment: ${ratio(summary)} requests succeeded; ${summary.errors.join('; ')}`);
    // The requests after the switch all succeed (at least the ten counted as mTLS). A few are
    // refused during the switch itself: like upstream, the cni-agent applies the in-pod rules
    // before it sends the pod to ztunnel, so a connection made in between finds no listener.
    // Upstream's TestServiceDynamicEnroll accepts 50 %; we hold the same bar (runs give 80-92 %).
    expect(summary.ok).toBeGreaterThan(10);
    expect(summary.ok / (summary.ok + summary.failed)).toBeGreaterThanOrEqual(0.5);
    expect(summary.trailingOk).toBeGreaterThanOrEqual(10);
  }, 120_000);

  it('rotates workload certificates under load (short SECRET_TTL) with no failed connection', async () => {
    const c = kube();
    const client = pod('client');
    const echo = pod('echo');
    // beforeAll set the short SECRET_TTL before any workload existed; the load starts once both
    // ztunnels carry the client and echo identities with the short lifetime.
    const serials = async (): Promise<Map<string, string> | undefined> => {
      const out = new Map<string, string>();
      for (const z of await ztunnelPods(c.client, c.layout)) {
        const dump = await ztunnelConfigDump(z);
        const certs = (dump?.certificates ?? []) as CertDump[];
        const want = z.node === client.node ? `/ns/${NS}/sa/client` : `/ns/${NS}/sa/echo`;
        const cert = certs.find(x => x.identity.endsWith(want) && x.state === 'Available')?.certChain[0];
        if (cert === undefined) return undefined;
        // NotBefore is backdated for clock skew: judge the lifetime by what is left of it.
        if (Date.parse(cert.expirationTime) - Date.now() > (CERT_TTL_S + 5) * 1000) return undefined;
        out.set(z.node, cert.serialNumber);
      }
      return out.size === c.nodes.length ? out : undefined;
    };
    const first = await waitFor('both ztunnels on short-lived certificates', serials, {
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    const loop = await startRequestLoop(
      client.netns,
      { host: echo.ip, port: 8080, echoPort: ECHO_TCP_PORT },
      45,
    );
    let summary: LoopSummary | undefined;
    let rotations = 0;
    try {
      // A renewal of each certificate while the load runs.
      const seen = new Map([...first].map(([node, serial]) => [node, new Set([serial])]));
      await waitFor(
        'a certificate rotation on each node',
        async () => {
          const now = await serials();
          for (const [node, serial] of now ?? []) seen.get(node)?.add(serial);
          rotations = Math.min(...[...seen.values()].map(x => x.size - 1));
          return rotations >= 1 ? true : undefined;
        },
        { timeoutMs: CERT_TTL_S * 1_000, intervalMs: 1_000 },
      );
      // Keep the load on until new connections run on the renewed certificates.
      const principal = `${TD}/ns/${NS}/sa/client`;
      const atRotation = await mtlsToEcho(principal);
      await waitFor(
        'twenty mTLS connections after the rotation',
        async () => ((await mtlsToEcho(principal)) >= atRotation + 20 ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(
      `certificate rotation (${String(CERT_TTL_S)} s TTL): ${String(rotations)} rotations per node, ${ratio(summary)} requests succeeded, long-lived round trips ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}; ${summary.errors.join('; ')}`,
    );
    expect(summary.ok).toBeGreaterThan(20);
    expect(summary.failed).toBe(0);
    expect(summary.longOk).toBeGreaterThan(20);
    expect(summary.longFailed).toBe(0);
  }, 300_000);

  it('keeps existing and new connections working from cached config while istiod is down for 60 s', async () => {
    const c = kube();
    const istiodPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/deployments/istiod`;
    const istiodPods = (): Promise<V1Pod[]> => meshPods('istiod');
    const loop = await startRequestLoop(
      pod('client').netns,
      { host: pod('echo').ip, port: 8080, echoPort: ECHO_TCP_PORT },
      100,
    );
    let summary: LoopSummary | undefined;
    const curlFailures: number[] = [];
    let curlChecks = 0;
    try {
      await c.client.mergePatch(istiodPath, { spec: { replicas: 0 } });
      await waitFor('istiod pods gone', async () => ((await istiodPods()).length === 0 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      const downSince = Date.now();
      // About one new connection a second from another pod, for the 60 s istiod stays down.
      await waitFor(
        'istiod down for 60 s',
        async () => {
          const code = await httpCode(pod('other'), echoUrl());
          curlChecks++;
          if (code !== 200) curlFailures.push(code);
          if ((await istiodPods()).length !== 0) throw new Error('istiod came back while scaled to 0');
          return Date.now() - downSince >= 60_000 ? true : undefined;
        },
        { timeoutMs: 75_000, intervalMs: 1_000 },
      );
    } finally {
      await c.client.mergePatch(istiodPath, { spec: { replicas: 1 } });
      summary = await loop.stop();
    }
    await waitFor(
      'istiod Ready again',
      async () => ((await istiodPods()).some(isPodReady) ? true : undefined),
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    log(
      `istiod down 60 s: new connections ${ratio(summary)}, long-lived round trips ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}, other pod ${String(curlChecks - curlFailures.length)}/${String(curlChecks)}; ${summary.errors.join('; ')}`,
    );
    expect(curlChecks).toBeGreaterThan(10);
    expect(curlFailures).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(summary.longOk).toBeGreaterThan(100);
    expect(summary.longFailed).toBe(0);
  }, 240_000);

  it('keeps at least 99 % of new connections succeeding while every ztunnel restarts (rollout restart)', async () => {
    const c = kube();
    const client = pod('client');
    const principal = `${TD}/ns/${NS}/sa/client`;
    const dsPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets/ztunnel`;
    const allZtunnels = (): Promise<V1Pod[]> => meshPods('ztunnel');
    const oldUids = new Set((await allZtunnels()).map(p => p.metadata?.uid ?? ''));
    expect(oldUids.size).toBe(c.nodes.length);
    const loop = await startRequestLoop(client.netns, { host: pod('echo').ip, port: 8080 }, 45);
    let summary: LoopSummary | undefined;
    let newOnes: string[];
    let mostOnOneNode = 0;
    try {
      // What `kubectl rollout restart daemonset/ztunnel` does. The DaemonSet surges (maxSurge 1,
      // maxUnavailable 0): on each node the new ztunnel takes the pods over ZDS and binds their
      // listeners beside the old one's (SO_REUSEPORT) before the old one is told to drain.
      await c.client.strategicPatch(dsPath, {
        spec: {
          template: {
            metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } },
          },
        },
      });
      newOnes = await waitFor(
        'every ztunnel replaced, and the old ones gone',
        async () => {
          const now = await allZtunnels();
          const perNode = new Map<string, number>();
          for (const p of now)
            perNode.set(p.spec?.nodeName ?? '', (perNode.get(p.spec?.nodeName ?? '') ?? 0) + 1);
          mostOnOneNode = Math.max(mostOnOneNode, ...perNode.values());
          if (now.some(p => oldUids.has(p.metadata?.uid ?? ''))) return undefined;
          const ready = now.filter(isPodReady);
          return ready.length === c.nodes.length ? ready.map(p => p.metadata?.name ?? '') : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      // Requests keep flowing through the new ztunnels (their counters start at zero).
      await waitFor(
        'twenty mTLS connections counted by the new ztunnels',
        async () => ((await mtlsToEcho(principal)) >= 20 ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(
      `ztunnel rollout restart (now ${newOnes.join(', ')}; up to ${String(mostOnOneNode)} ztunnels seen on one node): ${ratio(summary)} requests succeeded; ${summary.errors.join('; ')}`,
    );
    expect(summary.ok).toBeGreaterThan(100);
    // Istio's TestZtunnelRestart accepts 90 %; we hold 99 %.
    expect(summary.ok / (summary.ok + summary.failed)).toBeGreaterThanOrEqual(0.99);
    expect(summary.trailingOk).toBeGreaterThanOrEqual(20);
  }, 300_000);
});
