/**
 * The fallback for pods the CNI plugin never reported (they started before the agent was
 * installed): look through the runtime's named network namespaces (bind mounts under
 * `/var/run/netns`, as containerd, CRI-O and our local-cluster kubelet create them) for the one
 * whose interfaces carry the pod's IP. One `ip -j addr` per namespace, so it runs only for pods
 * whose netns is otherwise unknown.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@ambient-mesh/errors';
import { netnsExecutor, spawnExecutor } from '@ambient-mesh/nft-rules';
import type { CommandExecutor } from '@ambient-mesh/nft-rules';
import type { Logger } from '@ambient-mesh/runtime';

export const DEFAULT_NETNS_DIRS = ['/var/run/netns'] as const;

/** Finds the netns path holding one of `ips`, or `null`. */
export type NetnsScanner = (ips: readonly string[]) => Promise<string | null>;

/** Addresses of every interface, from `ip -j addr show` output. */
export function addressesOf(ipJson: string): string[] {
  const parsed = JSON.parse(ipJson) as unknown;
  if (!Array.isArray(parsed)) return [];
  const out: string[] = [];
  for (const link of parsed as { addr_info?: { local?: unknown }[] }[]) {
    for (const info of link.addr_info ?? []) if (typeof info.local === 'string') out.push(info.local);
  }
  return out;
}

export function netnsScanner(options: {
  readonly dirs?: readonly string[];
  readonly executor?: CommandExecutor;
  readonly logger: Logger;
}): NetnsScanner {
  const dirs = options.dirs ?? DEFAULT_NETNS_DIRS;
  const base = options.executor ?? spawnExecutor({ timeoutMs: 5_000 });
  return async ips => {
    if (ips.length === 0) return null;
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names.slice(0, 10_000)) {
        const path = join(dir, name);
        const result = await netnsExecutor({ path }, base).run('ip', ['-j', 'addr', 'show']);
        if (result.exitCode !== 0) continue;
        try {
          if (addressesOf(result.stdout).some(a => ips.includes(a))) return path;
        } catch (err) {
          options.logger.debug({ path, err: errorMessage(err) }, 'unreadable ip -j output');
        }
      }
    }
    return null;
  };
}
