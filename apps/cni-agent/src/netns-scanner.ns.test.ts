// Namespaced tier (root): the scanner finds a named netns by an address inside it.
import { randomInt } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { addressesOf, netnsScanner } from './netns-scanner.ts';
import { createNetns, run } from './testing/netns.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe('netnsScanner', () => {
  it('returns the named netns whose interface carries the pod IP, and null for an unknown IP', async () => {
    const ns = createNetns('cni-scan');
    cleanups.push(() => {
      ns.remove();
    });
    const ip = `10.253.${randomInt(1, 250)}.${randomInt(2, 250)}`;
    // No dummy interfaces in this kernel: the address goes on lo, which ip -j addr lists all the same.
    run('ip', '-n', ns.name, 'addr', 'add', `${ip}/32`, 'dev', 'lo');
    const scan = netnsScanner({ logger: silentLogger() });
    await expect(scan([ip])).resolves.toBe(ns.path);
    await expect(scan(['10.254.254.254'])).resolves.toBeNull();
    await expect(scan([])).resolves.toBeNull();
  });

  it('reads addresses from ip -j output', () => {
    const json = JSON.stringify([
      { ifname: 'lo', addr_info: [{ local: '127.0.0.1' }, { local: '::1' }] },
      { ifname: 'eth0', addr_info: [{ local: '10.244.1.5' }] },
      { ifname: 'x' },
    ]);
    expect(addressesOf(json)).toEqual(['127.0.0.1', '::1', '10.244.1.5']);
  });
});
