import { describe, expect, it } from 'vitest';
import type { CommandRunner, RunOptions } from '../exec.ts';
import { clusterLayout, nodeLayout } from '../layout.ts';
import { CniRunner, nodeCniConfig, resultIPv4 } from './cni.ts';

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
