/**
 * Telemetry access logging and metrics overrides end to end on loopback: the HCM's `access_log`
 * (file loggers, text and JSON, a CEL filter) and upstream's `istio.stats` filter (a TypedStruct
 * carrying `stats.PluginConfig`), as istiod emits them. Real HBONE requests through the waypoint;
 * the lines land in temporary files, the metrics on the stats endpoint.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { convertListener } from './config/convert-listener.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';
import {
  any,
  assignment,
  catchAllRoute,
  edsCluster,
  reviewsEndpoint,
  hcmListener,
  statsFilter,
} from './testing/fixtures.ts';
import {
  HboneBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const VIP = '10.96.0.22';
const ROUTE = 'inbound-vip|80|http|reviews.default.svc.cluster.local';
const A = 'outbound|80||reviews-a.default.svc.cluster.local';

const str = (v: string): ProtoObject => ({ stringValue: v });

function fileLog(path: string, format: ProtoObject, filter?: string): ProtoObject {
  return {
    name: 'envoy.access_loggers.file',
    ...(filter === undefined
      ? {}
      : {
          filter: {
            extension_filter: {
              name: 'envoy.access_loggers.extension_filters.cel',
              typed_config: any(EnvoyType.celExpressionFilter, { expression: filter }),
            },
          },
        }),
    typed_config: any(EnvoyType.fileAccessLog, { path, log_format: format }),
  };
}

const text = (t: string): ProtoObject => ({ text_format_source: { inline_string: t } });
const json = (fields: Record<string, string>): ProtoObject => ({
  json_format: { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, str(v)])) },
});

function listener(accessLog: ProtoObject[], stats?: ProtoObject): ProtoObject {
  return hcmListener({
    chainName: ROUTE,
    vip: VIP,
    port: 80,
    routeName: ROUTE,
    httpFilters: stats === undefined ? [] : [stats],
    hcm: { access_log: accessLog },
  });
}

const TEXT_FORMAT =
  '"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% user=%REQ(X-USER)% route=%ROUTE_NAME% %%\n';

describe('waypoint Telemetry access logging and metrics overrides on loopback', () => {
  let xds: TestXdsServer;
  let backend: HboneBackend;
  let waypoint: Bound;
  let client: MeshClient;
  let dir: string;
  let textFile: string;
  let errorsFile: string;
  const captured = captureLogs();

  const setListener = async (l: ProtoObject): Promise<void> => {
    const version = waypoint.state.snapshot().listeners.get('main_internal')?.version;
    xds.set(TypeUrl.listener, 'main_internal', l);
    await waitFor(
      'the listener to be applied',
      () => waypoint.state.snapshot().listeners.get('main_internal')?.version !== version,
    );
    expect(xds.syncState(TypeUrl.listener)).not.toBe('nacked');
  };

  const lines = (file: string): string[] =>
    existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(l => l !== '')
      : [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wp-telemetry-'));
    textFile = join(dir, 'access.log');
    errorsFile = join(dir, 'errors.json');
    const pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    backend = new HboneBackend('a', await pki.identity('default', 'reviews-a'), (req, res) => {
      const status = req.url?.startsWith('/missing') === true ? 404 : 200;
      res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': 'a' }).end('ok');
    });
    await backend.start();
    xds.set(TypeUrl.cluster, A, edsCluster(A));
    xds.set(TypeUrl.clusterLoadAssignment, A, assignment(A, [reviewsEndpoint(backend)]));
    xds.set(
      TypeUrl.listener,
      'main_internal',
      listener(
        [
          fileLog(textFile, text(TEXT_FORMAT)),
          fileLog(
            errorsFile,
            json({
              code: '%RESPONSE_CODE%',
              path: '%REQ(:PATH)%',
              backend: '%RESP(X-BACKEND)%',
              missing: '%REQ(X-NOT-THERE)%',
              line: '%REQ(:METHOD)% %RESPONSE_CODE%',
            }),
            "response.code >= 400 && request.method == 'GET'",
          ),
        ],
        statsFilter([
          {
            name: 'requests_total',
            dimensions: { user: "request.headers['x-user']" },
            tags_to_remove: ['request_protocol'],
          },
          { name: 'request_bytes', drop: true },
        ]),
      ),
    );
    xds.set(TypeUrl.routeConfiguration, ROUTE, catchAllRoute(ROUTE, A));
    const started = await startLoopbackWaypoint({ xds, pki, logs: captured.logs });
    waypoint = started.waypoint;
    client = new MeshClient(await started.clientOptions('productpage', `${VIP}:80`));
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    await backend.close();
    xds.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes each request in the configured text format, instead of the built-in access log', async () => {
    expect((await client.get('/ok?x=1', { 'x-user': 'alice' })).status).toBe(200);
    expect((await client.get('/missing', { 'x-user': 'bob' })).status).toBe(404);
    await waitFor('two text lines', () => lines(textFile).length >= 2);
    expect(lines(textFile)).toEqual([
      '"GET /ok?x=1 HTTP/1.1" 200 - user=alice route=default %',
      '"GET /missing HTTP/1.1" 404 - user=bob route=default %',
    ]);
    expect(captured.records.filter(r => r.msg === 'request')).toEqual([]);
  });

  it('writes JSON lines only for requests the CEL filter selects, numbers as numbers', async () => {
    await waitFor('one JSON line', () => lines(errorsFile).length >= 1);
    expect(lines(errorsFile).map(l => JSON.parse(l) as unknown)).toEqual([
      { code: 404, path: '/missing', backend: 'a', missing: null, line: 'GET 404' },
    ]);
    // A POST that fails is not selected (request.method == 'GET').
    expect((await client.post('/missing', 'x')).status).toBe(404);
    await waitFor('three text lines', () => lines(textFile).length >= 3);
    expect(lines(errorsFile)).toHaveLength(1);
  });

  it('applies the metric overrides: a dropped metric is not exported, tags removed and upserted', async () => {
    const stats = await scrapeStats(waypoint);
    const requests = stats.split('\n').filter(l => l.startsWith('istio_requests_total{'));
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.some(l => l.includes('user="alice"') && l.includes('response_code="200"'))).toBe(true);
    expect(requests.some(l => l.includes('user="bob"') && l.includes('response_code="404"'))).toBe(true);
    // The POST had no x-user: Istio's `unknown`.
    expect(requests.some(l => l.includes('user="unknown"'))).toBe(true);
    expect(requests.every(l => !l.includes('request_protocol='))).toBe(true);
    expect(stats).not.toContain('istio_request_bytes');
    // Metrics without overrides keep the standard labels.
    const responses = stats.split('\n').filter(l => l.startsWith('istio_response_bytes_count{'));
    expect(responses.length).toBeGreaterThan(0);
    expect(responses.every(l => l.includes('request_protocol="http"') && !l.includes('user='))).toBe(true);
  });

  it('logs nothing when access logging is off (/dev/null), and returns to the built-in log without access_log', async () => {
    await setListener(listener([fileLog('/dev/null', text(''))]));
    const before = lines(textFile).length;
    expect((await client.get('/quiet')).status).toBe(200);
    expect((await client.get('/missing-quiet')).status).toBe(404);
    expect(lines(textFile)).toHaveLength(before);
    expect(captured.records.filter(r => r.msg === 'request')).toEqual([]);
    // Without access_log and the stats filter, the waypoint's defaults are back.
    await setListener(listener([]));
    expect((await client.get('/builtin')).status).toBe(200);
    await waitFor('the built-in access log line', () =>
      captured.records.some(r => r.msg === 'request' && r.path === '/builtin'),
    );
    const stats = await scrapeStats(waypoint);
    expect(stats).toContain('istio_request_bytes');
  });

  it('NACKs what it cannot honour: another access logger, an unsupported filter or tag expression', () => {
    const problems = (l: ProtoObject): string[] => {
      const c = convertListener('main_internal', '1', l);
      return c.ok ? [] : [...c.problems];
    };
    expect(
      problems(
        listener([{ name: 'envoy.access_loggers.open_telemetry', typed_config: any(EnvoyType.router, {}) }]),
      ),
    ).toEqual([expect.stringContaining('is not supported (only envoy.access_loggers.file)') as string]);
    expect(problems(listener([fileLog('/dev/stdout', text('x'), "has(request.headers['x'])")]))).toEqual([
      expect.stringContaining('is not supported') as string,
    ]);
    expect(
      problems(
        listener([], statsFilter([{ name: 'requests_total', dimensions: { x: 'request.size + 1' } }])),
      ),
    ).toEqual([expect.stringContaining('dimensions.x') as string]);
  });
});
