// l7: pod A on node-0 -> pod B on node-1 of a 2-node local cluster with the mesh installed, both in
// one ambient namespace, through two Services that select B in the same run:
//   L4 only:  server-l4 (no waypoint): A's ztunnel -> HBONE mTLS -> B's ztunnel
//   L7:       server-l7 (`istio.io/use-waypoint: waypoint`): A's ztunnel -> HBONE -> the waypoint
//             (the namespace's Gateway of class istio-waypoint, deployed by istiod) -> HBONE -> B's
//             ztunnel
// Needs root. The workloads are the L4 benchmark's images (benchmarks/l4/bench-server.ts serves
// HTTP on 9003; benchmarks/l4/bench-load.ts runs the HTTP load on orders over A's loopback). The
// waypoint's and ztunnels' CPU and memory come from /proc of their processes.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/l7/run.ts
// Env: L7_BENCH_SECONDS (each run, default 10), L7_BENCH_RATES (fixed rates, default 200,1000),
// L7_BENCH_CONNECTIONS (default 8), L7_BENCH_STEP_SECONDS (ramp step, default 3), L7_BENCH_CLUSTER
// (the local cluster's name and slot, default l7bench:115).
import { loadavg } from 'node:os';
import {
  GATEWAY_PATH,
  ensureGatewayApiCrds,
  gatewayApiCrdObjects,
  installMesh,
  podNetnsName,
  readyWaypoint,
  runCommand,
  waitFor,
  waypointGateway,
  waypointMetrics,
  waypointRequests,
  ztunnelConfigDump,
  ztunnelPods,
} from '@ambient-mesh/e2e';
import type { Cluster, WaypointPod } from '@ambient-mesh/e2e';
import { loadPodAnswering, runOnCluster, type PodView } from '../l4/cluster-run.ts';
import { findProcesses, sampleProcesses } from '../l4/ztunnel-proc.ts';
import type { ProcSample } from '../l4/ztunnel-proc.ts';

const SECONDS = Number(process.env.L7_BENCH_SECONDS ?? 10);
/** The issue's 1000 rps, and a light rate a loaded 2-vCPU machine still sustains through the waypoint. */
const RATES = (process.env.L7_BENCH_RATES ?? '200,1000').split(',').map(Number);
const RATE = Math.max(...RATES);
const CONNECTIONS = Number(process.env.L7_BENCH_CONNECTIONS ?? 8);
const STEP_SECONDS = Number(process.env.L7_BENCH_STEP_SECONDS ?? 3);
const RAMP_RATES = [100, 200, 300, 500, 750, 1000, 1500, 2000, 3000];
/** Bisection steps between the last rate that held p99 < 10 ms and the first that did not. */
const RAMP_REFINE_STEPS = 3;
const P99_TARGET_MS = 10;
const [CLUSTER_NAME = 'l7bench', CLUSTER_SLOT = '115'] = (process.env.L7_BENCH_CLUSTER ?? '')
  .split(':')
  .filter(s => s !== '');
const CONTROL_PORT = 9100;
const HTTP_PORT = 9003;
const NS = 'l7b';
// Source (older builds) or the bundle the image ships (apps/ztunnel/dist/ztunnel.mjs).
const ZTUNNEL_MARKER = 'apps/ztunnel/';
// Source (older builds) or the bundle the image ships (apps/waypoint/dist/waypoint.mjs).
const WAYPOINT_MARKER = 'apps/waypoint/';
const MiB = 1024 * 1024;

const log = (line: string): void => {
  console.error(`[l7] ${line}`);
};

// ---------------------------------------------------------------------------------------------
// Cluster and workloads

function pod(name: string, node: string, image: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      nodeName: node,
      serviceAccountName: name,
      terminationGracePeriodSeconds: 1,
      containers: [{ name, image }],
    },
  };
}

function service(name: string, labels: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, labels },
    spec: { selector: { app: 'server' }, ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] },
  };
}

async function deploy(cluster: Cluster): Promise<void> {
  const c = cluster.client;
  await c.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  for (const sa of ['server', 'load'])
    await c.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace: NS },
    });
  await c.create(GATEWAY_PATH(NS), waypointGateway(NS));
  await c.create(
    `/api/v1/namespaces/${NS}/pods`,
    pod('server', 'node-1', 'ambient-mesh/l4-bench-server:0.1.0'),
  );
  await c.create(`/api/v1/namespaces/${NS}/pods`, pod('load', 'node-0', 'ambient-mesh/l4-bench-load:0.1.0'));
  await c.create(`/api/v1/namespaces/${NS}/services`, service('server-l4', {}));
  await c.create(
    `/api/v1/namespaces/${NS}/services`,
    service('server-l7', { 'istio.io/use-waypoint': 'waypoint' }),
  );
}

async function podReady(cluster: Cluster, name: string): Promise<{ ip: string; netns: string }> {
  return waitFor(
    `pod ${NS}/${name} Ready and enrolled`,
    async () => {
      const p = await cluster.client.get<PodView>(`/api/v1/namespaces/${NS}/pods/${name}`);
      const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
      if (!ready || p.metadata?.annotations?.['ambient.istio.io/redirection'] !== 'enabled') return undefined;
      return { ip: p.status.podIP ?? '', netns: podNetnsName(cluster.layout, p.metadata.uid ?? '') };
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

async function clusterIp(cluster: Cluster, name: string): Promise<string> {
  const s = await cluster.client.get<{ spec?: { clusterIP?: string } }>(
    `/api/v1/namespaces/${NS}/services/${name}`,
  );
  const ip = s.spec?.clusterIP;
  if (ip === undefined || ip === '' || ip === 'None')
    throw new Error(`service ${NS}/${name} has no ClusterIP`);
  return ip;
}

async function inZtunnelConfig(cluster: Cluster, ips: readonly string[]): Promise<void> {
  await waitFor(
    `workloads ${ips.join(', ')} in both ztunnels' config`,
    async () => {
      const zs = await ztunnelPods(cluster.client, cluster.layout);
      if (zs.length < 2) return undefined;
      for (const z of zs) {
        const workloads = ((await ztunnelConfigDump(z))?.workloads ?? []) as { workloadIps?: string[] }[];
        for (const ip of ips)
          if (!workloads.some(w => w.workloadIps?.includes(ip) === true)) return undefined;
      }
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Http {
  readonly sent: number;
  readonly received: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

let loadNetns = '';

/** One HTTP run in the load pod (rate 0: saturation); its JSON answer. */
async function http(host: string, rate: number, seconds: number): Promise<Http> {
  const url = `http://127.0.0.1:${CONTROL_PORT}/http?host=${host}&port=80&rate=${rate}&conns=${CONNECTIONS}&seconds=${seconds}`;
  const r = await runCommand(
    ['ip', 'netns', 'exec', loadNetns, 'curl', '-sS', '--max-time', String(seconds + 90), url],
    {
      allowFailure: true,
      timeoutMs: (seconds + 120) * 1000,
    },
  );
  if (r.code !== 0) throw new Error(`/http to ${host} failed: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  const body = JSON.parse(r.stdout) as Http & { error?: string };
  if (body.error !== undefined) throw new Error(`/http to ${host} failed in the load pod: ${body.error}`);
  return body;
}

interface Procs {
  readonly ztunnels: readonly { readonly node: string; readonly pids: readonly number[] }[];
  readonly waypoint: readonly number[];
}

interface Usage {
  readonly ztunnelCpu: number;
  readonly waypointCpu: number;
  readonly waypointRss: number;
}

function sample(p: Procs): { zt: ProcSample[]; wp: ProcSample } {
  return { zt: p.ztunnels.map(z => sampleProcesses(z.pids)), wp: sampleProcesses(p.waypoint) };
}

/** The 1-minute load average at the start of each measured run. */
const loads: number[] = [];

async function measured(p: Procs, run: () => Promise<Http>): Promise<{ result: Http; usage: Usage }> {
  loads.push(loadavg()[0]!);
  const before = sample(p);
  const result = await run();
  const after = sample(p);
  return {
    result,
    usage: {
      ztunnelCpu: after.zt.reduce((s, z, i) => s + z.cpuSeconds - before.zt[i]!.cpuSeconds, 0),
      waypointCpu: after.wp.cpuSeconds - before.wp.cpuSeconds,
      waypointRss: after.wp.rss,
    },
  };
}

/**
 * The highest rate whose fixed-rate step keeps p99 < 10 ms without errors: up RAMP_RATES to the
 * first step that misses, then RAMP_REFINE_STEPS bisections between the last step that held and
 * that one (to 10 rps). At most RAMP_RATES.length + RAMP_REFINE_STEPS steps.
 */
async function ramp(host: string): Promise<{ maxRate: number; steps: string[] }> {
  let maxRate = 0;
  let missed: number | undefined;
  const steps: string[] = [];
  const step = async (rate: number): Promise<boolean> => {
    const r = await http(host, rate, STEP_SECONDS);
    steps.push(`${rate}: p99 ${r.p99.toFixed(1)} ms${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
    return r.errors === 0 && r.p99 < P99_TARGET_MS;
  };
  for (const rate of RAMP_RATES) {
    if (!(await step(rate))) {
      missed = rate;
      break;
    }
    maxRate = rate;
  }
  for (let i = 0; i < RAMP_REFINE_STEPS && missed !== undefined && maxRate > 0; i++) {
    const rate = Math.round((maxRate + missed) / 20) * 10;
    if (rate <= maxRate || rate >= missed) break;
    if (await step(rate)) maxRate = rate;
    else missed = rate;
  }
  return { maxRate, steps };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(cluster: Cluster): Promise<void> {
  const gatewayApiCrds = gatewayApiCrdObjects(
    await ensureGatewayApiCrds(l => {
      log(`mesh: ${l}`);
    }),
  );
  const status = await installMesh(cluster, {
    gatewayApiCrds,
    ztunnelTimeoutMs: 180_000,
    progress: l => {
      log(`mesh: ${l}`);
    },
  });
  const notReady = status.components.filter(c => !c.ready);
  if (notReady.length > 0) throw new Error(`mesh not ready: ${JSON.stringify(notReady)}`);

  await deploy(cluster);
  const server = await podReady(cluster, 'server');
  const load = await podReady(cluster, 'load');
  loadNetns = load.netns;
  await inZtunnelConfig(cluster, [server.ip, load.ip]);
  const waypoint: WaypointPod = await readyWaypoint(cluster.client, cluster.layout, NS, 'waypoint', 300_000);
  const l4Ip = await clusterIp(cluster, 'server-l4');
  const l7Ip = await clusterIp(cluster, 'server-l7');
  log(
    `load ${load.ip} (node-0) -> server ${server.ip} (node-1); server-l4 ${l4Ip}, server-l7 ${l7Ip}; waypoint ${waypoint.name} on ${waypoint.node}`,
  );
  await loadPodAnswering('the load pod answering on its control port', loadNetns, CONTROL_PORT);
  // The client's ztunnel sends to the waypoint once WDS names it on server-l7.
  await waitFor(
    'requests to server-l7 counted by the waypoint',
    async () => {
      await http(l7Ip, 20, 1).catch(() => undefined);
      return waypointRequests(await waypointMetrics(waypoint)).some(
        s => s.labels.destination_service_name === 'server-l7',
      )
        ? true
        : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );

  const zpods = await ztunnelPods(cluster.client, cluster.layout);
  const procs: Procs = {
    ztunnels: ['node-0', 'node-1'].map(node => {
      const p = zpods.find(x => x.node === node);
      if (p === undefined) throw new Error(`no running ztunnel on ${node}`);
      const pids = findProcesses(p.netns, ZTUNNEL_MARKER);
      if (pids.length === 0) throw new Error(`no ztunnel process found in ${p.netns}`);
      return { node, pids };
    }),
    waypoint: findProcesses(waypoint.netns, WAYPOINT_MARKER),
  };
  if (procs.waypoint.length === 0) throw new Error(`no waypoint process found in ${waypoint.netns}`);
  const idle = sample(procs);

  // Warm-up: certificates, the HBONE pools, JIT of every path (5 s closed loop each).
  for (const ip of [l4Ip, l7Ip]) await http(ip, 0, 5);

  const sides = [
    { name: 'L4 only', ip: l4Ip },
    { name: 'L7 (waypoint)', ip: l7Ip },
  ] as const;
  /** `<side> @ <rate>` -> its fixed-rate run. */
  const fixed = new Map<string, { result: Http; usage: Usage }>();
  const saturation = new Map<string, { result: Http; usage: Usage }>();
  const ramps = new Map<string, { maxRate: number; steps: string[] }>();
  for (const rate of RATES)
    for (const side of sides) {
      const r = await measured(procs, () => http(side.ip, rate, SECONDS));
      fixed.set(`${side.name} @ ${rate}`, r);
      log(`${side.name}: ${rate} rps p50 ${r.result.p50.toFixed(3)} p99 ${r.result.p99.toFixed(3)} ms`);
    }
  for (const side of sides) {
    const r = await measured(procs, () => http(side.ip, 0, SECONDS));
    saturation.set(side.name, r);
    log(`${side.name}: saturation ${r.result.rps.toFixed(0)} rps`);
  }
  for (const side of sides) {
    const r = await ramp(side.ip);
    ramps.set(side.name, r);
    log(`${side.name}: max rps with p99 < ${P99_TARGET_MS} ms: ${r.maxRate} (${r.steps.join('; ')})`);
  }
  const peak = sample(procs);

  // Proof of the paths: the waypoint counted the L7 requests and none of the L4 ones.
  const samples = waypointRequests(await waypointMetrics(waypoint));
  const count = (svc: string): number =>
    samples.filter(s => s.labels.destination_service_name === svc).reduce((n, s) => n + s.value, 0);
  const l7Count = count('server-l7');
  const l4Count = count('server-l4');
  if (l7Count < (fixed.get(`L7 (waypoint) @ ${RATE}`)?.result.received ?? 0))
    throw new Error(`the waypoint counted ${l7Count} requests to server-l7, fewer than were answered`);
  if (l4Count !== 0) throw new Error(`the waypoint counted ${l4Count} requests to server-l4 (L4 only)`);

  // Report
  const f = (n: number | undefined, d = 3): string =>
    n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(d);
  const l4s = saturation.get('L4 only')!;
  const l7s = saturation.get('L7 (waypoint)')!;
  const rows: string[][] = [];
  const per1000 = (cpu: number, n: number): string => f((cpu / n) * 1000);
  for (const rate of RATES) {
    const l4 = fixed.get(`L4 only @ ${rate}`)!;
    const l7 = fixed.get(`L7 (waypoint) @ ${rate}`)!;
    for (const p of ['p50', 'p90', 'p99', 'max'] as const)
      rows.push([
        `1 KiB HTTP/1.1 POST ${p} at ${rate} rps, ${CONNECTIONS} conns (ms)`,
        f(l4.result[p]),
        f(l7.result[p]),
        `${l7.result[p] - l4.result[p] >= 0 ? '+' : ''}${f(l7.result[p] - l4.result[p])}`,
      ]);
    rows.push([
      `answered / sent (errors) at ${rate} rps`,
      `${l4.result.received} / ${l4.result.sent} (${l4.result.errors})`,
      `${l7.result.received} / ${l7.result.sent} (${l7.result.errors})`,
      '',
    ]);
    rows.push([
      `ztunnels' CPU-s per 1000 requests at ${rate} rps (both nodes)`,
      per1000(l4.usage.ztunnelCpu, l4.result.received),
      per1000(l7.usage.ztunnelCpu, l7.result.received),
      '',
    ]);
    rows.push([
      `waypoint CPU-s per 1000 requests at ${rate} rps`,
      '',
      per1000(l7.usage.waypointCpu, l7.result.received),
      '',
    ]);
  }
  rows.push(['saturation requests/s', f(l4s.result.rps, 0), f(l7s.result.rps, 0), '']);
  for (const p of ['p50', 'p99'] as const)
    rows.push([`saturation ${p} (ms)`, f(l4s.result[p]), f(l7s.result[p]), '']);
  rows.push([
    `max rps with p99 < ${P99_TARGET_MS} ms (0: not even ${RAMP_RATES[0]})`,
    String(ramps.get('L4 only')?.maxRate),
    String(ramps.get('L7 (waypoint)')?.maxRate),
    '',
  ]);
  rows.push([
    'waypoint CPU-s per 1000 requests at saturation',
    '',
    per1000(l7s.usage.waypointCpu, l7s.result.received),
    '',
  ]);
  rows.push([
    `waypoint RSS: idle / after the ${RATE} rps run / peak (VmHWM) (MiB)`,
    '',
    `${f(idle.wp.rss / MiB, 0)} / ${f((fixed.get(`L7 (waypoint) @ ${RATE}`)?.usage.waypointRss ?? NaN) / MiB, 0)} / ${f(peak.wp.peakRss / MiB, 0)}`,
    '',
  ]);
  console.log('### pod A (node-0) -> Service -> pod B (node-1)\n');
  console.log('| measure | L4 only | L7 (waypoint) | difference |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('');
  for (const [name, r] of ramps) console.log(`Ramp ${name}: ${r.steps.join('; ')}`);
  console.log(
    `\nChecked: the waypoint counted ${l7Count} requests to server-l7 (istio_requests_total{reporter="waypoint"}), none to server-l4.`,
  );
  console.log(
    `Settings: ${SECONDS} s per run, ${RATES.join(' and ')} rps over ${CONNECTIONS} kept-alive connections, saturation ${CONNECTIONS} in flight, ramp steps of ${STEP_SECONDS} s; load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} at the start of the measured runs.`,
  );
  console.log('Istio 1.24 published (Envoy waypoint): 0.25 vCPU and 60 MB per 1000 rps.');
}

await runOnCluster('l7', { name: CLUSTER_NAME, slot: Number(CLUSTER_SLOT) }, log, main);
