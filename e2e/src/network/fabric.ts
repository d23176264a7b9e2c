import { existsSync } from 'node:fs';
import type { CommandRunner } from '../exec.ts';
import type { ClusterLayout, NodeLayout } from '../layout.ts';

/**
 * The cluster network (docs/local-cluster.md has the diagram):
 *
 * - a fabric netns holding bridge `fabric0`: the "switch" between nodes;
 * - one netns per node, its `eth0` on the fabric with the node address, a route per other node's
 *   pod CIDR via that node, and (made by the CNI bridge plugin) `cni0` for its own pods;
 * - one veth from the root netns into the fabric, carrying the apiserver address, so the user's
 *   kubectl and the pods reach the same apiserver. The root netns gets only that link's connected
 *   /24; no route, forwarding setting or nft table of the root netns is touched.
 *
 * Nothing has a default route, so no packet can leave the machine.
 */
export class Fabric {
  private readonly run: CommandRunner;
  private readonly layout: ClusterLayout;

  constructor(layout: ClusterLayout, run: CommandRunner) {
    this.layout = layout;
    this.run = run;
  }

  private ip(...args: string[]): Promise<unknown> {
    return this.run(['ip', ...args]);
  }

  private inNs(ns: string, argv: string[]): Promise<unknown> {
    return this.run(['ip', 'netns', 'exec', ns, ...argv]);
  }

  /** Creates the fabric netns, its bridge and the root-side veth with the apiserver address. */
  async up(): Promise<void> {
    const { fabricNetns: fab, rootLink, apiserverAddress } = this.layout;
    await this.ip('netns', 'add', fab);
    await this.ip('-n', fab, 'link', 'set', 'lo', 'up');
    await this.ip('-n', fab, 'link', 'add', 'fabric0', 'type', 'bridge');
    await this.ip('-n', fab, 'link', 'set', 'fabric0', 'up');
    await this.ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', 'root', 'netns', fab);
    await this.ip('-n', fab, 'link', 'set', 'root', 'master', 'fabric0', 'up');
    await this.ip('addr', 'add', `${apiserverAddress}/24`, 'dev', rootLink);
    await this.ip('link', 'set', rootLink, 'up');
  }

  /** Creates one node netns wired into the fabric, with forwarding on and pod-CIDR routes to the others. */
  async addNode(node: NodeLayout, all: readonly NodeLayout[]): Promise<void> {
    const ns = node.netns;
    await this.ip('netns', 'add', ns);
    await this.ip('-n', ns, 'link', 'set', 'lo', 'up');
    await this.ip(
      '-n',
      ns,
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      node.fabricPort,
      'netns',
      this.layout.fabricNetns,
    );
    await this.ip('-n', this.layout.fabricNetns, 'link', 'set', node.fabricPort, 'master', 'fabric0', 'up');
    await this.ip('-n', ns, 'addr', 'add', `${node.address}/24`, 'dev', 'eth0');
    await this.ip('-n', ns, 'link', 'set', 'eth0', 'up');
    for (const other of all) {
      if (other.index === node.index) continue;
      await this.ip('-n', ns, 'route', 'add', other.podCidr, 'via', other.address, 'dev', 'eth0');
    }
    // ClusterIPs have no real route; kube-proxy DNATs them. The route only lets local sockets in
    // the node netns (hostNetwork pods, probes) get past the route lookup before DNAT.
    await this.ip('-n', ns, 'route', 'add', this.layout.serviceCidr, 'dev', 'eth0');
    const v6 = this.layout.ipv6;
    if (v6 !== undefined && node.address6 !== undefined) {
      // Dual-stack: the same wiring for IPv6 (no DAD: the addresses are ours alone).
      for (const k of ['all', 'default', 'eth0', 'lo']) {
        await this.inNs(ns, ['sysctl', '-q', '-w', `net.ipv6.conf.${k}.disable_ipv6=0`]);
      }
      await this.ip('-n', ns, 'addr', 'add', `${node.address6}/64`, 'dev', 'eth0', 'nodad');
      for (const other of all) {
        if (other.index === node.index || other.podCidr6 === undefined || other.address6 === undefined)
          continue;
        await this.ip('-n', ns, '-6', 'route', 'add', other.podCidr6, 'via', other.address6, 'dev', 'eth0');
      }
      await this.ip('-n', ns, '-6', 'route', 'add', v6.serviceCidr, 'dev', 'eth0');
    }
    const sysctls: [string, string][] = [
      ['net.ipv4.ip_forward', '1'],
      ['net.ipv4.conf.all.rp_filter', '0'],
      ['net.ipv4.conf.default.rp_filter', '0'],
      ['net.ipv4.ping_group_range', '0 2147483647'],
    ];
    if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
      sysctls.push(['net.bridge.bridge-nf-call-iptables', '1']);
    }
    if (v6 !== undefined) {
      sysctls.push(['net.ipv6.conf.all.forwarding', '1']);
      if (existsSync('/proc/sys/net/bridge/bridge-nf-call-ip6tables')) {
        sysctls.push(['net.bridge.bridge-nf-call-ip6tables', '1']);
      }
    }
    for (const [k, v] of sysctls) await this.inNs(ns, ['sysctl', '-q', '-w', `${k}=${v}`]);
    // Pod traffic to the fabric (the apiserver, other node addresses) leaves with the node
    // address: the root netns has no route back to pod CIDRs, by design.
    const rules = [
      'table ip am_node {',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat + 10; policy accept;',
      `    oifname "eth0" ip saddr ${node.podCidr} ip daddr != ${this.layout.clusterCidr} masquerade`,
      '  }',
      '}',
    ].join('\n');
    await this.run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: rules });
  }

  /** Removes the fabric and the root-side link (node netns are removed by their owners). */
  async down(): Promise<void> {
    await this.run(['ip', 'link', 'del', this.layout.rootLink], { allowFailure: true });
    await this.run(['ip', 'netns', 'del', this.layout.fabricNetns], { allowFailure: true });
  }

  async removeNode(node: NodeLayout): Promise<void> {
    await this.run(['ip', 'netns', 'del', node.netns], { allowFailure: true });
  }
}
