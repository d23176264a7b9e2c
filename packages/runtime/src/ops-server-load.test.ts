// What loading the ops server costs a process: node:http without Node's bundled undici, which an
// ES import of node:http would load for its lazy WebSocket exports (3.5 MiB resident).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('loading @ambient-mesh/runtime', () => {
  it('serves HTTP without loading Node’s bundled undici', async () => {
    const probe = [
      "const { startOpsServer } = await import('@ambient-mesh/runtime');",
      "const loaded = process.moduleLoadList.filter(m => m.includes('undici') || m === 'NativeModule http');",
      'console.log(JSON.stringify({ startOpsServer: typeof startOpsServer, loaded }));',
    ].join('\n');
    const { stdout } = await run(
      process.execPath,
      ['--conditions=@ambient-mesh/source', '--input-type=module', '-e', probe],
      { cwd: new URL('..', import.meta.url).pathname, timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toEqual({ startOpsServer: 'function', loaded: ['NativeModule http'] });
  }, 90_000);
});
