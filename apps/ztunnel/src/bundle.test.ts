// The shipping form (tools/bundle.mjs): V8 retains a module's source for lazy compilation, as a
// one-byte string only while every character fits in Latin-1. One dash in a message used to make
// the whole 1.2 MB bundle a two-byte string.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const appDir = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ztunnel-bundle-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the bundle (tools/bundle.mjs)', () => {
  it('is ASCII, so V8 keeps its source in one byte per character', async () => {
    const out = join(dir, 'ztunnel.mjs');
    await run(process.execPath, [join(appDir, 'tools/bundle.mjs'), join(appDir, 'src/main.ts'), out], {
      timeout: 120_000,
    });
    const source = readFileSync(out, 'utf8');
    expect(source.length).toBeGreaterThan(100_000);
    const wide = [...new Set(source.match(/[\u{80}-\u{10ffff}]/gu) ?? [])];
    expect(wide).toEqual([]);
  }, 180_000);
});
