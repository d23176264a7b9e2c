import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mountPointsInUse, removeMountPoints } from './mounts.ts';

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
