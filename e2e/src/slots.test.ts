import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandRunner } from './exec.ts';
import { claimSlot, freeSlot, releaseSlot, slotConflict, slotsInUse } from './slots.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A runner whose `ip -o -4 addr show` lists the given root-netns addresses. */
const ipAddr =
  (lines: string[]): CommandRunner =>
  () =>
    Promise.resolve({ code: 0, stdout: lines.join('\n'), stderr: '' });

describe('slots', () => {
  it('reads which cluster link carries which fabric slot', async () => {
    const inUse = await slotsInUse(
      ipAddr([
        '1: lo    inet 127.0.0.1/8 scope host lo',
        '7: am-e2e    inet 10.211.1.1/24 scope global am-e2e',
        '9: eth0    inet 10.211.3.1/24 scope global eth0',
      ]),
    );
    expect([...inUse]).toEqual([[1, 'e2e']]);
  });

  it('a live lock or a link of another cluster conflicts; our own name or a dead holder does not', () => {
    expect(slotConflict('a', { name: 'b', pid: 1 }, undefined, () => true)).toEqual({ name: 'b', pid: 1 });
    expect(slotConflict('a', { name: 'b', pid: 1 }, undefined, () => false)).toBeUndefined();
    expect(slotConflict('a', { name: 'a', pid: 1 }, undefined, () => true)).toBeUndefined();
    expect(slotConflict('a', undefined, 'c')).toEqual({ name: 'c', pid: undefined });
    expect(slotConflict('a', undefined, 'a')).toBeUndefined();
  });

  it('claims a free slot, refuses it to another cluster naming the holder, and releases it', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'slots-'));
    dirs.push(cache);
    await claimSlot('one', 5, ipAddr([]), process.pid, cache);
    await expect(claimSlot('two', 5, ipAddr([]), 4242, cache)).rejects.toThrow(
      /slot 5 .* held by cluster 'one'/,
    );
    await expect(
      claimSlot('two', 6, ipAddr(['7: am-three    inet 10.211.6.1/24 scope global am-three']), 4242, cache),
    ).rejects.toThrow(/held by cluster 'three'/);
    releaseSlot('one', 5, cache);
    await claimSlot('two', 5, ipAddr([]), 4242, cache);
  });

  it('finds the lowest slot nobody else holds', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'slots-'));
    dirs.push(cache);
    await claimSlot('one', 0, ipAddr([]), process.pid, cache);
    const links = ipAddr(['7: am-other    inet 10.211.1.1/24 scope global am-other']);
    expect(await freeSlot('two', links, cache)).toBe(2);
    expect(await freeSlot('one', links, cache)).toBe(0);
  });
});
