import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from './exec.ts';
import { NAME_PREFIX, type ClusterLayout } from './layout.ts';
import { ledgerPath, removeMountPoints } from './kubelet/mounts.ts';

export interface ClusterState {
  readonly name: string;
  readonly slot: number;
  /** The harness process that owns the cluster. */
  readonly ownerPid: number;
  readonly kubeconfig: string;
  readonly nodes: readonly string[];
  readonly startedAt: string;
}

export function statePath(layout: ClusterLayout): string {
  return join(layout.stateDir, 'state.json');
}

export function readState(layout: ClusterLayout): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(layout), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a `/proc/<pid>/cmdline` (arguments separated by NUL) names `dir` or a path inside it.
 * A path that only starts with the same characters does not count: cluster `con`'s state dir
 * `.../cluster/con` must not match the processes of cluster `conf104` (`.../cluster/conf104/...`).
 */
export function cmdlineMentionsDir(cmdline: string, dir: string): boolean {
  let from = 0;
  for (let i = cmdline.indexOf(dir, from); i >= 0; i = cmdline.indexOf(dir, from)) {
    const next = cmdline[i + dir.length];
    if (next === undefined || next === '/' || next === '\0' || /[\s:;,"'=]/.test(next)) return true;
    from = i + 1;
  }
  return false;
}

/** Pids (other than ours) whose command line names `dir` or a path inside it. */
export function pidsUsingDir(dir: string): number[] {
  return pidsWhere(cmd => cmdlineMentionsDir(cmd, dir));
}

/** Pids (other than ours) whose command line mentions `needle`. */
export function pidsMentioning(needle: string): number[] {
  return pidsWhere(cmd => cmd.includes(needle));
}

function pidsWhere(match: (cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (match(cmd)) out.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export interface ReapReport {
  readonly processes: number;
  readonly netns: number;
  readonly links: number;
  readonly mountPoints: number;
}

/**
 * Removes everything a (possibly crashed) cluster left behind: processes whose command line
 * names its state dir, processes inside its netns, its netns (`am-<name>-*`), its root link,
 * the mount points its kubelets created, and its state dir. Safe to run on a clean machine.
 */
export async function reapCluster(layout: ClusterLayout, run: CommandRunner): Promise<ReapReport> {
  let processes = 0;
  const kill = (pid: number): void => {
    try {
      process.kill(pid, 'SIGKILL');
      processes++;
    } catch {
      // gone
    }
  };
  for (const pid of pidsUsingDir(layout.stateDir)) kill(pid);
  const prefix = `${NAME_PREFIX}${layout.name}-`;
  const list = await run(['ip', 'netns', 'list'], { allowFailure: true });
  const names = list.stdout
    .split('\n')
    .map(l => l.split(' ')[0] ?? '')
    .filter(n => n.startsWith(prefix));
  for (const ns of names) {
    const pids = await run(['ip', 'netns', 'pids', ns], { allowFailure: true });
    for (const p of pids.stdout.split('\n').filter(Boolean)) kill(Number(p));
  }
  // Pod netns first, node netns next, the fabric last.
  const order = (n: string): number => (n.includes('-p-') ? 0 : n.endsWith('-fabric') ? 2 : 1);
  names.sort((a, b) => order(a) - order(b));
  for (const ns of names) await run(['ip', 'netns', 'del', ns], { allowFailure: true });
  let links = 0;
  const link = await run(['ip', 'link', 'show', layout.rootLink], { allowFailure: true });
  if (link.code === 0) {
    await run(['ip', 'link', 'del', layout.rootLink], { allowFailure: true });
    links++;
  }
  const mountPoints = await removeMountPoints(ledgerPath(layout.stateDir));
  if (existsSync(layout.stateDir)) await rm(layout.stateDir, { recursive: true, force: true });
  return { processes, netns: names.length, links, mountPoints };
}

/** Whatever of this cluster is still present (empty arrays mean nothing is left). */
export async function leftovers(
  layout: ClusterLayout,
  run: CommandRunner,
): Promise<{ netns: string[]; processes: number[]; links: string[]; nftTables: string[] }> {
  const prefix = `${NAME_PREFIX}${layout.name}-`;
  const list = await run(['ip', 'netns', 'list'], { allowFailure: true });
  const netns = list.stdout
    .split('\n')
    .map(l => l.split(' ')[0] ?? '')
    .filter(n => n.startsWith(prefix));
  const link = await run(['ip', 'link', 'show', layout.rootLink], { allowFailure: true });
  const tables = await run(['nft', 'list', 'tables'], { allowFailure: true });
  const nftTables = tables.stdout
    .split('\n')
    .filter(l => /\b(am_|kube-proxy)/.test(l))
    .map(l => l.trim());
  return {
    netns,
    processes: pidsUsingDir(layout.stateDir),
    links: link.code === 0 ? [layout.rootLink] : [],
    nftTables,
  };
}
