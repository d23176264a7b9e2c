// l4: pod A on node-0 -> pod B on node-1 of a 2-node local cluster with the mesh installed, in a
// namespace without the ambient label (no mesh) and in an ambient namespace (the L4 mesh: A's
// ztunnel on node-0 -> HBONE mTLS -> B's ztunnel on node-1), measured in the same run. Needs root.
//
// The workloads run as pods through the image map (e2e/images.json): bench-server.ts in B (sink,
// echo, accept ports) and bench-load.ts in A, which the driver drives over A's loopback. ztunnel's
// CPU and memory come from /proc of the ztunnel processes of both nodes.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/l4/run.ts
// Env: L4_BENCH_MIB (bulk size, default 512), L4_BENCH_SECONDS (latency run, default 10),
// L4_BENCH_CONNECT_SECONDS (new-connection run, default 5), L4_BENCH_CONCURRENCY (default 8).
import { installMesh, mtlsConnections, podNetnsName, runCommand, waitFor } from '@ambient-mesh/e2e';
import type { Cluster } from '@ambient-mesh/e2e';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods } from '@ambient-mesh/e2e';
import { loadPodAnswering, runOnCluster, type PodView } from './cluster-run.ts';
import { findProcesses, sampleProcesses } from './ztunnel-proc.ts';
import type { ProcSample } from './ztunnel-proc.ts';

const BULK_MIB = Number(process.env.L4_BENCH_MIB ?? 512);
const LATENCY_SECONDS = Number(process.env.L4_BENCH_SECONDS ?? 10);
const CONNECT_SECONDS = Number(process.env.L4_BENCH_CONNECT_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.L4_BENCH_CONCURRENCY ?? 8);
const RATE = 1000;
const CONNECTIONS = 4;
const CONTROL_PORT = 9100;
// Source (older builds) or the bundle the image ships (apps/ztunnel/dist/ztunnel.mjs).
const ZTUNNEL_MARKER = 'apps/ztunnel/';
const MiB = 1024 * 1024;

const log = (line: string): void => {
  console.error(`[l4] ${line}`);
};

// ---------------------------------------------------------------------------------------------
// Cluster and workloads

interface Side {
  readonly mode: 'no mesh' | 'L4 mesh';
  readonly namespace: string;
  /** The load pod's netns (A, node-0). */
  loadNetns: string;
  /** The server pod's IP (B, node-1). */
  serverIp: string;
}

const sides: readonly Side[] = [
  { mode: 'no mesh', namespace: 'l4b-plain', loadNetns: '', serverIp: '' },
  { mode: 'L4 mesh', namespace: 'l4b-mesh', loadNetns: '', serverIp: '' },
];

function pod(namespace: string, name: string, node: string, image: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      nodeName: node,
      serviceAccountName: name,
      terminationGracePeriodSeconds: 1,
      containers: [{ name, image }],
    },
  };
}

async function deploy(cluster: Cluster, side: Side): Promise<void> {
  const ns = side.namespace;
  const labels = side.mode === 'L4 mesh' ? { 'istio.io/dataplane-mode': 'ambient' } : {};
  await cluster.client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels },
  });
  for (const sa of ['server', 'load']) {
    await cluster.client.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace: ns },
    });
  }
  await cluster.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    pod(ns, 'server', 'node-1', 'ambient-mesh/l4-bench-server:0.1.0'),
  );
  await cluster.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    pod(ns, 'load', 'node-0', 'ambient-mesh/l4-bench-load:0.1.0'),
  );
}

/** Waits until the pod is Ready (and enrolled by the mesh when it should be); its IP and netns. */
async function podReady(cluster: Cluster, side: Side, name: string): Promise<{ ip: string; netns: string }> {
  return waitFor(
    `pod ${side.namespace}/${name} Ready${side.mode === 'L4 mesh' ? ' and enrolled' : ''}`,
    async () => {
      const p = await cluster.client.get<PodView>(`/api/v1/namespaces/${side.namespace}/pods/${name}`);
      const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
      const redirection = p.metadata?.annotations?.['ambient.istio.io/redirection'];
      if (!ready || (side.mode === 'L4 mesh' && redirection !== 'enabled')) return undefined;
      if (side.mode === 'no mesh' && redirection !== undefined) {
        throw new Error(
          `${side.namespace}/${name} was enrolled (${redirection}) though its namespace is not ambient`,
        );
      }
      return { ip: p.status.podIP ?? '', netns: podNetnsName(cluster.layout, p.metadata?.uid ?? '') };
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

/** Waits until both ztunnels have the workloads of `ips` in their config. */
async function inZtunnelConfig(cluster: Cluster, ips: readonly string[]): Promise<void> {
  await waitFor(
    `workloads ${ips.join(', ')} in both ztunnels' config`,
    async () => {
      const zs = await ztunnelPods(cluster.client, cluster.layout);
      if (zs.length < 2) return undefined;
      for (const z of zs) {
        const workloads = ((await ztunnelConfigDump(z))?.workloads ?? []) as { workloadIps?: string[] }[];
        for (const ip of ips) {
          if (!workloads.some(w => w.workloadIps?.includes(ip) === true)) return undefined;
        }
      }
      return true;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/** Runs one measurement in the load pod; its JSON answer. */
async function order<T>(side: Side, path: string, maxSeconds: number): Promise<T> {
  const url = `http://127.0.0.1:${CONTROL_PORT}${path}${path.includes('?') ? '&' : '?'}host=${side.serverIp}`;
  const r = await runCommand(
    ['ip', 'netns', 'exec', side.loadNetns, 'curl', '-sS', '--max-time', String(maxSeconds), url],
    { allowFailure: true },
  );
  if (r.code !== 0)
    throw new Error(`${side.mode}: ${path} failed: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  const body = JSON.parse(r.stdout) as T & { error?: string };
  if (body.error !== undefined)
    throw new Error(`${side.mode}: ${path} failed in the load pod: ${body.error}`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Bulk {
  readonly mibPerSecond: number;
  readonly counted: number;
}
interface Latency {
  readonly sent: number;
  readonly received: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}
interface Connect {
  readonly completed: number;
  readonly failed: number;
  readonly perSecond: number;
}

interface Ztunnels {
  readonly nodes: readonly { readonly node: string; readonly pids: readonly number[] }[];
}

function sampleZtunnels(z: Ztunnels): ProcSample[] {
  return z.nodes.map(n => sampleProcesses(n.pids));
}

interface ZtunnelDelta {
  readonly node: string;
  readonly cpuSeconds: number;
  readonly rssAfter: number;
}

async function measured<T>(z: Ztunnels, run: () => Promise<T>): Promise<{ result: T; zt: ZtunnelDelta[] }> {
  const before = sampleZtunnels(z);
  const result = await run();
  const after = sampleZtunnels(z);
  return {
    result,
    zt: z.nodes.map((n, i) => ({
      node: n.node,
      cpuSeconds: after[i]!.cpuSeconds - before[i]!.cpuSeconds,
      rssAfter: after[i]!.rss,
    })),
  };
}

interface SideResult {
  bulk?: Bulk;
  /** ztunnel CPU of each node during the bulk run. */
  bulkZt?: ZtunnelDelta[];
  latency?: { result: Latency; zt: ZtunnelDelta[] };
  connect?: { result: Connect; zt: ZtunnelDelta[] };
}

// ---------------------------------------------------------------------------------------------
// Output

const ms = (v: number): string => `${v.toFixed(3)} ms`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;
const pct = (mesh: number, base: number): string => `${((mesh / base) * 100).toFixed(0)} % of no mesh`;
const plus = (mesh: number, base: number): string =>
  `${mesh - base >= 0 ? '+' : ''}${(mesh - base).toFixed(3)} ms`;

function report(results: Map<string, SideResult>, idle: ProcSample[], z: Ztunnels, peak: ProcSample[]): void {
  const plain = results.get('no mesh')!;
  const mesh = results.get('L4 mesh')!;
  const rows: string[][] = [];
  if (plain.bulk !== undefined && mesh.bulk !== undefined) {
    rows.push([
      `bulk, 1 connection, ${BULK_MIB} MiB (MiB/s)`,
      plain.bulk.mibPerSecond.toFixed(0),
      mesh.bulk.mibPerSecond.toFixed(0),
      pct(mesh.bulk.mibPerSecond, plain.bulk.mibPerSecond),
    ]);
  }
  if (mesh.bulkZt !== undefined) {
    // Both hops together: the source node's ztunnel (outbound) and the destination's (inbound).
    const cpu = mesh.bulkZt.reduce((sum, d) => sum + d.cpuSeconds, 0);
    rows.push([
      'ztunnel CPU-s per GiB of bulk, both hops (upstream ztunnel: about 3.0)',
      '',
      (cpu / (BULK_MIB / 1024)).toFixed(2),
      mesh.bulkZt.map(d => `${d.node} ${(d.cpuSeconds / (BULK_MIB / 1024)).toFixed(2)}`).join(', '),
    ]);
  }
  const pl = plain.latency?.result;
  const ml = mesh.latency?.result;
  if (pl !== undefined && ml !== undefined) {
    for (const p of ['p50', 'p90', 'p99', 'max'] as const) {
      rows.push([
        `1 KiB req/resp ${p} (${RATE} rps, ${CONNECTIONS} conns)`,
        ms(pl[p]),
        ms(ml[p]),
        plus(ml[p], pl[p]),
      ]);
    }
    rows.push(['answered / sent', `${pl.received} / ${pl.sent}`, `${ml.received} / ${ml.sent}`, '']);
  }
  const pc = plain.connect?.result;
  const mc = mesh.connect?.result;
  if (pc !== undefined && mc !== undefined) {
    rows.push([
      `new connections/s (${CONCURRENCY} in parallel, ${CONNECT_SECONDS} s)`,
      pc.perSecond.toFixed(0),
      mc.perSecond.toFixed(0),
      pct(mc.perSecond, pc.perSecond),
    ]);
    rows.push(['failed connections', String(pc.failed), String(mc.failed), '']);
  }
  console.log(`### pod A (node-0) -> pod B (node-1)\n`);
  console.log('| measure | no mesh | L4 mesh | difference |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);

  console.log(`\n### ztunnel processes (from /proc)\n`);
  console.log(
    '| ztunnel | CPU per 1000 requests, mesh run (= vCPU at 1000 rps) | same, during the no-mesh run (idle) | CPU per 1000 new connections | RSS idle, after warm-up | RSS after latency run | peak RSS (VmHWM) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  z.nodes.forEach((n, i) => {
    const meshCpu = mesh.latency?.zt[i]?.cpuSeconds ?? Number.NaN;
    const idleCpu = plain.latency?.zt[i]?.cpuSeconds ?? Number.NaN;
    const perK = (cpu: number, count: number): string => `${((cpu / count) * 1000).toFixed(3)} CPU-s`;
    const connCpu = mesh.connect?.zt[i]?.cpuSeconds ?? Number.NaN;
    console.log(
      `| ${n.node} (${i === 0 ? 'source' : 'destination'}) | ${perK(meshCpu, ml?.received ?? Number.NaN)} | ${perK(idleCpu, pl?.received ?? Number.NaN)} | ${perK(connCpu, mc?.completed ?? Number.NaN)} | ${mib(idle[i]!.rss)} | ${mib(mesh.latency?.zt[i]?.rssAfter ?? Number.NaN)} | ${mib(peak[i]!.peakRss)} |`,
    );
  });
  console.log(
    `\nIstio 1.27 published (upstream ztunnel): 0.06 vCPU and 12 MB per 1000 rps; +0.17 ms p90, +0.20 ms p99 over no mesh.`,
  );
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(cluster: Cluster): Promise<void> {
  const status = await installMesh(cluster, {
    // The machine may be shared with other builds: give ztunnel longer than the default 60 s.
    ztunnelTimeoutMs: 180_000,
    progress: l => {
      log(`mesh: ${l}`);
    },
  });
  const notReady = status.components.filter(c => !c.ready);
  if (notReady.length > 0) throw new Error(`mesh not ready: ${JSON.stringify(notReady)}`);

  for (const side of sides) await deploy(cluster, side);
  for (const side of sides) {
    const server = await podReady(cluster, side, 'server');
    const load = await podReady(cluster, side, 'load');
    side.serverIp = server.ip;
    side.loadNetns = load.netns;
    if (side.mode === 'L4 mesh') await inZtunnelConfig(cluster, [server.ip, load.ip]);
    await loadPodAnswering(
      `the load pod of ${side.namespace} answering on its control port`,
      side.loadNetns,
      CONTROL_PORT,
    );
    log(`${side.mode}: load ${load.ip} (node-0) -> server ${server.ip} (node-1)`);
  }

  const zpods = await ztunnelPods(cluster.client, cluster.layout);
  const z: Ztunnels = {
    nodes: ['node-0', 'node-1'].map(node => {
      const p = zpods.find(x => x.node === node);
      if (p === undefined) throw new Error(`no running ztunnel on ${node}`);
      const pids = findProcesses(p.netns, ZTUNNEL_MARKER);
      if (pids.length === 0) throw new Error(`no ztunnel process found in ${p.netns}`);
      return { node, pids };
    }),
  };

  // Warm-up: certificates, the HBONE pool, JIT of every path.
  for (const side of sides) {
    await order(side, '/connect?seconds=1&concurrency=2', 30);
    await order(side, `/latency?seconds=2&rate=${RATE}&conns=${CONNECTIONS}`, 40);
    await order(side, '/bulk?mib=32', 60);
  }
  const idle = sampleZtunnels(z);

  const results = new Map<string, SideResult>(sides.map(s => [s.mode, {}]));
  for (const side of sides) {
    const r = results.get(side.mode)!;
    const { result: b, zt } = await measured(z, () => order<Bulk>(side, `/bulk?mib=${BULK_MIB}`, 600));
    r.bulkZt = zt;
    if (b.counted !== BULK_MIB * MiB) throw new Error(`${side.mode}: sink counted ${b.counted} bytes`);
    r.bulk = b;
    log(`${side.mode}: bulk ${b.mibPerSecond.toFixed(0)} MiB/s`);
  }
  for (const side of sides) {
    const r = results.get(side.mode)!;
    r.latency = await measured(z, () =>
      order<Latency>(
        side,
        `/latency?seconds=${LATENCY_SECONDS}&rate=${RATE}&conns=${CONNECTIONS}`,
        LATENCY_SECONDS + 60,
      ),
    );
    log(`${side.mode}: latency p50 ${ms(r.latency.result.p50)} p99 ${ms(r.latency.result.p99)}`);
  }
  for (const side of sides) {
    const r = results.get(side.mode)!;
    r.connect = await measured(z, () =>
      order<Connect>(
        side,
        `/connect?seconds=${CONNECT_SECONDS}&concurrency=${CONCURRENCY}`,
        CONNECT_SECONDS + 60,
      ),
    );
    log(`${side.mode}: ${r.connect.result.perSecond.toFixed(0)} new connections/s`);
  }
  const peak = sampleZtunnels(z);

  // The mesh run went through both ztunnels over mTLS; the no-mesh run did not touch them.
  const metrics = await Promise.all(zpods.map(p => ztunnelMetrics(p)));
  const counted = (ns: string): number =>
    metrics
      .flatMap(m => mtlsConnections(m))
      .filter(
        s =>
          s.labels.reporter === 'destination' &&
          s.labels.source_principal === `spiffe://cluster.local/ns/${ns}/sa/load`,
      )
      .reduce((n, s) => n + s.value, 0);
  const meshCount = counted('l4b-mesh');
  const plainCount = counted('l4b-plain');
  if (meshCount === 0)
    throw new Error('the destination ztunnel counted no mTLS connection from the mesh load pod');
  if (plainCount !== 0) throw new Error('ztunnel counted connections of the no-mesh namespace');

  // Idle again for L4_BENCH_SETTLE_SECONDS: does each ztunnel give the runs' memory back?
  const settleSeconds = Number(process.env.L4_BENCH_SETTLE_SECONDS ?? 30);
  await new Promise(resolve => setTimeout(resolve, settleSeconds * 1000));
  const settled = sampleZtunnels(z);

  report(results, idle, z, peak);
  console.log(
    `\nztunnel RSS ${settleSeconds} s after the runs (idle): ${z.nodes.map((n, i) => `${n.node} ${(settled[i]!.rss / MiB).toFixed(1)} MiB`).join(', ')}.`,
  );
  console.log(
    `\nChecked: the destination ztunnel counted ${meshCount} mTLS connections (connection_security_policy=mutual_tls) from spiffe://cluster.local/ns/l4b-mesh/sa/load, none from the no-mesh namespace.`,
  );
  console.log(
    `Settings: bulk ${BULK_MIB} MiB, latency ${LATENCY_SECONDS} s at ${RATE} rps over ${CONNECTIONS} connections, new connections ${CONNECT_SECONDS} s with ${CONCURRENCY} in parallel.`,
  );
}

// L4_BENCH_CLUSTER / L4_BENCH_SLOT: another cluster name and slot, to run beside other clusters.
await runOnCluster(
  'l4',
  { name: process.env.L4_BENCH_CLUSTER ?? 'l4bench', slot: Number(process.env.L4_BENCH_SLOT ?? 11) },
  log,
  main,
);
