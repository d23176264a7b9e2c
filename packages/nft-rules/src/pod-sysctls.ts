/**
 * Kernel settings of the pod netns that the in-pod redirection relies on, managed with `sysctl`
 * (procps) through the same executor as `nft` and `ip`.
 *
 * One today: `net.ipv4.tcp_migrate_req = 1` (Linux 5.14+, covers IPv4 and IPv6 TCP). ztunnel's
 * in-pod listeners share their ports with SO_REUSEPORT, so that during an upgrade the new ztunnel
 * listens beside the old one. When the old one then closes its listeners, the kernel resets the
 * connections still waiting in their accept queues, unless this setting is on: then it moves them
 * to the new ztunnel's listener. A kernel without the key keeps working; only that handover can
 * lose a connection, so a missing key is skipped, not an error.
 */
import type { CommandExecutor } from './command-executor.ts';
import { commandLine } from './command-executor.ts';
import type { Drift } from './drift.ts';
import { CommandFailedError } from './errors.ts';

export interface PodSysctl {
  readonly key: string;
  /** The value while the pod is enrolled. */
  readonly value: string;
  /** The kernel's default, restored when the pod leaves the mesh. */
  readonly unset: string;
}

export const POD_SYSCTLS: readonly PodSysctl[] = [
  { key: 'net.ipv4.tcp_migrate_req', value: '1', unset: '0' },
];

/** `sysctl` reports a key this kernel does not have. */
const unknownKey = (stderr: string): boolean =>
  stderr.includes('cannot stat') || stderr.includes('No such file or directory');

async function write(executor: CommandExecutor, key: string, value: string): Promise<void> {
  const args = ['-q', '-w', `${key}=${value}`];
  const result = await executor.run('sysctl', args);
  if (result.exitCode === 0 || unknownKey(result.stderr)) return;
  throw new CommandFailedError(commandLine('sysctl', args), result.exitCode, result.stderr);
}

/** The live value, or undefined when this kernel does not have the key. */
async function read(executor: CommandExecutor, key: string): Promise<string | undefined> {
  const args = ['-n', key];
  const result = await executor.run('sysctl', args);
  if (result.exitCode === 0) return result.stdout.trim();
  if (unknownKey(result.stderr)) return undefined;
  throw new CommandFailedError(commandLine('sysctl', args), result.exitCode, result.stderr);
}

export async function applyPodSysctls(executor: CommandExecutor): Promise<void> {
  for (const s of POD_SYSCTLS) await write(executor, s.key, s.value);
}

/** Restores the kernel defaults. */
export async function removePodSysctls(executor: CommandExecutor): Promise<void> {
  for (const s of POD_SYSCTLS) await write(executor, s.key, s.unset);
}

/** Settings that differ from the enrolled values (`present`) or from the defaults (`!present`). */
export async function verifyPodSysctls(executor: CommandExecutor, present = true): Promise<Drift[]> {
  const drifts: Drift[] = [];
  for (const s of POD_SYSCTLS) {
    const live = await read(executor, s.key);
    const want = present ? s.value : s.unset;
    if (live === undefined || live === want) continue;
    drifts.push({
      kind: present ? 'changed' : 'unexpected',
      object: `sysctl ${s.key}`,
      detail: `is ${live}, want ${want}`,
    });
  }
  return drifts;
}
