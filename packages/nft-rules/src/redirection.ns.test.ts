import { execFileSync } from 'node:child_process';
import { createNetns } from '@ambient-mesh/netns/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { netnsExecutor } from './command-executor.ts';
import { TableName } from './constants.ts';
import { NftClient } from './nft-client.ts';
import { HostProbeSnat, InpodRedirection } from './redirection.ts';
import { optionMatrix } from './testing/option-matrix.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

function freshNetns(label: string): { name: string; nft: (...args: string[]) => string } {
  const ns = createNetns(label);
  cleanups.push(() => {
    ns.remove();
  });
  const nft = (...args: string[]): string =>
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', ...args], { encoding: 'utf8' });
  return { name: ns.name, nft };
}

/** A sysctl of the namespace `name`, read as the kernel shows it there. */
const sysctlIn = (name: string, key: string): string =>
  execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-n', key], { encoding: 'utf8' }).trim();

describe('in-pod rules in a real namespace', () => {
  for (const { name, options } of optionMatrix()) {
    it(`${name}: nft -c accepts it, applying twice shows no drift, removal leaves nothing`, async () => {
      const ns = freshNetns('nftm');
      const executor = netnsExecutor({ name: ns.name });
      const redirection = new InpodRedirection(executor, options);

      await redirection.check();
      await new NftClient(executor).checkJson(redirection.render().json);
      await redirection.apply();
      const first = ns.nft('list', 'ruleset');
      await redirection.apply();
      expect(ns.nft('list', 'ruleset')).toBe(first);
      expect(await redirection.diff()).toEqual([]);

      await redirection.remove();
      expect(await redirection.leftovers()).toEqual([]);
      expect(ns.nft('list', 'ruleset')).toBe('');
    });
  }

  it('reports a deleted rule, a foreign chain and a missing route as drift', async () => {
    const ns = freshNetns('nftd');
    const executor = netnsExecutor({ name: ns.name });
    const redirection = new InpodRedirection(executor, {});
    await redirection.apply();

    const listing = JSON.parse(ns.nft('-j', 'list', 'chain', 'inet', TableName.nat, 'istio-output')) as {
      nftables: { rule?: { handle: number } }[];
    };
    const handle = listing.nftables.find(o => o.rule !== undefined)?.rule?.handle;
    ns.nft('delete', 'rule', 'inet', TableName.nat, 'istio-output', 'handle', String(handle));
    ns.nft('add', 'chain', 'inet', TableName.mangle, 'stray');
    execFileSync('ip', ['-n', ns.name, '-4', 'route', 'flush', 'table', '100']);

    const drift = await redirection.diff();
    expect(drift).toContainEqual(
      expect.objectContaining({ kind: 'missing', object: 'chain inet istio-ambient-nat istio-output' }),
    );
    expect(drift).toContainEqual(
      expect.objectContaining({ kind: 'unexpected', object: 'chain inet istio-ambient-mangle stray' }),
    );
    expect(drift).toContainEqual(
      expect.objectContaining({ kind: 'missing', object: 'ip -4 route table 100 local default dev lo' }),
    );

    await redirection.apply();
    expect(await redirection.diff()).toEqual([]);
  });

  it('turns on tcp_migrate_req in the pod netns only, reports it when reset, and restores it on removal', async () => {
    const ns = freshNetns('nfts');
    const hostBefore = execFileSync('sysctl', ['-n', 'net.ipv4.tcp_migrate_req'], {
      encoding: 'utf8',
    }).trim();
    const redirection = new InpodRedirection(netnsExecutor({ name: ns.name }), {});
    expect(sysctlIn(ns.name, 'net.ipv4.tcp_migrate_req')).toBe('0');
    await redirection.apply();
    expect(sysctlIn(ns.name, 'net.ipv4.tcp_migrate_req')).toBe('1');
    expect(execFileSync('sysctl', ['-n', 'net.ipv4.tcp_migrate_req'], { encoding: 'utf8' }).trim()).toBe(
      hostBefore,
    );

    execFileSync('ip', ['netns', 'exec', ns.name, 'sysctl', '-q', '-w', 'net.ipv4.tcp_migrate_req=0']);
    expect(await redirection.diff()).toEqual([
      { kind: 'changed', object: 'sysctl net.ipv4.tcp_migrate_req', detail: 'is 0, want 1' },
    ]);
    await redirection.apply();
    expect(await redirection.diff()).toEqual([]);

    await redirection.remove();
    expect(sysctlIn(ns.name, 'net.ipv4.tcp_migrate_req')).toBe('0');
    expect(await redirection.leftovers()).toEqual([]);
  });

  it('removes the raw table of an earlier DNS-capturing apply when DNS capture is turned off', async () => {
    const ns = freshNetns('nftr');
    const executor = netnsExecutor({ name: ns.name });
    await new InpodRedirection(executor, { dnsCapture: true }).apply();
    const noDns = new InpodRedirection(executor, { dnsCapture: false });
    expect(await noDns.diff()).toContainEqual(
      expect.objectContaining({ object: 'table inet istio-ambient-raw' }),
    );
    await noDns.apply();
    expect(await noDns.diff()).toEqual([]);
    expect(ns.nft('list', 'tables')).not.toContain(TableName.raw);
  });
});

describe('host probe SNAT in a real namespace', () => {
  for (const kubelet of [{ kind: 'uid', uid: 0 } as const, { kind: 'local-source' } as const]) {
    it(`matching kubelet by ${kubelet.kind}: applies without drift, keeps set elements on re-apply, removes cleanly`, async () => {
      const ns = freshNetns('nfth');
      const host = new HostProbeSnat(netnsExecutor({ name: ns.name }), { kubelet });
      await host.check();
      await host.apply();
      await host.addPodIps([{ ip: '10.250.0.9', podUid: 'pod-uid-1' }, { ip: 'fd00:250::9' }]);
      await host.apply();
      expect(await host.diff()).toEqual([]);
      const sets = ns.nft('list', 'set', 'inet', TableName.nat, 'istio-inpod-probes-v4');
      expect(sets).toContain('10.250.0.9 comment "pod-uid-1"');
      await host.removePodIps(['10.250.0.9']);
      expect(ns.nft('list', 'set', 'inet', TableName.nat, 'istio-inpod-probes-v4')).not.toContain(
        '10.250.0.9',
      );
      await host.remove();
      expect(await host.leftovers()).toEqual([]);
    });
  }
});
