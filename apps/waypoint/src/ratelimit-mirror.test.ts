/**
 * The local rate limit filter (as Istio's documented EnvoyFilter inserts it) and request
 * mirroring, through a real waypoint on loopback: 429 `local_rate_limited` with the configured
 * headers beyond the bucket, the bucket refilling, a route's own bucket, and a mirrored copy
 * reaching the shadow backend with the `-shadow` host while the client gets the main backend's
 * answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, hcmListener, ms } from './testing/fixtures.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import {
  HboneBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { seeded, testConfig } from './testing/harness.ts';

const VIP = '10.96.0.30';
const ROUTE = 'ratelimit.80';
const MAIN = 'inbound-vip|80|http|ok.default.svc.cluster.local';
const SHADOW = 'inbound-vip|80|http|shadow.default.svc.cluster.local';
const FILTER = 'envoy.filters.http.local_ratelimit';
const ALL = {
  default_value: { numerator: 100, denominator: 'HUNDRED' },
  runtime_key: 'local_rate_limit_enabled',
};

/** The LocalRateLimit of Istio's rate-limit task, with a bucket of `max` tokens per `fillMs`. */
const limit = (max: number, fillMs: number, extra: ProtoObject = {}): ProtoObject =>
  any(EnvoyType.localRateLimit, {
    stat_prefix: 'http_local_rate_limiter',
    token_bucket: { max_tokens: max, tokens_per_fill: { value: max }, fill_interval: ms(fillMs) },
    filter_enabled: ALL,
    filter_enforced: ALL,
    response_headers_to_add: [
      { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD', header: { key: 'x-local-rate-limit', value: 'true' } },
    ],
    ...extra,
  });

function routes(extra: readonly ProtoObject[] = []): ProtoObject {
  const to = (cluster: string) => ({ cluster, timeout: ms(0) });
  return {
    name: ROUTE,
    virtual_hosts: [
      {
        name: 'ratelimit',
        domains: ['*'],
        routes: [
          {
            name: 'route-bucket',
            match: { prefix: '/route-bucket' },
            route: to(MAIN),
            typed_per_filter_config: {
              [FILTER]: limit(2, 3_600_000, { status: { code: 'ServiceUnavailable' } }),
            },
          },
          {
            name: 'refill',
            match: { prefix: '/refill' },
            route: to(MAIN),
            typed_per_filter_config: { [FILTER]: limit(1, 300) },
          },
          {
            name: 'mirror',
            match: { prefix: '/mirror' },
            route: {
              ...to(MAIN),
              request_mirror_policies: [
                { cluster: SHADOW, runtime_fraction: { default_value: { numerator: 100 } } },
              ],
            },
            // No bucket of its own: this route is not limited.
            typed_per_filter_config: {
              [FILTER]: any(EnvoyType.localRateLimit, { stat_prefix: 'unlimited' }),
            },
          },
          ...extra,
          { name: 'default', match: { prefix: '/' }, route: to(MAIN) },
        ],
      },
    ],
  };
}

/** istiod's chain with the EnvoyFilter's patch applied: local_ratelimit inserted before the router. */
function listener(): ProtoObject {
  return hcmListener({
    chainName: MAIN,
    vip: VIP,
    port: 80,
    routeName: ROUTE,
    httpFilters: [{ name: FILTER, typed_config: limit(4, 3_600_000) }],
  });
}

describe('waypoint local rate limit and request mirroring on loopback', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  const backends: HboneBackend[] = [];
  let shadow: HboneBackend;
  let waypoint: Bound;
  let client: MeshClient;
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    const backend = async (name: string, handler?: ConstructorParameters<typeof HboneBackend>[2]) => {
      const b = new HboneBackend(name, await pki.identity('default', name), handler);
      await b.start();
      backends.push(b);
      return b;
    };
    const ok = await backend('ok');
    // The shadow fails slowly: the client must still get the main backend's answer.
    shadow = await backend('shadow', (_req, res) => {
      setTimeout(() => res.writeHead(500, { 'content-type': 'text/plain' }).end('shadow failed'), 200);
    });
    const ep = (b: HboneBackend, n: number) => ({
      address: `10.1.1.${n}`,
      port: 8080,
      hbone: `127.0.0.1:${b.port}`,
      identity: b.identity.id,
      workload: `${b.name};default;${b.name};v1;Kubernetes`,
    });
    xds.set(TypeUrl.cluster, MAIN, edsCluster(MAIN));
    xds.set(TypeUrl.clusterLoadAssignment, MAIN, assignment(MAIN, [ep(ok, 1)]));
    xds.set(TypeUrl.cluster, SHADOW, edsCluster(SHADOW));
    xds.set(TypeUrl.clusterLoadAssignment, SHADOW, assignment(SHADOW, [ep(shadow, 2)]));
    xds.set(TypeUrl.listener, 'main_internal', listener());
    xds.set(TypeUrl.routeConfiguration, ROUTE, routes());
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      random: seeded(11),
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready, 30_000);
    expect([...waypoint.nacks.values()]).toEqual([]);
    client = new MeshClient({
      identity: await pki.identity('default', 'client'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
    });
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    for (const b of backends) await b.close();
    xds.close();
  });

  it("the filter's bucket of 4: 4 requests pass, the next get 429 local_rate_limited with x-local-rate-limit: true, flag RL", async () => {
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await client.get(`/filter/${i}`));
    expect(results.slice(0, 4).map(r => r.status)).toEqual([200, 200, 200, 200]);
    for (const r of results.slice(4)) {
      expect(r.status).toBe(429);
      expect(r.text).toBe('local_rate_limited');
      expect(r.headers['x-local-rate-limit']).toBe('true');
    }
    expect(results[0]?.headers['x-local-rate-limit']).toBeUndefined();
    expect(await scrapeStats(waypoint)).toMatch(
      /istio_requests_total\{[^}]*response_flags="RL"[^}]*response_code="429"/,
    );
  });

  it("a route's typed_per_filter_config is its own bucket (2 tokens, status 503), apart from the filter's", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await client.get('/route-bucket')).status);
    expect(statuses).toEqual([200, 200, 503, 503]);
  });

  it('the bucket refills: 1 token per 300 ms, limited right after the first request, served again after the fill', async () => {
    expect((await client.get('/refill')).status).toBe(200);
    expect((await client.get('/refill')).status).toBe(429);
    let served = false;
    await waitFor(
      'the refill bucket to refill',
      async () => {
        served = (await client.get('/refill')).status === 200;
        return served;
      },
      20_000,
    );
    expect(served).toBe(true);
  }, 30_000);

  it('mirrors a copy to the shadow cluster with the -shadow host; the client gets the main answer', async () => {
    const before = shadow.requests.length;
    const r = await client.post('/mirror/x?q=1', 'hello');
    expect(r.status).toBe(200);
    const echoed = r.json() as { backend: string; body: string; headers: Record<string, string> };
    expect(echoed.backend).toBe('ok');
    expect(echoed.body).toBe('hello');
    expect(echoed.headers.host).toBe('reviews.default.svc.cluster.local');
    await waitFor('the mirrored copy', () => shadow.requests.length > before);
    const copy = shadow.requests[before]!;
    expect(copy.method).toBe('POST');
    expect(copy.url).toBe('/mirror/x?q=1');
    expect(copy.headers.host).toBe('reviews.default.svc.cluster.local-shadow');
    // Unlimited route: many requests pass (the filter's own bucket is spent).
    for (let i = 0; i < 5; i++) expect((await client.get('/mirror/again')).status).toBe(200);
  });

  it('a push with unrelated changes keeps spent buckets; the limits are counted as Envoy names them', async () => {
    // The filter's and /route-bucket's buckets are spent (1-hour fill) by the tests above.
    expect((await client.get('/route-bucket')).status).toBe(503);
    xds.set(
      TypeUrl.routeConfiguration,
      ROUTE,
      routes([{ name: 'extra', match: { prefix: '/extra' }, route: { cluster: MAIN, timeout: ms(0) } }]),
    );
    await waitFor('the pushed route table', () =>
      (waypoint.state.snapshot().routes.get(ROUTE)?.virtualHosts ?? []).some(v =>
        v.routes.some(r => r.name === 'extra'),
      ),
    );
    expect((await client.get('/route-bucket')).status).toBe(503);
    expect((await client.get('/filter/after-push')).status).toBe(429);
    expect((await client.get('/extra')).status).toBe(429);
    const stats = await scrapeStats(waypoint);
    const value = (name: string): number =>
      Number(/^(\S+) (\S+)$/m.exec(stats.split('\n').find(l => l.startsWith(`${name} `)) ?? '')?.[2] ?? NaN);
    const prefix = 'envoy_http_local_rate_limiter_http_local_rate_limit';
    // Every request through a bucket is `enabled`; `ok` or `rate_limited`; enforced ones too.
    expect(value(`${prefix}_rate_limited`)).toBeGreaterThanOrEqual(8);
    expect(value(`${prefix}_enforced`)).toBe(value(`${prefix}_rate_limited`));
    expect(value(`${prefix}_enabled`)).toBe(value(`${prefix}_ok`) + value(`${prefix}_rate_limited`));
  });
});
