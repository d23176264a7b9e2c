import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, silentLogger } from '@ambient-mesh/runtime';
import { build, type Bound } from './app.ts';
import { loadConfig } from './config.ts';
import type {
  EdgePoliciesView,
  GraphView,
  IstioConfigView,
  LogsView,
  MetricsView,
  OverviewView,
  ServiceView,
  TracesView,
  WaypointView,
  WorkloadDetailView,
  WorkloadView,
  ZtunnelConfigView,
} from './model.ts';
import type { PrometheusClient } from './prometheus.ts';
import {
  fixedSource,
  recordedLogs,
  recordedPrometheus,
  recordedSyncz,
  recordedTracing,
  recordedZtunnelDump,
  unreachablePrometheus,
} from './testing/sources.ts';
import { sampleSnapshot } from './testing/fixtures.ts';

const NOW_MS = Date.UTC(2026, 11, 6, 10, 0, 0);
const platform = () => createPlatform({ component: 'console', logger: silentLogger() });

describe('console app', () => {
  const web = mkdtempSync(join(tmpdir(), 'console-web-'));
  let app: Bound;
  let down: Bound;
  const unreachable: PrometheusClient = unreachablePrometheus('cannot reach Prometheus');

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
      readZtunnelDump: recordedZtunnelDump(),
      readSyncz: recordedSyncz(),
      tracing: recordedTracing(),
      now: () => NOW_MS,
    });
    down = await build(config, {
      platform: platform(),
      source: fixedSource(sampleSnapshot()),
      prometheus: unreachable,
      readSyncz: () => Promise.reject(new Error('connection refused')),
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

  it('filters the graph by protocol (tcp: ztunnel, http: waypoint) and rejects an unknown filter', async () => {
    const tcp = (await get(app, '/api/graph?namespaces=sample&traffic=tcp')).body as GraphView;
    expect(tcp.traffic).toBe('tcp');
    expect(new Set(tcp.edges.map(e => e.protocol))).toEqual(new Set(['tcp']));
    const http = (await get(app, '/api/graph?namespaces=sample&traffic=http')).body as GraphView;
    expect(new Set(http.edges.map(e => e.protocol))).toEqual(new Set(['http']));
    // Nodes stay: the filter hides traffic, not workloads.
    expect(http.nodes.map(n => n.id)).toEqual(expect.arrayContaining(['sample/client', 'sample/echo']));
    expect(await get(app, '/api/graph?namespaces=sample&traffic=grpc')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
  });

  it("explains each edge: the reporting proxy, its pods and the edge's PromQL", async () => {
    const view = (await get(app, '/api/graph?namespaces=sample')).body as GraphView;
    const between = view.edges.filter(e => e.source === 'sample/client' && e.target === 'sample/echo');
    const tcp = between.find(e => e.protocol === 'tcp')!;
    expect(tcp.explain).toMatchObject({ component: 'ztunnel', reporter: 'destination', pods: ['ztunnel-b'] });
    expect(tcp.explain.promql).toEqual([
      'sum(rate(istio_tcp_sent_bytes_total{reporter="destination",source_workload_namespace="sample",source_workload="client",destination_workload_namespace="sample",destination_workload="echo"}[1m]))',
      'sum(rate(istio_tcp_received_bytes_total{reporter="destination",source_workload_namespace="sample",source_workload="client",destination_workload_namespace="sample",destination_workload="echo"}[1m]))',
    ]);
    const http = between.find(e => e.protocol === 'http')!;
    expect(http.explain).toMatchObject({
      component: 'waypoint',
      reporter: 'waypoint',
      pods: ['waypoint-7d9f8b6c5-x1'],
    });
    expect(http.explain.promql[0]).toContain('istio_requests_total{reporter="waypoint"');
  });

  it("serves a workload with its pods, their protocol and their node's ztunnel", async () => {
    const { status, body } = await get(app, '/api/workload?namespace=sample&name=echo');
    expect(status).toBe(200);
    const view = body as WorkloadDetailView;
    expect(view.services).toEqual(['echo']);
    expect(view.pods).toMatchObject([
      { name: 'echo-7d9f8b6c5-x1', node: 'node-1', protocol: 'HBONE', ztunnel: { name: 'ztunnel-a' } },
    ]);
    expect((await get(app, '/api/workload?namespace=sample&name=ghost')).status).toBe(404);
  });

  it("explains an edge's AuthorizationPolicies with ztunnel's verdict, and rejects bad edges", async () => {
    const { status, body } = await get(
      app,
      '/api/graph/edge/policies?source=sample/client&target=sample/echo',
    );
    expect(status).toBe(200);
    const v = body as EdgePoliciesView;
    expect(v).toMatchObject({
      source: 'sample/client',
      target: 'sample/echo',
      sourceIdentity: 'spiffe://cluster.local/ns/sample/sa/client',
      peerIdentity: 'spiffe://cluster.local/ns/sample/sa/waypoint',
      verdict: 'DENY',
      reason: 'not-allowed',
      port: 8080,
    });
    expect(v.l4.map(p => `${p.action} ${p.name}`)).toEqual([
      'ALLOW l4-only',
      'DENY istio_converted_static_strict',
    ]);
    expect(v.mtls).toMatchObject({ strict: true, plaintext: false });
    expect(v.l7.map(p => `${p.action} ${p.name}`)).toEqual(['ALLOW echo-get-only']);
    expect(v.l7Verdict).toMatchObject({ enforcedBy: 'sample/waypoint', verdict: 'ALLOW' });
    // The request shape: a POST is not among echo-get-only's methods.
    const post = (
      await get(
        app,
        '/api/graph/edge/policies?source=sample/client&target=sample/echo&method=post&path=/x&header=X-User:%20alice',
      )
    ).body as EdgePoliciesView;
    expect(post.l7Verdict).toMatchObject({
      request: { method: 'POST', path: '/x', headers: { 'x-user': 'alice' } },
      verdict: 'DENY',
      reason: 'not-allowed',
    });
    expect(post.overall).toBe('DENY');
    for (const bad of ['method=G%20T', 'path=admin', 'header=novalue']) {
      expect(
        await get(app, `/api/graph/edge/policies?source=sample/client&target=sample/echo&${bad}`),
      ).toMatchObject({ status: 400, body: { code: 'CONSOLE_BAD_REQUEST' } });
    }
    expect(v.notApplied.map(p => p.name)).toEqual(['bad-when']);
    expect(
      await get(app, '/api/graph/edge/policies?source=sample/client&target=sample/echo&port=99999'),
    ).toMatchObject({ status: 400, body: { code: 'CONSOLE_BAD_REQUEST' } });
    expect(await get(app, '/api/graph/edge/policies?source=client&target=echo')).toMatchObject({
      status: 400,
      body: { code: 'CONSOLE_BAD_REQUEST' },
    });
    expect(await get(app, '/api/graph/edge/policies?source=sample/client&target=sample/ghost')).toMatchObject(
      {
        status: 404,
        body: { code: 'CONSOLE_NOT_FOUND' },
      },
    );
  });

  it('serves services with their waypoint and workloads', async () => {
    const { body } = await get(app, '/api/services?namespace=sample');
    expect(
      (body as ServiceView[]).map(s => `${s.name}:${s.waypoint?.name ?? '-'}:${s.workloads.join('+')}`),
    ).toEqual(['client:-:client', 'echo:waypoint:echo']);
  });

  it('serves metric charts with the L4 (ztunnel) and L7 (waypoint) series apart', async () => {
    const { status, body } = await get(
      app,
      '/api/metrics?kind=workload&namespace=sample&name=echo&direction=inbound&duration=600',
    );
    expect(status).toBe(200);
    const view = body as MetricsView;
    expect(view).toMatchObject({ end: NOW_MS / 1000, duration: 600, step: 5 });
    expect(view.metricsUnavailable).toBeUndefined();
    const chart = (id: string) => view.charts.find(c => c.id === id)!;
    expect(chart('request_rate').series.map(s => `${s.layer}:${s.reporter}`)).toEqual(['L7:waypoint']);
    expect(chart('latency').series.map(s => s.label)).toEqual([
      'p50 (waypoint)',
      'p95 (waypoint)',
      'p99 (waypoint)',
    ]);
    const sent = chart('tcp_sent').series;
    expect(sent.map(s => `${s.layer}:${s.reporter}`)).toEqual(['L4:destination', 'L7:waypoint']);
    expect(sent[0]?.points.length).toBe(121);
    expect(sent[0]?.promql).toBe(
      'sum(rate(istio_tcp_sent_bytes_total{reporter="destination",destination_workload_namespace="sample",destination_workload="echo"}[1m]))',
    );
    expect(sent[1]?.points).toEqual([]);
    const outbound = (
      await get(app, '/api/metrics?kind=workload&namespace=sample&name=client&direction=outbound')
    ).body as MetricsView;
    expect(outbound.charts.find(c => c.id === 'tcp_sent')?.series[0]?.reporter).toBe('source');
    const svc = (await get(app, '/api/metrics?kind=service&namespace=sample&name=echo')).body as MetricsView;
    expect(svc.charts[0]?.series[0]?.promql).toContain('destination_service_name="echo"');
  });

  it("serves a ztunnel's own metrics by its pod label, as client and as server", async () => {
    const { status, body } = await get(
      app,
      '/api/metrics?kind=ztunnel&namespace=istio-system&name=ztunnel-a',
    );
    expect(status).toBe(200);
    const view = body as MetricsView;
    expect(view.charts.map(c => c.id)).toEqual([
      'tcp_opened',
      'tcp_closed',
      'tcp_sent',
      'tcp_received',
      'memory',
      'cpu',
    ]);
    // Its process's resident memory and CPU rate, by the same pod label.
    const memory = view.charts.find(c => c.id === 'memory')!;
    expect(memory.unit).toBe('bytes');
    expect(memory.series[0]?.promql).toBe('sum(process_resident_memory_bytes{pod="ztunnel-a"})');
    expect(memory.series[0]?.points.length).toBeGreaterThan(0);
    const cpu = view.charts.find(c => c.id === 'cpu')!;
    expect(cpu.unit).toBe('cores');
    expect(cpu.series[0]?.promql).toBe('sum(rate(process_cpu_seconds_total{pod="ztunnel-a"}[1m]))');
    expect(cpu.series[0]?.points[0]?.[1]).toBeGreaterThan(0);
    const sent = view.charts.find(c => c.id === 'tcp_sent')!.series;
    expect(sent.map(x => `${x.layer}:${x.reporter}`)).toEqual(['L4:source', 'L4:destination']);
    expect(sent[0]?.promql).toBe(
      'sum(rate(istio_tcp_sent_bytes_total{pod="ztunnel-a",reporter="source"}[1m]))',
    );
    expect((await get(app, '/api/metrics?kind=ztunnel&namespace=istio-system&name=istiod')).status).toBe(404);
  });

  it('rejects bad metrics parameters and unknown targets', async () => {
    for (const q of [
      'kind=pod&namespace=sample&name=echo',
      'namespace=sample&name=echo&direction=sideways',
      'kind=service&namespace=sample&name=echo&direction=outbound',
      'namespace=sample&name=echo&duration=5',
      'namespace=sample&name=echo&window=1x',
    ]) {
      expect(await get(app, `/api/metrics?${q}`)).toMatchObject({
        status: 400,
        body: { code: 'CONSOLE_BAD_REQUEST' },
      });
    }
    expect((await get(app, '/api/metrics?namespace=sample&name=ghost')).status).toBe(404);
  });

  it('answers metrics with metricsUnavailable, not an error, when Prometheus is down', async () => {
    const { status, body } = await get(down, '/api/metrics?namespace=sample&name=echo');
    expect(status).toBe(200);
    expect((body as MetricsView).metricsUnavailable?.message).toBe('cannot reach Prometheus');
  });

  it("serves a ztunnel's config dump, filtered, and says when a ztunnel does not answer", async () => {
    const list = (await get(app, '/api/ztunnels')).body as { name: string; node: string }[];
    expect(list.map(z => `${z.name}@${z.node}`)).toEqual(['ztunnel-a@node-1', 'ztunnel-b@node-2']);
    const all = (await get(app, '/api/ztunnel?namespace=istio-system&name=ztunnel-a'))
      .body as ZtunnelConfigView;
    expect(all.error).toBeUndefined();
    expect(all.totals).toEqual({ workloads: 3, services: 3, policies: 2, certificates: 2 });
    expect(all.services.find(s => s.name === 'echo')).toMatchObject({
      vips: ['10.96.20.30'],
      ports: ['8080→8080'],
      endpoints: 1,
      waypoint: 'sample/waypoint.sample.svc.cluster.local',
    });
    expect(all.certificates[0]).toMatchObject({
      identity: 'spiffe://cluster.local/ns/sample/sa/client',
      serialNumber: '305419896',
    });
    const filtered = (
      await get(
        app,
        '/api/ztunnel?namespace=istio-system&name=ztunnel-a&filterNamespace=sample&thisNode=true',
      )
    ).body as ZtunnelConfigView;
    expect(filtered.workloads.map(w => w.workloadName)).toEqual(['client']);
    expect(filtered.policies.map(p => p.name)).toEqual(['deny-client']);
    const search = (await get(app, '/api/ztunnel?namespace=istio-system&name=ztunnel-a&search=10.96.20.30'))
      .body as ZtunnelConfigView;
    expect(search.services.map(s => s.name)).toEqual(['echo']);
    const down2 = (await get(app, '/api/ztunnel?namespace=istio-system&name=ztunnel-b'))
      .body as ZtunnelConfigView;
    expect(down2.error?.code).toBe('CONSOLE_ZTUNNEL_UNREACHABLE');
    expect(down2.error?.message).toContain('connection refused');
    expect((await get(app, '/api/ztunnel?namespace=istio-system&name=nope')).status).toBe(404);
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

  it("serves each waypoint proxy's xDS sync state from istiod's /debug/syncz, as istioctl proxy-status", async () => {
    const { body } = await get(app, '/api/waypoints');
    const [wp] = body as WaypointView[];
    expect(wp?.sync).toEqual({
      proxies: [
        {
          pod: 'waypoint-7d9f8b6c5-x1',
          connected: true,
          istiod: 'istiod-7d9f8b6c5-x1',
          types: { CDS: 'SYNCED', LDS: 'SYNCED', RDS: 'STALE', EDS: 'SYNCED' },
        },
      ],
      error: undefined,
    });
    // Without a reachable istiod the waypoints are still served, with the reason.
    const noSync = (await get(down, '/api/waypoints')).body as WaypointView[];
    expect(noSync[0]?.services.map(s => s.name)).toEqual(['echo']);
    expect(noSync[0]?.sync?.proxies[0]).toMatchObject({ pod: 'waypoint-7d9f8b6c5-x1', connected: false });
    expect(noSync[0]?.sync?.error?.code).toBe('CONSOLE_SYNC_UNAVAILABLE');
    expect(noSync[0]?.sync?.error?.message).toContain('/debug/syncz');
  });

  it("serves a workload's spans linked to workloads, and says when no tracing backend is configured", async () => {
    const { status, body } = await get(app, '/api/traces?namespace=sample&workload=echo');
    expect(status).toBe(200);
    const v = body as TracesView;
    expect(v.spans.map(s => `${s.method} ${s.source?.name} -> ${s.destination?.name}`)).toEqual([
      'POST client -> echo',
      'GET client -> echo',
    ]);
    const none = (await get(down, '/api/traces?namespace=sample&workload=echo')).body as TracesView;
    expect(none.tracingUnavailable?.code).toBe('TRACING_NOT_CONFIGURED');
    for (const [q, code] of [
      ['namespace=sample', 400],
      ['namespace=sample&workload=echo&lookback=5', 400],
      ['namespace=sample&workload=ghost', 404],
    ] as const) {
      expect((await get(app, `/api/traces?${q}`)).status).toBe(code);
    }
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
