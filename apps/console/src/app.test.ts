import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, silentLogger } from '@ambient-mesh/runtime';
import { build, type Bound } from './app.ts';
import { loadConfig } from './config.ts';
import type {
  GraphView,
  IstioConfigView,
  LogsView,
  OverviewView,
  WaypointView,
  WorkloadView,
} from './model.ts';
import type { PrometheusClient } from './prometheus.ts';
import { fixedSource, recordedLogs, recordedPrometheus } from './testing/sources.ts';
import { sampleSnapshot } from './testing/fixtures.ts';

const platform = () => createPlatform({ component: 'console', logger: silentLogger() });

describe('console app', () => {
  const web = mkdtempSync(join(tmpdir(), 'console-web-'));
  let app: Bound;
  let down: Bound;
  const unreachable: PrometheusClient = {
    query: () =>
      Promise.resolve({ ok: false, code: 'METRICS_UNAVAILABLE', message: 'cannot reach Prometheus' }),
  };

  beforeAll(async () => {
    mkdirSync(join(web, 'assets'));
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(web, 'assets', 'app.js'), 'console.log(1)');
    const config = loadConfig({ CONSOLE_LISTEN_ADDRESS: '127.0.0.1:0', CONSOLE_WEB_ROOT: web });
    app = await build(config, {
      platform: platform(),
      source: fixedSource(sampleSnapshot()),
      prometheus: recordedPrometheus(),
      readLog: recordedLogs(),
    });
    down = await build(config, {
      platform: platform(),
      source: fixedSource(sampleSnapshot()),
      prometheus: unreachable,
    });
  });
  afterAll(async () => {
    await app.shutdown();
    await down.shutdown();
    rmSync(web, { recursive: true, force: true });
  });

  const get = async (bound: Bound, path: string): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(new URL(path, bound.url));
    const text = await res.text();
    return {
      status: res.status,
      body: res.headers.get('content-type')?.includes('json') === true ? JSON.parse(text) : text,
    };
  };

  it('binds to loopback by default', () => {
    expect(loadConfig({}).listen).toEqual({ host: '127.0.0.1', port: 20001 });
    expect(app.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('serves the overview with the Ambient control plane and namespace badges', async () => {
    const { status, body } = await get(app, '/api/overview');
    expect(status).toBe(200);
    const view = body as OverviewView;
    expect(view.controlPlane.ambient).toBe(true);
    expect(view.namespaces.find(n => n.name === 'sample')?.ambient).toBe(true);
  });

  it('serves workloads of one namespace', async () => {
    const { body } = await get(app, '/api/workloads?namespace=sample');
    expect((body as WorkloadView[]).map(w => `${w.name}:${w.mode}`)).toEqual([
      'client:L4',
      'echo:L7',
      'waypoint:L4',
    ]);
  });

  it('serves the graph from Prometheus, with the L4 and L7 edges', async () => {
    const { body } = await get(app, '/api/graph?namespaces=sample');
    const view = body as GraphView;
    expect(view.metricsUnavailable).toBeUndefined();
    expect(
      view.edges.filter(e => e.source === 'sample/client' && e.target === 'sample/echo').map(e => e.protocol),
    ).toEqual(['http', 'tcp']);
  });

  it('answers the graph with metricsUnavailable, not an error, when Prometheus is down', async () => {
    const { status, body } = await get(down, '/api/graph?namespaces=sample');
    expect(status).toBe(200);
    expect((body as GraphView).metricsUnavailable).toEqual({
      code: 'METRICS_UNAVAILABLE',
      message: 'cannot reach Prometheus',
    });
    expect((body as GraphView).nodes.length).toBeGreaterThan(0);
  });

  it('rejects bad graph parameters with a stable code', async () => {
    expect(await get(app, '/api/graph')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
    expect(await get(app, '/api/graph?namespaces=sample&window=1m])')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
  });

  it('serves Istio config with validations attached to their objects', async () => {
    const { body } = await get(app, '/api/istio-config');
    const view = body as {
      objects: { name: string; validations: { code: string }[] }[];
      validations: { code: string }[];
    };
    expect(view.objects.find(o => o.name === 'client-paths')?.validations.map(v => v.code)).toEqual([
      'KIA1317',
    ]);
    expect(view.validations.map(v => v.code)).toContain('KIA1313');
  });

  it('shows a malformed policy with its error, field by field, and well-formed ones without', async () => {
    const view = (await get(app, '/api/istio-config')).body as IstioConfigView;
    const bad = view.objects.find(o => o.name === 'bad-when');
    expect(bad?.error?.code).toBe('CONSOLE_CONFIG_INVALID');
    expect(bad?.error?.fields.map(f => f.path)).toEqual(['spec.rules[0].when[0].key']);
    expect(bad?.error?.message).toContain('no.such.attribute');
    expect(view.objects.filter(o => o.error !== undefined).map(o => o.name)).toEqual(['bad-when']);
    expect(view.objects.find(o => o.kind === 'PeerAuthentication')?.name).toBe('strict');
  });

  it('serves the waypoints with their enrolled services and workloads', async () => {
    const { body } = await get(app, '/api/waypoints');
    const [wp] = body as WaypointView[];
    expect(wp?.services.map(s => `${s.name}:${s.labelledBy}`)).toEqual(['echo:service']);
    expect(wp?.workloads.map(w => w.name)).toEqual(['echo']);
  });

  it('serves the merged logs of a workload, and rejects a bad or unknown one', async () => {
    const { status, body } = await get(app, '/api/logs?namespace=sample&workload=echo');
    expect(status).toBe(200);
    expect(new Set((body as LogsView).lines.map(l => l.source))).toEqual(
      new Set(['app', 'ztunnel', 'waypoint']),
    );
    expect(await get(app, '/api/logs?namespace=sample')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
    expect(await get(app, '/api/logs?namespace=sample&workload=echo&since=1h')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
    expect(await get(app, '/api/logs?namespace=sample&workload=ghost')).toMatchObject({
      status: 404,
      body: { code: 'CONSOLE_NOT_FOUND' },
    });
  });

  it('serves the web files, index.html for client routes, and refuses path escapes and writes', async () => {
    expect(await get(app, '/assets/app.js')).toMatchObject({ status: 200, body: 'console.log(1)' });
    expect((await get(app, '/graph')).body as string).toContain('<title>console</title>');
    expect((await get(app, '/..%2F..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    const post = await fetch(new URL('/api/overview', app.url), { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('answers 503 until the cluster is listed', async () => {
    const config = loadConfig({ CONSOLE_LISTEN_ADDRESS: '127.0.0.1:0', CONSOLE_WEB_ROOT: web });
    const pending = await build(config, {
      platform: platform(),
      source: fixedSource(sampleSnapshot(), false),
      prometheus: unreachable,
    });
    try {
      expect(await get(pending, '/api/overview')).toMatchObject({
        status: 503,
        body: { code: 'CONSOLE_NOT_SYNCED' },
      });
      expect((await get(pending, '/healthz/ready')).status).toBe(503);
    } finally {
      await pending.shutdown();
    }
  });
});
