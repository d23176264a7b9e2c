import { existsSync, statSync } from 'node:fs';
import { appendFile, mkdir, readFile, readdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** One bind mount inside a container's mount namespace. */
export interface BindMount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** `mountPropagation` HostToContainer/Bidirectional: the container sees later host mounts. */
  readonly propagation?: boolean;
}

/** The container's mount namespace receives host mounts when any of its mounts asks for it. */
export function propagationMode(mounts: readonly BindMount[]): 'slave' | 'private' {
  return mounts.some(m => m.propagation === true) ? 'slave' : 'private';
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * A host directory the container's command needs (the repository, the Node binary) that must stay
 * visible even when a volume is mounted over one of its ancestors (an `emptyDir` at `/tmp` while
 * the repository lives under `/tmp`). `stash` is an empty host directory no volume shadows.
 */
export interface KeepVisible {
  readonly path: string;
  readonly stash: string;
}

const isStrictAncestor = (dir: string, path: string): boolean =>
  path.startsWith(`${dir.replace(/\/+$/, '')}/`);

/**
 * The order of the binds: a volume mounted over a host directory that holds other volumes' sources
 * (a ConfigMap at the home directory while the node's pod volumes live under it) is bound after
 * them, so their sources are still visible when they are bound. Otherwise the pod's order.
 */
export function bindOrder(binds: readonly BindMount[]): BindMount[] {
  const shadowsSource = (m: BindMount): boolean =>
    binds.some(o => o !== m && (o.source === m.target || isStrictAncestor(m.target, o.source)));
  return [...binds.filter(m => !shadowsSource(m)), ...binds.filter(shadowsSource)];
}

/**
 * The `sh -c` script run inside `unshare --mount --propagation private`: it bind-mounts each
 * volume at its mountPath (the new mount namespace keeps this private to the container) and
 * then execs the container's argv ("$@"). Each `keep` directory that a volume would shadow is
 * bound to its stash first and bound back at its own path after the volumes.
 */
export function mountScript(
  mounts: readonly BindMount[],
  workingDir: string | undefined,
  keep: readonly KeepVisible[] = [],
): string {
  const lines = ['set -e'];
  // A shared host path mounted at its own place needs no bind (and a bind would cut it off
  // from the host's later mounts, such as new netns).
  const binds = bindOrder(mounts.filter(m => m.source !== m.target));
  const shadowed = keep.filter(k => binds.some(m => isStrictAncestor(m.target, k.path)));
  for (const k of shadowed) lines.push(`mount --bind ${shellQuote(k.path)} ${shellQuote(k.stash)}`);
  for (const m of binds) {
    lines.push(`mount --bind ${shellQuote(m.source)} ${shellQuote(m.target)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${shellQuote(m.target)}`);
  }
  for (const k of shadowed) {
    lines.push(`mkdir -p ${shellQuote(k.path)}`, `mount --bind ${shellQuote(k.stash)} ${shellQuote(k.path)}`);
  }
  if (workingDir !== undefined && workingDir !== '') lines.push(`cd ${shellQuote(workingDir)}`);
  lines.push('exec "$@"');
  return lines.join('\n');
}

/**
 * Creates missing mount points on the host filesystem (a bind mount needs an existing target)
 * and records each directory or file it created in `ledger`, deepest last, so that cluster
 * teardown (or the reaper) can remove exactly those and nothing else.
 */
export async function ensureMountPoint(target: string, sourceIsFile: boolean, ledger: string): Promise<void> {
  const abs = resolve(target);
  if (existsSync(abs)) return;
  const missing: string[] = [];
  for (let p = dirname(abs), i = 0; !existsSync(p) && i < 64; p = dirname(p), i++) missing.unshift(p);
  const created = async (make: () => Promise<unknown>, path: string): Promise<void> => {
    try {
      await make();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return; // a concurrent container made it
      throw e;
    }
    await appendFile(ledger, `${path}\n`);
  };
  for (const dir of missing) await created(() => mkdir(dir), dir);
  await created(() => (sourceIsFile ? writeFile(abs, '', { flag: 'wx' }) : mkdir(abs)), abs);
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Every mount point of every mount namespace on the machine (from `/proc/<pid>/mountinfo`, one
 * process per namespace). Containers of all local clusters share the host's root, so a host
 * directory one cluster created may be another cluster's container mount point.
 */
export async function mountPointsInUse(proc = '/proc'): Promise<Set<string>> {
  const out = new Set<string>();
  const seen = new Set<string>();
  for (const pid of (await readdir(proc).catch(() => [])).filter(p => /^\d+$/.test(p))) {
    const ns = await readlink(join(proc, pid, 'ns', 'mnt')).catch(() => undefined);
    if (ns === undefined || seen.has(ns)) continue;
    seen.add(ns);
    const info = await readFile(join(proc, pid, 'mountinfo'), 'utf8').catch(() => '');
    for (const line of info.split('\n')) {
      const target = line.split(' ')[4];
      if (target !== undefined) out.add(target.replace(/\\040/g, ' '));
    }
  }
  return out;
}

/**
 * Removes what `ensureMountPoint` created (deepest first); non-empty dirs are left alone, and so
 * is a path that is still a mount point in any mount namespace: removing it would detach that
 * mount from the containers of another cluster on the machine (Linux drops mounts on a removed
 * directory in every namespace), such as istiod's service-account directory.
 */
export async function removeMountPoints(
  ledger: string,
  inUse: () => Promise<ReadonlySet<string>> = mountPointsInUse,
): Promise<number> {
  if (!existsSync(ledger)) return 0;
  const entries = [...new Set((await readFile(ledger, 'utf8')).split('\n').filter(Boolean))];
  entries.sort((a, b) => b.length - a.length);
  const mounted = await inUse();
  let removed = 0;
  for (const p of entries) {
    if (mounted.has(p) || mounted.has(resolveHostPath(p))) continue;
    try {
      if (isFile(p)) await rm(p);
      else await rmdir(p);
      removed++;
    } catch {
      // still in use or not empty: leave it
    }
  }
  await writeFile(ledger, '');
  return removed;
}

/** `/var/run/...` as mountinfo shows it (`/run/...` where `/var/run` is the usual symlink). */
function resolveHostPath(p: string): string {
  return p.startsWith('/var/run/') ? p.slice('/var'.length) : p;
}

export function ledgerPath(clusterStateDir: string): string {
  return join(clusterStateDir, 'created-mountpoints.list');
}
