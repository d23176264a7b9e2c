import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry, packageVersion } from './metrics-registry.ts';

describe('metrics registry helpers', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const pkg = (content: object): URL => {
    const dir = mkdtempSync(join(tmpdir(), 'runtime-pkg-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify(content));
    return pathToFileURL(join(dir, 'package.json'));
  };

  it('reads the version of a package.json, unknown when it has none', () => {
    expect(packageVersion(pkg({ name: 'x', version: '1.2.3' }))).toBe('1.2.3');
    expect(packageVersion(pkg({ name: 'x' }))).toBe('unknown');
  });

  it('registers the process metrics only when asked', async () => {
    expect(await createRegistry().metrics()).not.toContain('process_open_fds');
    expect(await createRegistry({ defaultMetrics: true }).metrics()).toContain('process_open_fds');
  });
});
