import { describe, expect, it } from 'vitest';
import { netnsExecutor, netnsPrefix, spawnExecutor } from './command-executor.ts';
import { CommandFailedError, NftUnsupportedPlatformError } from './errors.ts';
import { assertSupportedPlatform } from './platform.ts';
import { verifyPodSysctls } from './pod-sysctls.ts';
import {
  policyRoutingApplyCommands,
  policyRoutingRemoveCommands,
  verifyPolicyRouting,
} from './policy-routing.ts';
import { InpodRedirection } from './redirection.ts';
import { renderScript } from './ruleset-model.ts';
import { fakeExecutor } from './testing/fake-executor.ts';

describe('InpodRedirection with an injected executor', () => {
  it('applies with one nft transaction and then the policy routing through ip', async () => {
    const exec = fakeExecutor();
    const r = new InpodRedirection(exec, { ipv6: false });
    await r.apply();
    expect(exec.calls.map(c => [c.command, ...c.args].join(' '))).toEqual([
      'nft -f -',
      'ip -4 rule add fwmark 0x111/0xfff pref 32764 lookup 100',
      'ip -4 route replace local 0.0.0.0/0 dev lo table 100',
      'sysctl -q -w net.ipv4.tcp_migrate_req=1',
    ]);
    expect(exec.calls[0]?.input).toBe(renderScript(r.ruleset));
  });

  it('skips a sysctl the kernel does not have, and fails on any other sysctl error', async () => {
    const missing = fakeExecutor(c =>
      c.command === 'sysctl'
        ? {
            exitCode: 255,
            stderr: 'sysctl: cannot stat /proc/sys/net/ipv4/tcp_migrate_req: No such file or directory',
          }
        : { stdout: '[]' },
    );
    const r = new InpodRedirection(missing, { ipv6: false });
    await r.apply();
    await r.remove();
    expect((await verifyPodSysctls(missing)).length).toBe(0);

    const readOnly = fakeExecutor(c =>
      c.command === 'sysctl'
        ? { exitCode: 255, stderr: 'sysctl: permission denied on key "net.ipv4.tcp_migrate_req"' }
        : {},
    );
    await expect(new InpodRedirection(readOnly, { ipv6: false }).apply()).rejects.toBeInstanceOf(
      CommandFailedError,
    );
  });

  it('reports a sysctl that differs from the enrolled value, and one left over after removal', async () => {
    const zero = fakeExecutor(c => (c.command === 'sysctl' ? { stdout: '0\n' } : {}));
    expect(await verifyPodSysctls(zero)).toEqual([
      { kind: 'changed', object: 'sysctl net.ipv4.tcp_migrate_req', detail: 'is 0, want 1' },
    ]);
    expect(await verifyPodSysctls(zero, false)).toEqual([]);
    const one = fakeExecutor(c => (c.command === 'sysctl' ? { stdout: '1\n' } : {}));
    expect(await verifyPodSysctls(one)).toEqual([]);
    expect(await verifyPodSysctls(one, false)).toEqual([
      { kind: 'unexpected', object: 'sysctl net.ipv4.tcp_migrate_req', detail: 'is 1, want 0' },
    ]);
  });

  it('treats an existing fwmark rule as applied and a removal of missing entries as done', async () => {
    const exec = fakeExecutor(c =>
      c.args.includes('add')
        ? { exitCode: 2, stderr: 'RTNETLINK answers: File exists' }
        : c.args.includes('del')
          ? { exitCode: 2, stderr: 'RTNETLINK answers: No such file or directory' }
          : {},
    );
    const r = new InpodRedirection(exec);
    await r.apply();
    await r.remove();
    expect(exec.calls.filter(c => c.command === 'ip')).toHaveLength(8);
  });

  it('turns a failing nft into CommandFailedError that carries stderr and a capability hint', async () => {
    const exec = fakeExecutor(() => ({
      exitCode: 1,
      stderr: 'Error: Could not process rule: Operation not permitted',
    }));
    const err = await new InpodRedirection(exec).apply().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect((err as CommandFailedError).message).toMatch(
      /nft -f -' failed with exit code 1 \(needs CAP_NET_ADMIN/,
    );
  });

  it('verifies the policy routing from ip -j output', async () => {
    const good = fakeExecutor(c =>
      c.args.includes('rule')
        ? { stdout: '[{"priority":32764,"src":"all","fwmark":"0x111","fwmask":"0xfff","table":"100"}]' }
        : { stdout: '[{"type":"local","dst":"default","dev":"lo","scope":"host","flags":[]}]' },
    );
    expect(await verifyPolicyRouting(good, { ipv6: false })).toEqual([]);
    const empty = fakeExecutor(() => ({ stdout: '[]' }));
    expect((await verifyPolicyRouting(empty, { ipv6: false })).map(d => d.kind)).toEqual([
      'missing',
      'missing',
    ]);
    expect(await verifyPolicyRouting(empty, { ipv6: false }, false)).toEqual([]);
  });

  it('renders per-family policy routing commands', () => {
    expect(policyRoutingApplyCommands({ ipv4: false }).map(c => c.args.join(' '))).toEqual([
      '-6 rule add fwmark 0x111/0xfff pref 32764 lookup 100',
      '-6 route replace local ::/0 dev lo table 100',
    ]);
    expect(policyRoutingRemoveCommands()).toHaveLength(4);
  });
});

describe('executors', () => {
  it('prefixes commands for a named netns, a path and a pid', async () => {
    expect(netnsPrefix({ name: 'pod-a' })).toEqual(['ip', 'netns', 'exec', 'pod-a']);
    expect(netnsPrefix({ path: '/proc/1/ns/net' })).toEqual(['nsenter', '--net=/proc/1/ns/net', '--']);
    expect(netnsPrefix({ pid: 42 })).toEqual(['nsenter', '--net=/proc/42/ns/net', '--']);
    const base = fakeExecutor();
    await netnsExecutor({ name: 'pod-a' }, base).run('nft', ['-f', '-'], 'x');
    expect(base.calls[0]).toEqual({
      command: 'ip',
      args: ['netns', 'exec', 'pod-a', 'nft', '-f', '-'],
      input: 'x',
    });
  });

  it('runs a real command and reports a missing binary as exit code 127', async () => {
    const exec = spawnExecutor();
    expect(await exec.run('cat', [], 'piped')).toEqual({ exitCode: 0, stdout: 'piped', stderr: '' });
    expect((await exec.run('/nonexistent/nft', [])).exitCode).toBe(127);
  });

  it('fails on a platform other than Linux with a clear message', () => {
    expect(() => {
      assertSupportedPlatform('darwin');
    }).toThrow(NftUnsupportedPlatformError);
    expect(() => {
      assertSupportedPlatform('win32');
    }).toThrow(/Linux nftables and iproute2; this process runs on 'win32'/);
    expect(() => {
      assertSupportedPlatform('linux');
    }).not.toThrow();
  });
});
