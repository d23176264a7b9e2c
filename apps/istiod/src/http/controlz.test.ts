import { afterEach, describe, expect, it } from 'vitest';
import { Logs, startOpsServer } from '@ambient-mesh/runtime';
import type { OpsServer } from '@ambient-mesh/runtime';
import { controlzScopeRoutes, parseScopeUpdate, type ControlzScope } from './controlz.ts';

const servers: OpsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(): Promise<{ logs: Logs; lines: string[]; url: string }> {
  const lines: string[] = [];
  const logs = new Logs({
    format: 'json',
    level: 'info',
    component: 'istiod',
    destination: { write: (l: string) => lines.push(l) },
  });
  logs.for('xds');
  logs.for('ca');
  const server = await startOpsServer({
    name: 'debug',
    address: { host: '127.0.0.1', port: 0 },
    routes: controlzScopeRoutes(logs),
  });
  servers.push(server);
  return { logs, lines, url: `http://127.0.0.1:${server.port}` };
}

const put = (url: string, body: string): Promise<Response> => fetch(url, { method: 'PUT', body });

describe('ControlZ logging scopes (/scopej)', () => {
  it("lists every scope in ControlZ's JSON shape", async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/scopej`);
    expect(res.status).toBe(200);
    const scopes = (await res.json()) as ControlzScope[];
    expect(scopes.map(s => s.name)).toEqual(['ca', 'istiod', 'xds']);
    expect(scopes[2]).toEqual({
      name: 'xds',
      description: "istiod's xds logs",
      output_level: 'info',
      stack_trace_level: 'none',
      log_callers: false,
    });
  });

  it('PUT sets one scope (202, no body), which then logs at that level; the others do not', async () => {
    const { logs, lines, url } = await serve();
    const res = await put(`${url}/scopej/xds`, '{"name":"xds","output_level":"debug"}\n');
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('');
    expect(((await (await fetch(`${url}/scopej/xds`)).json()) as ControlzScope).output_level).toBe('debug');
    logs.for('xds').debug('xds debug');
    logs.for('ca').debug('ca debug');
    expect(lines.map(l => (JSON.parse(l) as { msg: string }).msg)).toEqual(['xds debug']);
    // `none` silences a scope; istioctl's reset sends info plus stack_trace_level none.
    expect((await put(`${url}/scopej/ca`, '{"output_level":"none"}')).status).toBe(202);
    expect(logs.scopeLevel('ca')).toBe('silent');
    const reset = await put(
      `${url}/scopej/ca`,
      '{"name":"ca","output_level":"info","stack_trace_level":"none"}',
    );
    expect(reset.status).toBe(202);
    expect(logs.scopeLevel('ca')).toBe('info');
  });

  it('answers 400 with the reason for an unknown scope, level or unsupported option', async () => {
    const { url } = await serve();
    const unknown = await put(`${url}/scopej/nope`, '{"output_level":"debug"}');
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toBe('unknown scope name: nope (scopes: ca, istiod, xds)\n');
    expect((await fetch(`${url}/scopej/nope`)).status).toBe(400);
    const badLevel = await put(`${url}/scopej/xds`, '{"output_level":"loud"}');
    expect(badLevel.status).toBe(400);
    expect(await badLevel.text()).toContain('use one of none, error, warn, info, debug');
    const stack = await put(`${url}/scopej/xds`, '{"stack_trace_level":"debug"}');
    expect(stack.status).toBe(400);
    expect(await stack.text()).toContain('keeps no stack traces');
    expect((await put(`${url}/scopej`, '{}')).status).toBe(405);
  });
});

describe('parseScopeUpdate', () => {
  it.each([
    ['{"output_level":"warn"}', { kind: 'ok', level: 'warn' }],
    ['{"output_level":"none"}', { kind: 'ok', level: 'silent' }],
    ['{"name":"xds"}', { kind: 'ok', level: undefined }],
    ['{"output_level":"","stack_trace_level":"none","log_callers":false}', { kind: 'ok', level: undefined }],
  ])('%s', (body, want) => {
    expect(parseScopeUpdate(body)).toEqual(want);
  });

  it.each(['not json', '[]', 'null', '{"output_level":5}', '{"log_callers":true}'])('rejects %s', body => {
    expect(parseScopeUpdate(body).kind).toBe('invalid');
  });
});
