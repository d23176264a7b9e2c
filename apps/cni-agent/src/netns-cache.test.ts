import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { FileNetnsLocator } from './netns-cache.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cni-cache-'));
  dirs.push(dir);
  return join(dir, 'pod-netns.json');
}

describe('FileNetnsLocator', () => {
  it('survives a restart: a new instance reads what the old one remembered', () => {
    const file = tempFile();
    const first = new FileNetnsLocator(file, silentLogger());
    first.remember('apps', 'a', '/run/netns/a');
    first.remember('apps', 'b', '/run/netns/b');
    first.forget('apps', 'b');
    const second = new FileNetnsLocator(file, silentLogger());
    expect(second.find('apps', 'a')).toBe('/run/netns/a');
    expect(second.find('apps', 'b')).toBeNull();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ 'apps/a': '/run/netns/a' });
  });

  it('starts empty from a corrupt file instead of failing', () => {
    const file = tempFile();
    writeFileSync(file, '{not json');
    const locator = new FileNetnsLocator(file, silentLogger());
    expect(locator.find('apps', 'a')).toBeNull();
    locator.remember('apps', 'a', '/x');
    expect(new FileNetnsLocator(file, silentLogger()).find('apps', 'a')).toBe('/x');
  });
});
