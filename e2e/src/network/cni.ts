import { accessSync, constants } from 'node:fs';
import type { CommandRunner } from '../exec.ts';
import { ClusterError, ClusterErrorCode } from '../errors.ts';

/** One plugin entry of a CNI network configuration list. */
export interface CniPluginConfig {
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface CniNetworkConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly plugins: readonly CniPluginConfig[];
}

export interface CniResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly { name: string; sandbox?: string }[];
  readonly ips?: readonly { address: string; gateway?: string; interface?: number }[];
  readonly [key: string]: unknown;
}

/** Directories where Debian's containernetworking-plugins and other CNI plugins live. */
export const DEFAULT_CNI_PATH = ['/usr/lib/cni', '/opt/cni/bin'];

/**
 * The node's CNI network: bridge (`cni0`, the pod gateway) with host-local IPAM on the node's pod
 * CIDR, then the chained plugins the cni-agent adds later (the "chained-plugin slot").
 */
export function nodeCniConfig(opts: {
  clusterName: string;
  podCidr: string;
  /** The node's IPv6 pod CIDR in a dual-stack cluster: pods get an address of each family. */
  podCidr6?: string | undefined;
  ipamDir: string;
  chained?: readonly CniPluginConfig[];
}): CniNetworkConfig {
  return {
    cniVersion: '1.0.0',
    name: `am-${opts.clusterName}`,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [
            [{ subnet: opts.podCidr }],
            ...(opts.podCidr6 === undefined ? [] : [[{ subnet: opts.podCidr6 }]]),
          ],
          dataDir: opts.ipamDir,
        },
      },
      ...(opts.chained ?? []),
    ],
  };
}

export interface CniInvocation {
  readonly containerId: string;
  /** Path of the pod netns (e.g. the file under /run/netns). */
  readonly netnsPath: string;
  readonly ifName: string;
  /** Netns the plugins run in (the node's); CNI_NETNS is the pod's. */
  readonly runInNetns: string;
  readonly args?: Readonly<Record<string, string>>;
}

/**
 * Invokes a CNI configuration list per the CNI spec (1.0): ADD runs the plugins in order, passing
 * each one's result to the next as `prevResult`; DEL runs them in reverse. Plugins run inside the
 * node netns, so the bridge and host veth ends are created there, not in the root netns.
 */
export class CniRunner {
  private readonly run: CommandRunner;
  private readonly cniPath: readonly string[];

  constructor(run: CommandRunner, cniPath: readonly string[] = DEFAULT_CNI_PATH) {
    this.run = run;
    this.cniPath = cniPath;
  }

  private async invoke(
    command: 'ADD' | 'DEL' | 'CHECK',
    net: CniNetworkConfig,
    plugin: CniPluginConfig,
    inv: CniInvocation,
    prevResult: CniResult | undefined,
  ): Promise<CniResult | undefined> {
    const config = {
      ...plugin,
      cniVersion: net.cniVersion,
      name: net.name,
      ...(prevResult ? { prevResult } : {}),
    };
    const args = Object.entries(inv.args ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(';');
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: inv.containerId,
      CNI_NETNS: inv.netnsPath,
      CNI_IFNAME: inv.ifName,
      CNI_PATH: this.cniPath.join(':'),
      ...(args === '' ? {} : { CNI_ARGS: args }),
    };
    const binary = this.find(plugin.type);
    const res = await this.run(['ip', 'netns', 'exec', inv.runInNetns, binary], {
      input: JSON.stringify(config),
      env,
      allowFailure: true,
    });
    if (res.code !== 0) {
      let msg = res.stdout.trim() || res.stderr.trim();
      try {
        const e = JSON.parse(res.stdout) as { msg?: string; details?: string };
        msg = [e.msg, e.details].filter(Boolean).join(': ');
      } catch {
        // not JSON: keep raw output
      }
      throw new ClusterError(
        ClusterErrorCode.CniFailed,
        `CNI ${command} ${plugin.type} for ${inv.containerId} failed: ${msg}`,
      );
    }
    if (command !== 'ADD') return undefined;
    return JSON.parse(res.stdout) as CniResult;
  }

  private find(type: string): string {
    for (const dir of this.cniPath) {
      try {
        accessSync(`${dir}/${type}`, constants.X_OK);
        return `${dir}/${type}`;
      } catch {
        // try the next dir
      }
    }
    throw new ClusterError(
      ClusterErrorCode.Prerequisite,
      `CNI plugin '${type}' not found in ${this.cniPath.join(':')}; install containernetworking-plugins (tools/install-deps.d/local-cluster.sh)`,
    );
  }

  async add(net: CniNetworkConfig, inv: CniInvocation): Promise<CniResult> {
    let prev: CniResult | undefined;
    for (const plugin of net.plugins) prev = await this.invoke('ADD', net, plugin, inv, prev);
    return prev ?? {};
  }

  /** DEL in reverse order; keeps going past failures and reports the first one. */
  async del(net: CniNetworkConfig, inv: CniInvocation): Promise<void> {
    let first: Error | undefined;
    for (const plugin of [...net.plugins].reverse()) {
      try {
        await this.invoke('DEL', net, plugin, inv, undefined);
      } catch (e) {
        first ??= e instanceof Error ? e : new Error(String(e));
      }
    }
    if (first !== undefined) throw first;
  }

  /** The loopback plugin, run on its own (lo is not part of the pod network list). */
  async loopback(command: 'ADD' | 'DEL', inv: Omit<CniInvocation, 'ifName'>): Promise<void> {
    const net: CniNetworkConfig = {
      cniVersion: '1.0.0',
      name: 'am-loopback',
      plugins: [{ type: 'loopback' }],
    };
    await this.invoke(command, net, { type: 'loopback' }, { ...inv, ifName: 'lo' }, undefined);
  }
}

/** Every address of a CNI result, without prefix length, IPv4 first (a pod's `podIPs`). */
export function resultIPs(result: CniResult): string[] {
  const all = (result.ips ?? []).map(i => i.address.split('/')[0] ?? '').filter(ip => ip !== '');
  return [...all.filter(ip => !ip.includes(':')), ...all.filter(ip => ip.includes(':'))];
}

/** The first IPv4 address of a CNI result, without prefix length. */
export function resultIPv4(result: CniResult): string | undefined {
  const ip = result.ips?.find(i => !i.address.includes(':'));
  return ip?.address.split('/')[0];
}
