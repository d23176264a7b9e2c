import { afterEach, describe, expect, it } from 'vitest';
import { dispatch, startOpsServer } from '@ambient-mesh/runtime';
import type { OpsServer } from '@ambient-mesh/runtime';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { adminRoutes, configDump } from './admin-server.ts';
import type { AdminSources } from './admin-server.ts';
import { loadConfig } from './config.ts';
import { createProxyState } from './state/proxy-state.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function sources(): AdminSources & { quits: number } {
  const { logs } = captureLogs('info');
  const out = {
    config: loadConfig({ POD_NAME: 'z', POD_NAMESPACE: 'istio-system', NODE_NAME: 'n' }),
    state: createProxyState().state,
    logs,
    certificates: () => [],
    workloadState: () => ({}),
    quits: 0,
    quit: () => {
      out.quits += 1;
    },
  };
  return out;
}

async function admin(src: AdminSources): Promise<OpsServer> {
  const server = await startOpsServer({
    name: 'admin',
    address: { host: '127.0.0.1', port: 0 },
    routes: adminRoutes(src),
  });
  cleanups.push(() => server.close());
  return server;
}

async function call(
  server: OpsServer,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

describe('ztunnel admin routes', () => {
  it('lists the endpoints on / and answers 404 elsewhere', async () => {
    const server = await admin(sources());
    expect((await call(server, '/')).body).toMatch(/^ztunnel admin\n/);
    expect((await call(server, '/nope')).status).toBe(404);
  });

  it('reads and sets the level of every logger through /logging', async () => {
    const src = sources();
    const server = await admin(src);
    const child = src.logs.for('xds');
    expect(await call(server, '/logging')).toEqual({ status: 200, body: 'current log level is info\n' });
    expect(await call(server, '/logging?level=DEBUG', 'POST')).toEqual({
      status: 200,
      body: 'current log level is debug\n',
    });
    expect(child.level).toBe('debug');
    expect((await call(server, '/logging?level=silent', 'POST')).status).toBe(400);
    expect(await call(server, '/logging?level=off', 'POST')).toEqual({
      status: 200,
      body: 'current log level is off\n',
    });
    expect(child.level).toBe('silent');
    expect(await call(server, '/logging?level=reset', 'POST')).toEqual({
      status: 200,
      body: 'current log level is info\n',
    });
    expect(child.level).toBe('info');
    expect((await call(server, '/logging', 'PUT')).status).toBe(405);
  });

  it('answers istioctl ztunnel-config log as upstream: empty level lists, scope clauses, &reset', async () => {
    const src = sources();
    const server = await admin(src);
    src.logs.for('xds');
    src.logs.for('access');
    // `istioctl ztunnel-config log <pod>` lists with an empty level.
    expect(await call(server, '/logging?level=', 'POST')).toEqual({
      status: 200,
      body: 'current log level is info\n',
    });
    expect(await call(server, '/logging?level=access=debug,warn', 'POST')).toEqual({
      status: 200,
      body: 'current log level is access=debug,warn\n',
    });
    expect(src.logs.scopeLevel('access')).toBe('debug');
    expect(src.logs.scopeLevel('xds')).toBe('warn');
    // istioctl and ambientctl pass `--level <scope>:<level>` through as written. A new filter
    // replaces the old one, as upstream's: `access` is back at the process level.
    expect(await call(server, `/logging?level=${encodeURIComponent('xds:debug,info')}`, 'POST')).toEqual({
      status: 200,
      body: 'current log level is xds=debug,info\n',
    });
    const unknown = await call(server, '/logging?level=nope=debug', 'POST');
    expect(unknown.status).toBe(400);
    expect(unknown.body).toContain('unknown scope "nope"');
    // `istioctl ztunnel-config log <pod> --reset` sends `level=info&reset`.
    expect(await call(server, '/logging?level=info&reset', 'POST')).toEqual({
      status: 200,
      body: 'current log level is info\n',
    });
    expect(src.logs.scopeLevel('access')).toBe('info');
    expect(await call(server, '/logging?reset', 'POST')).toEqual({
      status: 200,
      body: 'current log level is info\n',
    });
  });

  it('dumps the config as JSON on GET only', async () => {
    const src = sources();
    const server = await admin(src);
    const dump = JSON.parse((await call(server, '/config_dump')).body) as Record<string, unknown>;
    expect(dump).toMatchObject({ workloads: [], version: { component: 'ztunnel' }, workloadState: {} });
    expect(dump).toEqual(JSON.parse(JSON.stringify(configDump(src))));
    expect((await call(server, '/config_dump', 'POST')).status).toBe(405);
  });

  it('quits on POST /quitquitquit only, and refuses peers that are not local', async () => {
    const src = sources();
    const server = await admin(src);
    expect((await call(server, '/quitquitquit')).status).toBe(405);
    expect(src.quits).toBe(0);
    expect(await call(server, '/quitquitquit', 'POST')).toEqual({ status: 200, body: 'OK\n' });
    expect(src.quits).toBe(1);

    let status = 0;
    const res = {
      headersSent: false,
      setHeader: () => undefined,
      writeHead: (code: number) => {
        status = code;
      },
      end: () => undefined,
    };
    await dispatch(adminRoutes(src))(
      { method: 'POST', socket: { remoteAddress: '10.0.0.9' } } as never,
      res as never,
      new URL('http://x/quitquitquit'),
    );
    expect(status).toBe(403);
    expect(src.quits).toBe(1);
  });
});
