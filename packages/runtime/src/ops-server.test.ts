import { createServer as createNetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Counter } from 'prom-client';
import { createRegistry } from './metrics-registry.ts';
import {
  bindServer,
  dispatch,
  livenessRoute,
  metricsRoutes,
  readinessRoute,
  reply,
  startOpsServer,
} from './ops-server.ts';
import type { OpsServer, Route } from './ops-server.ts';
import { Readiness } from './readiness.ts';
import { captureLogs } from './testing/log-capture.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(routes: Route[], host = '127.0.0.1'): Promise<OpsServer> {
  const server = await startOpsServer({ name: 'test', address: { host, port: 0 }, routes });
  cleanups.push(() => server.close());
  return server;
}

async function call(
  server: OpsServer,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string; allow: string | null }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
  return { status: res.status, body: await res.text(), allow: res.headers.get('allow') };
}

describe('ops server', () => {
  it('serves readiness by task, liveness and metrics, with 404 and 405 for the rest', async () => {
    const readiness = new Readiness();
    readiness.register('xds');
    readiness.register('proxy');
    const registry = createRegistry();
    new Counter({ name: 'demo_total', help: 'demo', registers: [registry] }).inc();
    const server = await serve([
      readinessRoute(readiness, { path: '/healthz/ready', notReadyStatus: 500 }),
      livenessRoute(),
      ...metricsRoutes(registry, ['/metrics', '/stats/prometheus']),
    ]);
    expect(await call(server, '/healthz/ready')).toMatchObject({
      status: 500,
      body: 'not ready, pending: proxy, xds\n',
    });
    readiness.set('xds', true);
    readiness.set('proxy', true);
    expect(await call(server, '/healthz/ready')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await call(server, '/healthz/ready', 'POST')).toEqual({
      status: 405,
      body: 'method not allowed\n',
      allow: 'GET, HEAD',
    });
    expect((await call(server, '/healthz')).body).toBe('ok\n');
    expect((await call(server, '/metrics')).body).toContain('demo_total 1');
    expect((await call(server, '/stats/prometheus')).body).toContain('demo_total 1');
    expect((await call(server, '/nope')).status).toBe(404);
  });

  it('answers 503 from a readiness function by default', async () => {
    let ready = false;
    const server = await serve([readinessRoute(() => ready)]);
    expect(await call(server, '/ready')).toMatchObject({ status: 503, body: 'not ready\n' });
    ready = true;
    expect((await call(server, '/ready')).status).toBe(200);
  });

  it('collapses repeated slashes as Go does (istioctl asks for //version), keeping the query', async () => {
    const server = await serve([
      {
        path: '/version',
        handler: (_req, res, url) => {
          reply(res, 200, `v ${url.searchParams.get('x')}`);
        },
      },
    ]);
    expect(await call(server, '//version?x=1')).toMatchObject({ status: 200, body: 'v 1' });
    expect(await call(server, '///version')).toMatchObject({ status: 200, body: 'v null' });
    expect((await call(server, '//elsewhere/version')).status).toBe(404);
  });

  it('matches a prefix route on the paths under it, after exact routes', async () => {
    const server = await serve([
      {
        path: '/scopej',
        prefix: true,
        handler: (_req, res, url) => {
          reply(res, 200, `scopes ${url.pathname}`);
        },
      },
      {
        path: '/scopej/fixed',
        handler: (_req, res) => {
          reply(res, 200, 'exact');
        },
      },
    ]);
    expect((await call(server, '/scopej')).body).toBe('scopes /scopej');
    expect((await call(server, '/scopej/xds')).body).toBe('scopes /scopej/xds');
    expect((await call(server, '/scopej/fixed')).body).toBe('exact');
    expect((await call(server, '/scopejx')).status).toBe(404);
  });

  it('turns a failing handler into a logged 500', async () => {
    const { logs, records } = captureLogs();
    const server = await startOpsServer({
      name: 'test',
      address: { host: '127.0.0.1', port: 0 },
      logger: logs.for('ops'),
      routes: [
        {
          path: '/boom',
          handler: () => {
            throw new Error('kaput');
          },
        },
      ],
    });
    cleanups.push(() => server.close());
    expect(await call(server, '/boom')).toMatchObject({ status: 500, body: 'internal error: kaput\n' });
    expect(records).toMatchObject([{ component: 'ops', path: '/boom', err: 'kaput' }]);
  });

  it('refuses loopback-only routes to other peers', async () => {
    const route: Route = {
      path: '/debug',
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, 'secret\n');
      },
    };
    const server = await serve([route]);
    expect((await call(server, '/debug')).body).toBe('secret\n');

    // A peer from another address, driven through the dispatcher.
    const handle = dispatch([route]);
    let status = 0;
    let body = '';
    const res = {
      headersSent: false,
      setHeader: () => undefined,
      writeHead: (code: number) => {
        status = code;
      },
      end: (text: string) => {
        body = text;
      },
    };
    await handle(
      { method: 'GET', socket: { remoteAddress: '10.0.0.7' } } as never,
      res as never,
      new URL('http://x/debug'),
    );
    expect({ status, body }).toEqual({ status: 403, body: '/debug is served to localhost only\n' });
  });

  it('reports a taken port as RUNTIME_BIND_FAILED naming the listener', async () => {
    const first = await serve([]);
    await expect(
      startOpsServer({ name: 'admin', address: { host: '127.0.0.1', port: first.port }, routes: [] }),
    ).rejects.toMatchObject({
      code: 'RUNTIME_BIND_FAILED',
      message: expect.stringMatching(/admin listener on 127\.0\.0\.1:/) as unknown,
    });
  });

  it('reports a taken port with the error the app makes when given bindError', async () => {
    const first = await serve([]);
    const made: string[] = [];
    const bindError = (listener: string, address: string, cause: unknown): Error => {
      made.push(`${listener} ${address} ${(cause as NodeJS.ErrnoException).code ?? ''}`);
      return Object.assign(new Error(`app cannot bind ${listener}`), { code: 'APP_BIND_FAILED' });
    };
    await expect(
      startOpsServer({
        name: 'stats',
        address: { host: '127.0.0.1', port: first.port },
        routes: [],
        bindError,
      }),
    ).rejects.toMatchObject({ code: 'APP_BIND_FAILED', message: 'app cannot bind stats' });
    expect(made).toEqual([`stats 127.0.0.1:${first.port} EADDRINUSE`]);
  });

  it('bindServer binds any net server and maps its bind failure', async () => {
    const server = createNetServer();
    cleanups.push(() => new Promise(resolve => server.close(resolve)));
    const address = await bindServer(server, { name: 'HBONE', address: { host: '127.0.0.1', port: 0 } });
    expect(address.port).toBeGreaterThan(0);
    const second = createNetServer();
    await expect(
      bindServer(second, { name: 'HBONE', address: { host: '127.0.0.1', port: address.port } }),
    ).rejects.toMatchObject({
      code: 'RUNTIME_BIND_FAILED',
      listener: 'HBONE',
      address: `127.0.0.1:${address.port}`,
    });
  });

  it('rejects duplicate routes and closes idempotently', async () => {
    expect(() => dispatch([livenessRoute(), livenessRoute()])).toThrow(/duplicate/);
    const server = await serve([livenessRoute()]);
    await Promise.all([server.close(), server.close()]);
    await expect(call(server, '/healthz')).rejects.toThrow();
  });
});

describe('createRegistry', () => {
  it('adds default process metrics and labels when asked', async () => {
    const plain = createRegistry();
    expect(await plain.metrics()).toBe('\n');
    const full = createRegistry({ defaultMetrics: true, prefix: 'app_', labels: { node: 'n1' } });
    const text = await full.metrics();
    expect(text).toMatch(/^app_process_cpu_user_seconds_total\{node="n1"\} /m);
  });
});
