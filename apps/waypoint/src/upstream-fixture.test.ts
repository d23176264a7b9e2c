/**
 * The waypoint driven by config captured from upstream istiod (issue 19): the RouteConfiguration
 * and Clusters upstream sends a waypoint for the differential check's HTTPRoute (a header-matched
 * canary rule; an 80/20 split with 5 s timeout, 1 s per try, 3 retries on 503/502 with 100 ms
 * back-off) and DestinationRule (LEAST_REQUEST, connection pool, outlier detection), as they came
 * over the wire (`testing/testdata/upstream-waypoint-reviews.json`, rewritten by
 * `e2e/src/istiod/waypoint-differential.test.ts` with UPDATE_UPSTREAM_FIXTURE=1). Real HTTP
 * requests over HBONE on loopback show the split, the match, the retries and the timeouts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { assignment, httpListener } from './testing/fixtures.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import { HboneBackend, MeshClient, TestXdsServer, createTestPki } from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { seeded } from './testing/harness.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';

interface UpstreamFixture {
  readonly routeConfiguration: ProtoObject & { readonly name: string };
  readonly clusters: Record<
    string,
    ProtoObject & { readonly eds_cluster_config?: { service_name?: string } }
  >;
}

const FIXTURE = JSON.parse(
  readFileSync(new URL('./testing/testdata/upstream-waypoint-reviews.json', import.meta.url), 'utf8'),
) as UpstreamFixture;
const HOST = 'reviews.wpdiff.svc.cluster.local';
const REVIEWS = `inbound-vip|9080|http|${HOST}`;
const RATINGS = 'inbound-vip|9080|http|ratings.wpdiff.svc.cluster.local';
const VIP = '10.96.0.30';

describe('the waypoint on upstream istiod’s captured route and cluster config', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let waypoint: Bound;
  let client: MeshClient;
  const backends: HboneBackend[] = [];
  const captured = captureLogs();
  /** Attempts per request key (`/flaky/<key>`), across both backends. */
  const attempts = new Map<string, number>();

  /** 503 on the first attempt of a key, then 200; `/always-503` always; `/hang` never answers. */
  const handler =
    (name: string): ConstructorParameters<typeof HboneBackend>[2] =>
    (req, res) => {
      const url = req.url ?? '';
      attempts.set(url, (attempts.get(url) ?? 0) + 1);
      if (url.includes('/hang')) return;
      if (url.startsWith('/always-503') || (url.startsWith('/flaky/') && attempts.get(url) === 1)) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
    };

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    const eps = new Map<string, ProtoObject>();
    for (const [cluster, name, n] of [
      [REVIEWS, 'reviews', 1],
      [RATINGS, 'ratings', 2],
    ] as const) {
      const b = new HboneBackend(name, await pki.identity('wpdiff', name), handler(name));
      await b.start();
      backends.push(b);
      eps.set(
        cluster,
        assignment(FIXTURE.clusters[cluster]?.eds_cluster_config?.service_name ?? cluster, [
          {
            address: `10.1.0.${n}`,
            port: 9080,
            hbone: `127.0.0.1:${b.port}`,
            identity: b.identity.id,
            workload: `${name}-v1;wpdiff;${name};v1;Kubernetes`,
          },
        ]),
      );
    }
    for (const [name, cluster] of Object.entries(FIXTURE.clusters)) {
      xds.set(TypeUrl.cluster, name, cluster);
      const cla = eps.get(name);
      if (cla !== undefined) xds.set(TypeUrl.clusterLoadAssignment, String(cla.cluster_name), cla);
    }
    const rc = FIXTURE.routeConfiguration;
    xds.set(TypeUrl.routeConfiguration, rc.name, rc);
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 9080, rc.name));
    const started = await startLoopbackWaypoint({
      xds,
      pki,
      logs: captured.logs,
      namespace: 'wpdiff',
      deps: { random: seeded(19) },
    });
    waypoint = started.waypoint;
    client = new MeshClient(await started.clientOptions('client', `${VIP}:9080`));
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    for (const b of backends) await b.close();
    xds.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    client.get(path, { host: HOST, ...headers });

  it('accepts upstream’s RouteConfiguration and both Clusters (no NACK)', () => {
    expect(FIXTURE.routeConfiguration.name).toBe(REVIEWS);
    expect(Object.keys(FIXTURE.clusters).sort()).toEqual([RATINGS, REVIEWS]);
    expect(waypoint.nacks.size).toBe(0);
  });

  it('splits the catch-all rule 80/20 between reviews and ratings (400 requests)', async () => {
    const counts = { reviews: 0, ratings: 0 };
    for (let i = 0; i < 400; i++) {
      const r = await get(`/split/${i}`);
      expect(r.status).toBe(200);
      counts[r.text as keyof typeof counts]++;
    }
    expect(counts.reviews + counts.ratings).toBe(400);
    // 20 % of 400 is 80; the seeded choice stays well inside ±40.
    expect(counts.ratings).toBeGreaterThanOrEqual(40);
    expect(counts.ratings).toBeLessThanOrEqual(120);
  }, 120_000);

  it('sends the header-matched canary rule to ratings only', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await get('/canary', { 'x-canary': 'yes' });
      expect(r.text).toBe('ratings');
    }
  }, 60_000);

  it('retries a 503 (retriable status code) once it clears, and gives up after 3 retries', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await get(`/flaky/${i}`);
      expect(r.status).toBe(200);
      expect(attempts.get(`/flaky/${i}`)).toBe(2);
    }
    const r = await get('/always-503');
    expect(r.status).toBe(503);
    // The first attempt and num_retries 3.
    expect(attempts.get('/always-503')).toBe(4);
  }, 60_000);

  it('times an attempt out after the 1 s per-try timeout with 504, not retried (504 is no retriable code)', async () => {
    const started = performance.now();
    const r = await get('/hang/split');
    expect(r.status).toBe(504);
    expect(attempts.get('/hang/split')).toBe(1);
    // The per-try timeout (1 s), well before the route's 5 s.
    expect(performance.now() - started).toBeLessThan(4_500);
  }, 60_000);

  it('times the canary rule out after its 2 s request timeout', async () => {
    const r = await get('/canary/hang', { 'x-canary': 'yes' });
    expect(r.status).toBe(504);
  }, 60_000);
});
