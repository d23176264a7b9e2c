// `npm run cluster -- up | down | status | logs <ns>/<pod>[/<container>] | reap`
//
//   up     [--nodes N] [--name NAME] [--slot S] [--provider local|kind] [--ip-families IPv4,IPv6]
//          starts the cluster in a background harness process and prints the kubeconfig path
//   down   [--name NAME]   stops it and removes every netns, process and file it made
//   status [--name NAME]   harness pid, nodes and their readiness
//   logs   <ns>/<pod>[/<container>] [--previous]  a container's log (same as `kubectl logs`)
//   reap   [--name NAME]   removes what a crashed run left behind
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '@ambient-mesh/errors';
import { startCluster } from './cluster.ts';
import { runCommand, waitFor } from './exec.ts';
import { startKindCluster } from './kind/kind-provider.ts';
import { KubeClient } from '@ambient-mesh/kube';
import { clusterLayout, defaultCacheRoot } from './layout.ts';
import type { ClusterIpFamily } from './layout.ts';
import { leftovers, pidAlive, readState, reapCluster } from './reaper.ts';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** `--ip-families IPv4` (default) or `IPv4,IPv6` (dual-stack). */
function ipFamilies(args: string[]): ClusterIpFamily[] {
  return (flag(args, '--ip-families') ?? 'IPv4').split(',').map(f => f.trim() as ClusterIpFamily);
}

function harnessLog(name: string): string {
  return join(defaultCacheRoot(), 'cluster', `${name}.harness.log`);
}

async function up(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const nodes = Number(flag(args, '--nodes') ?? '2');
  const slot = Number(flag(args, '--slot') ?? '0');
  if (flag(args, '--provider') === 'kind') {
    const c = await startKindCluster({ name, nodes: Number(flag(args, '--nodes') ?? '3'), progress: say });
    say(`kubeconfig: ${c.kubeconfig}`);
    return 0;
  }
  const layout = clusterLayout(name, slot, defaultCacheRoot(), ipFamilies(args));
  const state = readState(layout);
  if (state !== undefined && pidAlive(state.ownerPid)) {
    say(`cluster '${name}' is already up (harness pid ${state.ownerPid})`);
    say(`kubeconfig: ${state.kubeconfig}`);
    return 0;
  }
  // The cluster lives in a detached harness process (this file's `serve`), so `up` returns.
  const log = harnessLog(name);
  await mkdir(join(defaultCacheRoot(), 'cluster'), { recursive: true });
  await rm(log, { force: true });
  const fd = openSync(log, 'a');
  const child = spawn(
    process.execPath,
    [
      '--conditions=@ambient-mesh/source',
      fileURLToPath(import.meta.url),
      'serve',
      '--name',
      name,
      '--nodes',
      String(nodes),
      '--slot',
      String(slot),
      '--ip-families',
      layout.ipFamilies.join(','),
    ],
    { detached: true, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  child.unref();
  let printed = 0;
  let exited = false;
  child.on('exit', () => (exited = true));
  const result = await waitFor(
    'the cluster to come up',
    () => {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      const lines = text.split('\n');
      for (; printed < lines.length - 1; printed++) say(lines[printed]!);
      if (text.includes('READY ')) return 'ready';
      if (exited || text.includes('FAILED ')) return 'failed';
      return undefined;
    },
    { timeoutMs: 30 * 60_000, intervalMs: 300 },
  );
  if (result === 'failed') {
    say(`cluster '${name}' failed to start; full log: ${log}`);
    return 1;
  }
  say(`export KUBECONFIG=${join(layout.stateDir, 'kubeconfig')}`);
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const started = Date.now();
  const progress = (line: string): void => {
    say(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
  };
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  try {
    cluster = await startCluster({
      name,
      nodes: Number(flag(args, '--nodes') ?? '2'),
      slot: Number(flag(args, '--slot') ?? '0'),
      ipFamilies: ipFamilies(args),
      progress,
    });
  } catch (e) {
    say(`FAILED ${errorMessage(e)}`);
    return 1;
  }
  say(`READY ${cluster.kubeconfig}`);
  await new Promise<void>(resolve => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await cluster.stop();
  say('STOPPED');
  return 0;
}

async function down(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const state = readState(clusterLayout(name, 0));
  const layout = clusterLayout(name, state?.slot ?? 0);
  if (state !== undefined && pidAlive(state.ownerPid)) {
    say(`stopping cluster '${name}' (harness pid ${state.ownerPid})`);
    process.kill(state.ownerPid, 'SIGTERM');
    await waitFor('the harness to stop', () => (pidAlive(state.ownerPid) ? undefined : true), {
      timeoutMs: 120_000,
    });
  }
  const r = await reapCluster(layout, runCommand);
  await rm(harnessLog(name), { force: true });
  const left = await leftovers(layout, runCommand);
  const total = left.netns.length + left.processes.length + left.links.length + left.nftTables.length;
  say(
    total === 0 ? `cluster '${name}' is down; nothing left behind` : `left behind: ${JSON.stringify(left)}`,
  );
  if (r.processes + r.netns > 0) say(`(reaped ${r.processes} processes, ${r.netns} netns)`);
  return total === 0 ? 0 : 1;
}

async function status(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const state = readState(clusterLayout(name, 0));
  if (state === undefined || !pidAlive(state.ownerPid)) {
    say(`cluster '${name}' is not running`);
    return 1;
  }
  say(`cluster '${name}': harness pid ${state.ownerPid}, up since ${state.startedAt}`);
  say(`kubeconfig: ${state.kubeconfig}`);
  const client = KubeClient.fromFile(state.kubeconfig);
  const nodes = await client.get<{
    items: {
      metadata: { name: string };
      status?: { conditions?: { type: string; status: string }[]; addresses?: { address: string }[] };
    }[];
  }>('/api/v1/nodes');
  for (const n of nodes.items) {
    const ready = n.status?.conditions?.find(c => c.type === 'Ready')?.status === 'True';
    say(`  ${n.metadata.name}\t${ready ? 'Ready' : 'NotReady'}\t${n.status?.addresses?.[0]?.address ?? ''}`);
  }
  const pods = await client.get<{ items: unknown[] }>('/api/v1/pods');
  say(`  ${pods.items.length} pods`);
  return 0;
}

async function logs(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const target = args.find(a => a.includes('/') && !a.startsWith('--'));
  const state = readState(clusterLayout(name, 0));
  if (target === undefined || state === undefined) {
    say('usage: logs <namespace>/<pod>[/<container>] [--previous] (with the cluster up)');
    return 2;
  }
  const [ns, pod, container] = target.split('/');
  const client = KubeClient.fromFile(state.kubeconfig);
  const text = await client.get<string>(`/api/v1/namespaces/${ns}/pods/${pod}/log`, {
    container,
    previous: args.includes('--previous') ? true : undefined,
  });
  process.stdout.write(text);
  return 0;
}

async function reap(args: string[]): Promise<number> {
  const name = flag(args, '--name') ?? 'local';
  const layout = clusterLayout(name, readState(clusterLayout(name, 0))?.slot ?? 0);
  const r = await reapCluster(layout, runCommand);
  say(`reaped: ${JSON.stringify(r)}`);
  return 0;
}

const [command = 'help', ...rest] = process.argv.slice(2);
const commands: Record<string, (a: string[]) => Promise<number>> = { up, down, status, logs, reap, serve };
const fn = commands[command];
if (fn === undefined) {
  say('usage: npm run cluster -- up [--nodes N] [--provider kind] | down | status | logs <ns>/<pod> | reap');
  process.exitCode = command === 'help' ? 0 : 2;
} else {
  fn(rest).then(
    code => {
      process.exitCode = code;
    },
    (e: unknown) => {
      say(`error: ${errorMessage(e)}`);
      process.exitCode = 1;
    },
  );
}
