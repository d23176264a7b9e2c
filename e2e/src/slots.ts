// Fabric slots: which local cluster holds which 10.211.<slot>.0/24. A cluster claims its slot with
// a lock file before it creates anything, so two clusters never share a subnet (Linux would let
// two root-netns links carry the same /24, and both clusters would half-work); a slot held by a
// live cluster fails the start at once, naming that cluster.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from './errors.ts';
import type { CommandRunner } from './exec.ts';
import { defaultCacheRoot, NAME_PREFIX } from './layout.ts';
import { pidAlive } from './reaper.ts';

export interface SlotHolder {
  readonly name: string;
  /** The harness process; undefined when only a leftover link says so. */
  readonly pid: number | undefined;
}

function slotsDir(cacheRoot: string): string {
  return join(cacheRoot, 'cluster', '.slots'); // a cluster name starts with a letter: no clash
}

function lockPath(slot: number, cacheRoot: string): string {
  return join(slotsDir(cacheRoot), `${slot}.lock`);
}

function readLock(path: string): SlotHolder | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; pid?: unknown };
    return typeof v.name === 'string' && typeof v.pid === 'number' ? { name: v.name, pid: v.pid } : undefined;
  } catch {
    return undefined;
  }
}

/** Root-netns links `am-<name>` carrying 10.211.<slot>.1: slot → cluster name. */
export async function slotsInUse(run: CommandRunner): Promise<Map<number, string>> {
  const r = await run(['ip', '-o', '-4', 'addr', 'show'], { allowFailure: true });
  const out = new Map<number, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+10\.211\.(\d+)\.1\/24/.exec(line);
    if (m?.[1]?.startsWith(NAME_PREFIX) === true) out.set(Number(m[2]), m[1].slice(NAME_PREFIX.length));
  }
  return out;
}

/**
 * Who holds `slot` against cluster `name`: a live lock of another cluster, or another cluster's
 * link. Pure apart from the pid check, so tests feed it what they like.
 */
export function slotConflict(
  name: string,
  lock: SlotHolder | undefined,
  linkOwner: string | undefined,
  alive: (pid: number) => boolean = pidAlive,
): SlotHolder | undefined {
  if (lock !== undefined && lock.name !== name && lock.pid !== undefined && alive(lock.pid)) return lock;
  if (linkOwner !== undefined && linkOwner !== name) return { name: linkOwner, pid: undefined };
  return undefined;
}

/** Claims `slot` for cluster `name` (harness `pid`), or throws naming the cluster that holds it. */
export async function claimSlot(
  name: string,
  slot: number,
  run: CommandRunner,
  pid = process.pid,
  cacheRoot = defaultCacheRoot(),
): Promise<void> {
  mkdirSync(slotsDir(cacheRoot), { recursive: true });
  const path = lockPath(slot, cacheRoot);
  const holder = slotConflict(name, readLock(path), (await slotsInUse(run)).get(slot));
  if (holder !== undefined) {
    const who =
      holder.pid === undefined
        ? `its link ${NAME_PREFIX}${holder.name} is still up (clean up with 'npm run cluster -- reap --name ${holder.name}')`
        : `harness pid ${holder.pid}`;
    throw new ClusterError(
      ClusterErrorCode.AlreadyRunning,
      `fabric slot ${slot} (10.211.${slot}.0/24) is held by cluster '${holder.name}' (${who}); pick another --slot`,
    );
  }
  const tmp = `${path}.${pid}`;
  writeFileSync(tmp, JSON.stringify({ name, pid }) + '\n');
  renameSync(tmp, path);
  // Two starts racing for one slot: the last rename wins; the loser sees it and stops.
  const now = readLock(path);
  if (now?.name !== name || now.pid !== pid) {
    throw new ClusterError(
      ClusterErrorCode.AlreadyRunning,
      `fabric slot ${slot} was claimed meanwhile by cluster '${now?.name ?? '?'}'; pick another --slot`,
    );
  }
}

/**
 * The lowest slot no other live cluster holds (by lock or link), for a cluster that names none;
 * `claimSlot` still decides, so a race just fails with the usual message.
 */
export async function freeSlot(
  name: string,
  run: CommandRunner,
  cacheRoot = defaultCacheRoot(),
): Promise<number> {
  const links = await slotsInUse(run);
  for (let slot = 0; slot <= 199; slot++) {
    if (slotConflict(name, readLock(lockPath(slot, cacheRoot)), links.get(slot)) === undefined) return slot;
  }
  throw new ClusterError(
    ClusterErrorCode.AlreadyRunning,
    'every fabric slot (0..199) is held by a running cluster',
  );
}

/** Gives `slot` back if cluster `name` still holds it. */
export function releaseSlot(name: string, slot: number, cacheRoot = defaultCacheRoot()): void {
  const path = lockPath(slot, cacheRoot);
  if (readLock(path)?.name === name) rmSync(path, { force: true });
}
