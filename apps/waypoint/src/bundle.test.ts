// The shipping form: tools/bundle.mjs bundles a probe that uses the OTLP exporters, and the
// bundle runs them as the sources do (bound to the bundled @grpc/grpc-js, not a second copy).
// Its text fits in Latin-1, so V8 keeps the source it retains in one byte per character.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const appDir = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'waypoint-bundle-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the bundle (tools/bundle.mjs)', () => {
  it('runs the OTLP gRPC and HTTP exporters: a closed collector port is a connection error, nothing else', async () => {
    const out = join(appDir, 'dist', `otlp-export-probe.${process.pid}.mjs`);
    await run(
      process.execPath,
      [join(appDir, 'tools/bundle.mjs'), join(appDir, 'src/testing/otlp-export-probe.ts'), out],
      {
        timeout: 120_000,
      },
    );
    try {
      const { stdout } = await run(process.execPath, [out], { timeout: 60_000 });
      const results = stdout
        .trim()
        .split('\n')
        .map(line => JSON.parse(line) as { protocol: string; code: number; error: string });
      expect(results.map(r => r.protocol)).toEqual(['grpc', 'http']);
      // gRPC: UNAVAILABLE from the channel (not "Channel credentials must be a ChannelCredentials object").
      expect(results[0]!.error).toMatch(/UNAVAILABLE|ECONNREFUSED/);
      expect(results[1]!.error).toMatch(/ECONNREFUSED/);
      // Above Latin-1, V8 would hold the whole source as a two-byte string.
      expect(readFileSync(out, 'utf8').match(/[\u{100}-\u{10ffff}]/gu) ?? []).toEqual([]);
    } finally {
      rmSync(out, { force: true });
    }
  }, 180_000);
});
