import { homedir } from 'node:os';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from './errors.ts';

/** The prefix of every netns, link and state dir the harness creates; the reaper keys on it. */
export const NAME_PREFIX = 'am-';

/** Where one cluster's names, addresses and files live. Pure data, derived from name + slot. */
export interface ClusterLayout {
  readonly name: string;
  /** 0..199: picks the fabric subnet 10.211.<slot>.0/24 so two clusters can coexist. */
  readonly slot: number;
  readonly stateDir: string;
  readonly fabricNetns: string;
  /** Root-netns end of the veth into the fabric; carries the apiserver address. */
  readonly rootLink: string;
  readonly fabricCidr: string;
  readonly apiserverAddress: string;
  readonly apiserverPort: number;
  readonly clusterCidr: string;
  readonly serviceCidr: string;
  readonly kubernetesServiceIp: string;
  readonly dnsServiceIp: string;
  readonly clusterDomain: string;
  /** `['IPv4']`, or `['IPv4', 'IPv6']` for a dual-stack cluster (IPv4 primary, as kind's default). */
  readonly ipFamilies: readonly ClusterIpFamily[];
  /** The IPv6 side of a dual-stack cluster; absent when single-stack. */
  readonly ipv6?: ClusterIpv6Layout;
}

export type ClusterIpFamily = 'IPv4' | 'IPv6';

/**
 * IPv6 prefixes of a dual-stack cluster, ULAs: the fabric `fd00:10:211:<slot>::/64` (node
 * addresses `::<10+i>`), pods `fd00:10:244::/56` with one /64 per node, Services `fd00:10:96::/112`.
 */
export interface ClusterIpv6Layout {
  readonly fabricCidr: string;
  readonly clusterCidr: string;
  readonly serviceCidr: string;
}

export interface NodeLayout {
  readonly index: number;
  readonly name: string;
  readonly netns: string;
  /** Node address on the fabric (InternalIP). */
  readonly address: string;
  readonly podCidr: string;
  /** Node-side name of the fabric veth inside the fabric netns. */
  readonly fabricPort: string;
  readonly stateDir: string;
  /** IPv6 node address on the fabric and pod CIDR, in a dual-stack cluster. */
  readonly address6?: string;
  readonly podCidr6?: string;
}

export function defaultCacheRoot(): string {
  return process.env.AMBIENT_MESH_CACHE ?? join(homedir(), '.cache', 'ambient-mesh');
}

export function clusterLayout(
  name: string,
  slot: number,
  cacheRoot = defaultCacheRoot(),
  ipFamilies: readonly ClusterIpFamily[] = ['IPv4'],
): ClusterLayout {
  if (!/^[a-z][a-z0-9]{0,7}$/.test(name)) {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `cluster name '${name}' must be 1-8 lower-case letters/digits starting with a letter (it is part of interface names)`,
    );
  }
  if (!Number.isInteger(slot) || slot < 0 || slot > 199) {
    throw new ClusterError(ClusterErrorCode.Unsupported, `cluster slot ${slot} must be an integer in 0..199`);
  }
  const families = ipFamilies.join(',');
  if (families !== 'IPv4' && families !== 'IPv4,IPv6') {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `ipFamilies must be ['IPv4'] or ['IPv4', 'IPv6'] (IPv4 primary), got [${families}]`,
    );
  }
  const dualStack = families === 'IPv4,IPv6';
  return {
    name,
    slot,
    stateDir: join(cacheRoot, 'cluster', name),
    fabricNetns: `${NAME_PREFIX}${name}-fabric`,
    rootLink: `${NAME_PREFIX}${name}`,
    fabricCidr: `10.211.${slot}.0/24`,
    apiserverAddress: `10.211.${slot}.1`,
    apiserverPort: 6443,
    clusterCidr: '10.244.0.0/16',
    serviceCidr: '10.96.0.0/16',
    kubernetesServiceIp: '10.96.0.1',
    dnsServiceIp: '10.96.0.10',
    clusterDomain: 'cluster.local',
    ipFamilies: dualStack ? ['IPv4', 'IPv6'] : ['IPv4'],
    ...(dualStack
      ? {
          ipv6: {
            fabricCidr: `fd00:10:211:${slot}::/64`,
            clusterCidr: 'fd00:10:244::/56',
            serviceCidr: 'fd00:10:96::/112',
          },
        }
      : {}),
  };
}

export function nodeLayout(cluster: ClusterLayout, index: number): NodeLayout {
  const [a, b, c] = cluster.apiserverAddress.split('.');
  return {
    index,
    name: `node-${index}`,
    netns: `${NAME_PREFIX}${cluster.name}-n${index}`,
    address: `${a}.${b}.${c}.${10 + index}`,
    podCidr: `10.244.${index}.0/24`,
    fabricPort: `n${index}`,
    stateDir: join(cluster.stateDir, 'nodes', `node-${index}`),
    ...(cluster.ipv6 === undefined
      ? {}
      : {
          address6: `fd00:10:211:${cluster.slot}::${10 + index}`,
          podCidr6: `fd00:10:244:${index.toString(16)}::/64`,
        }),
  };
}

/** Name of the netns of one pod (unique per pod uid). */
export function podNetnsName(cluster: ClusterLayout, podUid: string): string {
  return `${NAME_PREFIX}${cluster.name}-p-${podUid.replace(/-/g, '').slice(0, 12)}`;
}

export function apiserverUrl(cluster: ClusterLayout): string {
  return `https://${cluster.apiserverAddress}:${cluster.apiserverPort}`;
}
