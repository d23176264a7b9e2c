import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bindOrder, mountPointsInUse, removeMountPoints, type BindMount } from './mounts.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('removeMountPoints', () => {
  it('removes what the ledger lists, except a path still mounted in some mount namespace', async () => {
    const root = mkdtempSync(join(tmpdir(), 'mounts-'));
    dirs.push(root);
    const free = join(root, 'free');
    const mounted = join(root, 'mounted');
    mkdirSync(free);
    mkdirSync(mounted);
    const ledger = join(root, 'ledger');
    writeFileSync(ledger, `${free}\n${mounted}\n`);
    expect(await removeMountPoints(ledger, () => Promise.resolve(new Set([mounted])))).toBe(1);
    expect(existsSync(free)).toBe(false);
    expect(existsSync(mounted)).toBe(true);
  });

  it('lists the mount points of this process', async () => {
    expect(await mountPointsInUse()).toContain('/');
  });
});

describe('bindOrder', () => {
  it("binds a volume over a directory holding other volumes' sources after them, else keeps the order", () => {
    const m = (source: string, target: string): BindMount => ({ source, target, readOnly: false });
    const conf = m('/cache/pods/p/volumes/conf', '/home/node');
    const token = m('/home/node/.cache/pods/p/volumes/token', '/run/secrets/kubernetes.io/serviceaccount');
    const hosts = m('/home/node/.cache/pods/p/hosts', '/etc/hosts');
    const data = m('/cache/pods/p/volumes/data', '/data');
    expect(bindOrder([conf, token, data, hosts])).toEqual([token, data, hosts, conf]);
    expect(bindOrder([token, data, hosts])).toEqual([token, data, hosts]);
  });
});
