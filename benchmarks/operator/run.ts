// operator: on a 2-node local cluster, the time from applying Sail's ambient resources (`Istio`
// and `IstioCNI` with profile ambient, `ZTunnel` `default`) to all three Ready=True, beside the
// same mesh installed from `deploy/` by the install package (`installMesh`, waiting for istiod,
// the cni-agent and ztunnel Ready) in the same run; then the operator's CPU at rest (nothing
// changing) and its reconciles over the window, beside istiod's CPU in the same window. Needs root.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/operator/run.ts
// Env: OP_BENCH_ROUNDS (operator installs, default 2), OP_BENCH_REST_SECONDS (default 60).
import { readFileSync, readdirSync } from 'node:fs';
import {
  ambientCrs,
  installMesh,
  installOperator,
  OPERATOR_NAMESPACE,
  podNetnsName,
  runCommand,
  sailPath,
  startCluster,
  uninstallMesh,
  waitFor,
  waitSailReady,
} from '@ambient-mesh/e2e';
import type { Cluster } from '@ambient-mesh/e2e';

const ROUNDS = Number(process.env.OP_BENCH_ROUNDS ?? 2);
const REST_SECONDS = Number(process.env.OP_BENCH_REST_SECONDS ?? 60);
const CLOCK_TICKS = 100;
const KINDS = ['istios', 'istiocnis', 'ztunnels'] as const;

if (process.getuid?.() !== 0) {
  console.error('benchmarks/operator needs root (it starts a local cluster: network namespaces, nftables)');
  process.exit(2);
}

const log = (line: string): void => {
  console.error(`[operator-bench] ${line}`);
};

interface PodView {
  readonly metadata?: { readonly name?: string; readonly uid?: string };
  readonly status?: { readonly phase?: string };
}

/** The pid of the process running `marker` for the pod `podName` (its POD_NAME). */
function pidOf(marker: string, podName: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes(marker)) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`POD_NAME=${podName}`)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no process ${marker} for pod ${podName}`);
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function runningPod(cluster: Cluster, namespace: string, selector: string): Promise<PodView> {
  return waitFor(
    `a running pod ${namespace}/${selector}`,
    async () =>
      (
        await cluster.client.list<PodView>(`/api/v1/namespaces/${namespace}/pods`, {
          labelSelector: selector,
        })
      ).items.find(p => p.status?.phase === 'Running'),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

async function reconciles(cluster: Cluster, pod: PodView): Promise<number> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      podNetnsName(cluster.layout, pod.metadata?.uid ?? ''),
      'curl',
      '-s',
      '--max-time',
      '5',
      'http://127.0.0.1:8080/metrics',
    ],
    { allowFailure: true },
  );
  let n = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^controller_runtime_reconcile_total\{[^}]*\} (\d+)/.exec(line);
    if (m !== null) n += Number(m[1]);
  }
  return n;
}

async function ensureNamespace(cluster: Cluster, name: string): Promise<void> {
  await cluster.client.ensure('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  });
}

/** Applies the three CRs; answers seconds until each is Ready and until all are. */
async function operatorInstall(cluster: Cluster): Promise<{ each: Record<string, number>; all: number }> {
  for (const ns of ['istio-system', 'istio-cni']) await ensureNamespace(cluster, ns);
  const t0 = performance.now();
  for (const { path, body } of ambientCrs({ cniNamespace: 'istio-cni', ztunnelNamespace: 'istio-system' })) {
    await cluster.client.create(path, body);
  }
  const each: Record<string, number> = {};
  await Promise.all(
    KINDS.map(async kind => {
      await waitSailReady(cluster.client, sailPath(kind, 'default'), 300_000);
      each[kind] = (performance.now() - t0) / 1000;
    }),
  );
  return { each, all: (performance.now() - t0) / 1000 };
}

/** Deletes the three CRs and waits until the mesh's pods are gone. */
async function operatorUninstall(cluster: Cluster): Promise<void> {
  for (const kind of KINDS) await cluster.client.delete(sailPath(kind, 'default'));
  await waitFor(
    'the CRs and the mesh pods gone',
    async () => {
      for (const kind of KINDS)
        if ((await cluster.client.find(sailPath(kind, 'default'))) !== undefined) return undefined;
      for (const ns of ['istio-system', 'istio-cni']) {
        if ((await cluster.client.list(`/api/v1/namespaces/${ns}/pods`)).items.length > 0) return undefined;
      }
      return true;
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

const cluster = await startCluster({ name: 'opbench', slot: 79, nodes: 2, progress: log });
const rows: string[] = [];
try {
  await installOperator(cluster, log);

  log('baseline: installMesh from deploy/');
  const b0 = performance.now();
  const status = await installMesh(cluster, { istiodReplicas: 1, progress: log });
  const baseline = (performance.now() - b0) / 1000;
  log(
    `installMesh: ${baseline.toFixed(1)} s (${status.components.map(c => `${c.name} ${c.ready ? 'Ready' : 'not Ready'}`).join(', ')})`,
  );
  await uninstallMesh(cluster, { progress: log });
  // uninstallMesh removes the mesh's CRDs too: put them (and the operator) back.
  await installOperator(cluster, log);
  rows.push(`| \`installMesh\` from \`deploy/\` (baseline) | ${baseline.toFixed(1)} s | |`);

  for (let round = 1; round <= ROUNDS; round++) {
    const r = await operatorInstall(cluster);
    log(
      `round ${round}: all Ready ${r.all.toFixed(1)} s (${KINDS.map(k => `${k} ${r.each[k]?.toFixed(1)} s`).join(', ')})`,
    );
    rows.push(
      `| operator, round ${round}: the three CRs applied → all Ready=True | ${r.all.toFixed(1)} s | ${KINDS.map(k => `${k} ${r.each[k]?.toFixed(1)} s`).join(', ')} |`,
    );
    if (round < ROUNDS) await operatorUninstall(cluster);
  }

  // At rest: nothing changes; only the resync (every 60 s) reconciles.
  const operatorPod = await runningPod(cluster, OPERATOR_NAMESPACE, 'app=ambient-mesh-operator');
  const istiodPod = await runningPod(cluster, 'istio-system', 'app=istiod');
  const opPid = pidOf('apps/operator/src/main.ts', operatorPod.metadata?.name ?? '');
  const istiodPid = pidOf('apps/istiod/src/main.ts', istiodPod.metadata?.name ?? '');
  await new Promise(r => setTimeout(r, 10_000));
  const [op0, is0, rec0] = [cpuSeconds(opPid), cpuSeconds(istiodPid), await reconciles(cluster, operatorPod)];
  await new Promise(r => setTimeout(r, REST_SECONDS * 1000));
  const [op1, is1, rec1] = [cpuSeconds(opPid), cpuSeconds(istiodPid), await reconciles(cluster, operatorPod)];
  const perMinute = (x: number): string => `${((x * 60_000) / REST_SECONDS).toFixed(0)} ms CPU per minute`;
  log(
    `at rest for ${REST_SECONDS} s: operator ${perMinute(op1 - op0)}, ${rec1 - rec0} reconciles; istiod ${perMinute(is1 - is0)}`,
  );
  rows.push(
    `| operator at rest (${REST_SECONDS} s) | ${perMinute(op1 - op0)} | ${rec1 - rec0} reconciles (resync every 60 s, 4 CRs) |`,
  );
  rows.push(`| istiod at rest, same window (reference) | ${perMinute(is1 - is0)} | |`);
} finally {
  await cluster.stop();
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`Load average at the end: ${load}\n`);
console.log('| measured | time | detail |');
console.log('|---|---|---|');
for (const r of rows) console.log(r);
