/**
 * The graph's queries against a real Prometheus (Debian's, installed by
 * tools/install-deps.d/prometheus.sh) scraping a loopback endpoint that serves ztunnel- and
 * waypoint-shaped counters which grow at every scrape. This catches what recorded answers cannot:
 * PromQL that a real Prometheus rejects or answers differently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGraph } from './graph.ts';
import { metricsRange, metricsView } from './metrics.ts';
import type { MetricsView } from './model.ts';
import { httpPrometheus, l4Queries, l7Query, type PrometheusClient } from './prometheus.ts';

const PROMETHEUS = process.env.PROMETHEUS_PATH ?? '/usr/bin/prometheus';

const edge = (reporter: string): string =>
  `reporter="${reporter}",source_workload="client",source_workload_namespace="sample",destination_service_namespace="sample",destination_service_name="echo",destination_workload="echo",destination_workload_namespace="sample",connection_security_policy="mutual_tls"`;

async function listen(server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise(r => s.close(r));
  return port;
}

describe('graph queries on a real Prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'console-prom-'));
  let scrapes = 0;
  const target = createServer((_req, res) => {
    scrapes++;
    const n = scrapes * 1000;
    const body = [
      `istio_tcp_sent_bytes_total{${edge('destination')}} ${n}`,
      `istio_tcp_received_bytes_total{${edge('destination')}} ${n * 2}`,
      `istio_tcp_sent_bytes_total{${edge('source')}} ${n}`,
      `istio_tcp_received_bytes_total{${edge('source')}} ${n * 2}`,
      `istio_requests_total{${edge('waypoint')},response_code="200"} ${scrapes * 10}`,
      `istio_requests_total{${edge('waypoint')},response_code="503"} ${scrapes}`,
      `istio_request_duration_milliseconds_bucket{${edge('waypoint')},le="5"} ${scrapes * 5}`,
      `istio_request_duration_milliseconds_bucket{${edge('waypoint')},le="25"} ${scrapes * 10}`,
      `istio_request_duration_milliseconds_bucket{${edge('waypoint')},le="+Inf"} ${scrapes * 11}`,
      `istio_request_duration_milliseconds_sum{${edge('waypoint')}} ${scrapes * 60}`,
      `istio_request_duration_milliseconds_count{${edge('waypoint')}} ${scrapes * 11}`,
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  });
  let prometheus: ChildProcess | undefined;
  let client: PrometheusClient;

  beforeAll(async () => {
    if (!existsSync(PROMETHEUS))
      throw new Error(
        `no Prometheus at ${PROMETHEUS}: run npm run setup (tools/install-deps.d/prometheus.sh)`,
      );
    const targetPort = await listen(target);
    const port = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: mesh\n    honor_labels: true\n    static_configs: [{ targets: ["127.0.0.1:${targetPort}"] }]\n`,
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    client = httpPrometheus({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    // Bounded wait until a rate exists (two scrapes with growth).
    for (let i = 0; i < 120; i++) {
      const r = await client.query(l7Query('1m'));
      if (r.ok && r.samples.some(s => s.value > 0)) return;
      await new Promise(resolve => setTimeout(resolve, 250));
    }
    throw new Error('Prometheus never produced a request rate');
  }, 60_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    if (prometheus !== undefined && prometheus.exitCode === null)
      await new Promise(r => prometheus?.once('exit', r));
    await new Promise(r => target.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts every query and draws the tcp and http edges from its answers', async () => {
    const l4 = await Promise.all(l4Queries('1m').map(q => client.query(q)));
    const l7 = await client.query(l7Query('1m'));
    for (const r of [...l4, l7]) expect(r).toMatchObject({ ok: true });
    const samples = (r: (typeof l4)[number]) => (r.ok ? r.samples : []);
    // Both directions, by reporter: sent and received for destination and source.
    expect(
      l4
        .flatMap(samples)
        .map(s => s.labels.reporter)
        .sort(),
    ).toEqual(['destination', 'destination', 'source', 'source']);
    const graph = buildGraph({
      namespaces: ['sample'],
      workloads: [],
      l4: l4.flatMap(samples),
      l7: samples(l7),
    });
    expect(graph.edges.map(e => `${e.id} ${e.reporter} ${String(e.mtls)}`)).toEqual([
      'sample/client>sample/echo:http waypoint true',
      'sample/client>sample/echo:tcp destination true',
    ]);
    expect(graph.edges.every(e => e.bytesPerSecond + e.requestsPerSecond > 0)).toBe(true);
  });

  it("runs each edge's explaining PromQL, which gives the edge's own rate", async () => {
    const l4 = await Promise.all(l4Queries('1m').map(q => client.query(q)));
    const l7 = await client.query(l7Query('1m'));
    const samples = (r: (typeof l4)[number]) => (r.ok ? r.samples : []);
    const graph = buildGraph({
      namespaces: ['sample'],
      workloads: [],
      l4: l4.flatMap(samples),
      l7: samples(l7),
    });
    for (const e of graph.edges) {
      const answers = await Promise.all(e.explain.promql.map(q => client.query(q)));
      for (const a of answers) expect(a).toMatchObject({ ok: true });
      const total = answers.flatMap(a => (a.ok ? a.samples : [])).reduce((n, x) => n + x.value, 0);
      expect(total).toBeGreaterThan(0);
    }
  });

  it('answers every metrics chart query as a range, with L4 and L7 series apart', async () => {
    // Range points fall on step boundaries: wait (bounded) until the newest ones have a rate.
    const ready = (v: MetricsView): boolean =>
      ['request_rate', 'error_rate', 'latency', 'tcp_sent', 'tcp_received'].every(id =>
        v.charts.find(c => c.id === id)?.series.some(x => x.points.length > 0),
      );
    let view: MetricsView | undefined;
    for (let i = 0; i < 120; i++) {
      view = await metricsView(
        client,
        { kind: 'workload', namespace: 'sample', name: 'echo', direction: 'inbound' },
        metricsRange(120, Date.now() / 1000, '30s'),
      );
      if (ready(view)) break;
      await new Promise(resolve => setTimeout(resolve, 250));
    }
    if (view === undefined) throw new Error('no metrics view');
    expect(view.metricsUnavailable).toBeUndefined();
    const points = (chart: string, layer: string): number =>
      view.charts
        .find(c => c.id === chart)
        ?.series.filter(s => s.layer === layer)
        .reduce((n, s) => n + s.points.length, 0) ?? 0;
    expect(points('request_rate', 'L7')).toBeGreaterThan(0);
    expect(points('error_rate', 'L7')).toBeGreaterThan(0);
    expect(points('latency', 'L7')).toBeGreaterThan(0);
    expect(points('tcp_sent', 'L4')).toBeGreaterThan(0);
    expect(points('tcp_received', 'L4')).toBeGreaterThan(0);
    // The scraped target has no waypoint TCP series.
    expect(points('tcp_sent', 'L7')).toBe(0);
    const errors = view.charts.find(c => c.id === 'error_rate')?.series[0]?.points.at(-1)?.[1] ?? 0;
    expect(errors).toBeGreaterThan(0);
    expect(errors).toBeLessThan(1);
  }, 60_000);
});
