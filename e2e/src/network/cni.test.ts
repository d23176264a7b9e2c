import { describe, expect, it } from 'vitest';
import type { CommandRunner, RunOptions } from '../exec.ts';
import { clusterCidrs, serviceCidrs } from '../control-plane/control-plane.ts';
import { clusterLayout, nodeLayout } from '../layout.ts';
import { CniRunner, nodeCniConfig, resultIPs, resultIPv4 } from './cni.ts';

describe('CNI invocation', () => {
  const net = nodeCniConfig({
    clusterName: 't',
    podCidr: '10.244.0.0/24',
    ipamDir: '/x',
    chained: [{ type: 'loopback', tag: 'chained' }],
  });
  const inv = { containerId: 'c1', netnsPath: '/run/netns/p', runInNetns: 'am-t-n0', ifName: 'eth0' };

  it('runs ADD in order inside the node netns, passing prevResult to chained plugins', async () => {
    const calls: { argv: readonly string[]; opts: RunOptions | undefined }[] = [];
    const run: CommandRunner = (argv, opts) => {
      calls.push({ argv, opts });
      const result = { cniVersion: '1.0.0', ips: [{ address: '10.244.0.2/24' }] };
      return Promise.resolve({ code: 0, stdout: JSON.stringify(result), stderr: '' });
    };
    const result = await new CniRunner(run, ['/usr/lib/cni']).add(net, inv);
    expect(calls.map(c => c.argv)).toEqual([
      ['ip', 'netns', 'exec', 'am-t-n0', '/usr/lib/cni/bridge'],
      ['ip', 'netns', 'exec', 'am-t-n0', '/usr/lib/cni/loopback'],
    ]);
    expect(calls[0]!.opts?.env?.CNI_COMMAND).toBe('ADD');
    expect(JSON.parse(calls[0]!.opts!.input!).prevResult).toBeUndefined();
    expect(JSON.parse(calls[1]!.opts!.input!).prevResult.ips[0].address).toBe('10.244.0.2/24');
    expect(resultIPv4(result)).toBe('10.244.0.2');
  });

  it('runs DEL in reverse order and reports the plugin error message', async () => {
    const order: string[] = [];
    const run: CommandRunner = argv => {
      order.push(argv.at(-1)!);
      return Promise.resolve({ code: 1, stdout: JSON.stringify({ code: 11, msg: 'boom' }), stderr: '' });
    };
    await expect(new CniRunner(run, ['/usr/lib/cni']).del(net, inv)).rejects.toThrow(/loopback.*boom/);
    expect(order).toEqual(['/usr/lib/cni/loopback', '/usr/lib/cni/bridge']);
  });
});

describe('cluster layout', () => {
  it('keeps interface-name parts short and addresses private', () => {
    const l = clusterLayout('e2e', 3, '/cache');
    expect(l.rootLink).toBe('am-e2e');
    expect(l.apiserverAddress).toBe('10.211.3.1');
    expect(nodeLayout(l, 1)).toMatchObject({
      netns: 'am-e2e-n1',
      address: '10.211.3.11',
      podCidr: '10.244.1.0/24',
    });
    expect(() => clusterLayout('a-very-long-name', 0)).toThrow(/1-8/);
  });
});

describe('dual-stack layout', () => {
  it('adds IPv6 ULA prefixes derived from the slot and the node index, IPv4 first everywhere', () => {
    const l = clusterLayout('dual', 144, '/cache', ['IPv4', 'IPv6']);
    expect(l.ipFamilies).toEqual(['IPv4', 'IPv6']);
    expect(l.ipv6).toEqual({
      fabricCidr: 'fd00:10:211:144::/64',
      clusterCidr: 'fd00:10:244::/56',
      serviceCidr: 'fd00:10:96::/112',
    });
    expect(nodeLayout(l, 1)).toMatchObject({
      address: '10.211.144.11',
      address6: 'fd00:10:211:144::11',
      podCidr: '10.244.1.0/24',
      podCidr6: 'fd00:10:244:1::/64',
    });
    expect(serviceCidrs(l)).toBe('10.96.0.0/16,fd00:10:96::/112');
    expect(clusterCidrs(l)).toBe('10.244.0.0/16,fd00:10:244::/56');
  });

  it('stays IPv4-only by default and refuses an IPv6-only or IPv6-primary cluster', () => {
    const l = clusterLayout('single', 3, '/cache');
    expect(l.ipFamilies).toEqual(['IPv4']);
    expect(l.ipv6).toBeUndefined();
    expect(nodeLayout(l, 0).address6).toBeUndefined();
    expect(serviceCidrs(l)).toBe('10.96.0.0/16');
    expect(() => clusterLayout('v6', 3, '/cache', ['IPv6'])).toThrow(/IPv4 primary/);
    expect(() => clusterLayout('v6', 3, '/cache', ['IPv6', 'IPv4'])).toThrow(/IPv4 primary/);
  });

  it('gives host-local IPAM one range per family and reports both pod IPs, IPv4 first', () => {
    const net = nodeCniConfig({
      clusterName: 'd',
      podCidr: '10.244.0.0/24',
      podCidr6: 'fd00:10:244:0::/64',
      ipamDir: '/x',
    });
    expect(net.plugins[0]?.ipam).toMatchObject({
      ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:10:244:0::/64' }]],
    });
    const result = { ips: [{ address: 'fd00:10:244::5/64' }, { address: '10.244.0.5/24' }] };
    expect(resultIPs(result)).toEqual(['10.244.0.5', 'fd00:10:244::5']);
    expect(resultIPv4(result)).toBe('10.244.0.5');
  });
});
