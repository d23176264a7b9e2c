/**
 * The production `PodRules`, `HostProbeRules` and `NetnsOpener`: `@ambient-mesh/nft-rules` run
 * through `nsenter --net=<path>` for a pod, or directly in the agent's (host) netns for the probe
 * SNAT, and `@ambient-mesh/netns` for namespace fds.
 */
import { isIP } from 'node:net';
import { closeFd, openNetns } from '@ambient-mesh/netns';
import { HostProbeSnat, InpodRedirection, netnsExecutor, spawnExecutor } from '@ambient-mesh/nft-rules';
import type { CommandExecutor, Drift, InpodRuleOptions, KubeletMatch } from '@ambient-mesh/nft-rules';
import type { HostProbeRules, NetnsOpener, PodRules } from './reconciler.ts';

function describeDrift(d: Drift): string {
  return `${d.kind} ${d.object}${d.detail === '' ? '' : `: ${d.detail}`}`;
}

/** In-pod rules; every command runs inside the pod netns given by path. */
export function nftPodRules(base: CommandExecutor = spawnExecutor()): PodRules {
  const redirection = (path: string, options: InpodRuleOptions): InpodRedirection =>
    new InpodRedirection(netnsExecutor({ path }, base), options);
  return {
    apply: (path, options) => redirection(path, options).apply(),
    drift: async (path, options) => (await redirection(path, options).diff()).map(describeDrift),
    remove: (path, options) => redirection(path, options).remove(),
  };
}

export interface HostProbeSettings {
  readonly kubelet: KubeletMatch;
  readonly ipv6: boolean;
  readonly probeSnatV4: string;
  readonly probeSnatV6: string;
}

/** Host probe SNAT in the agent's own netns: installs the chains at once, then manages set elements. */
export async function nftHostProbe(
  settings: HostProbeSettings,
  executor: CommandExecutor = spawnExecutor(),
): Promise<HostProbeRules> {
  const snat = new HostProbeSnat(executor, {
    kubelet: settings.kubelet,
    ipv4: true,
    ipv6: settings.ipv6,
    probeSnatV4: settings.probeSnatV4,
    probeSnatV6: settings.probeSnatV6,
  });
  await snat.apply();
  const wanted = (ip: string): boolean => isIP(ip) === 4 || (settings.ipv6 && isIP(ip) === 6);
  return {
    addPodIps: entries => snat.addPodIps(entries.filter(e => wanted(e.ip))),
    removePodIps: ips => snat.removePodIps(ips.filter(wanted)),
  };
}

/** Netns fds through the addon; `pathOf` names the fd through this process's procfs entry. */
export const addonNetnsOpener: NetnsOpener = {
  open: path => openNetns(path),
  close: fd => {
    closeFd(fd);
  },
  pathOf: fd => `/proc/${process.pid}/fd/${fd}`,
};
