/**
 * The waypoint end to end on loopback: our ADS server feeds it Envoy resources; a real HBONE
 * client sends HTTP/1.1 through it to two HBONE echo backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import {
  HboneBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  requestsTotalLine,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { testConfig } from './testing/harness.ts';

const VIP = '10.96.0.10';
const ROUTE = 'reviews.80';
const A = 'outbound|80||reviews-a.default.svc.cluster.local';
const B = 'outbound|80||reviews-b.default.svc.cluster.local';
const LIMITED = 'outbound|80|limited|reviews-a.default.svc.cluster.local';
const DEAD = 'outbound|80||dead.default.svc.cluster.local';
const EMPTY = 'outbound|80||empty.default.svc.cluster.local';

/** Cycles 0.05, 0.15, ..., 0.95: weighted picks are exact over every ten requests. */
function cyclingRandom(): () => number {
  let i = 0;
  return () => {
    const v = (i % 10) / 10 + 0.05;
    i++;
    return v;
  };
}

const rbacDenyAdmin = {
  rules: {
    action: 'DENY',
    policies: {
      'ns[default]-policy[deny-admin]-rule[0]': {
        permissions: [{ url_path: { path: { prefix: '/admin' } } }],
        principals: [
          {
            filter_state: {
              key: 'io.istio.peer_principal',
              string_match: { prefix: 'spiffe://cluster.local/ns/default/' },
            },
          },
        ],
      },
    },
  },
};

function routes(): Record<string, unknown> {
  const cluster = (name: string, extra: Record<string, unknown> = {}) => ({
    cluster: name,
    timeout: ms(0),
    ...extra,
  });
  return {
    name: ROUTE,
    virtual_hosts: [
      {
        name: 'reviews',
        domains: ['reviews.default.svc.cluster.local', `${VIP}:80`, '*'],
        response_headers_to_add: [{ header: { key: 'x-vhost', value: 'reviews' } }],
        routes: [
          {
            name: 'split',
            match: { prefix: '/split' },
            route: {
              weighted_clusters: {
                clusters: [
                  { name: A, weight: { value: 80 } },
                  { name: B, weight: { value: 20 } },
                ],
              },
              timeout: ms(0),
            },
          },
          {
            name: 'canary',
            match: { prefix: '/', headers: [{ name: 'x-canary', string_match: { exact: 'yes' } }] },
            route: cluster(B),
            request_headers_to_add: [
              { header: { key: 'x-routed', value: 'canary' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
            ],
          },
          {
            name: 'flaky',
            match: { prefix: '/flaky' },
            route: cluster(A, {
              retry_policy: {
                retry_on: '5xx',
                num_retries: { value: 3 },
                retry_back_off: { base_interval: ms(1) },
              },
            }),
          },
          { name: 'slow', match: { path: '/slow' }, route: cluster(A, { timeout: ms(200) }) },
          { name: 'hang', match: { path: '/hang' }, route: cluster(LIMITED, { timeout: ms(2000) }) },
          { name: 'limited', match: { path: '/limited' }, route: cluster(LIMITED) },
          {
            name: 'dead',
            match: { path: '/dead' },
            route: cluster(DEAD, {
              retry_policy: {
                retry_on: 'connect-failure',
                num_retries: { value: 1 },
                retry_back_off: { base_interval: ms(1) },
              },
            }),
          },
          { name: 'empty', match: { path: '/empty' }, route: cluster(EMPTY) },
          { name: 'rewrite', match: { prefix: '/old/' }, route: cluster(A, { prefix_rewrite: '/new/' }) },
          {
            name: 'moved',
            match: { path: '/moved' },
            redirect: { host_redirect: 'other.example', path_redirect: '/here', response_code: 'FOUND' },
          },
          { name: 'default', match: { prefix: '/' }, route: cluster(A) },
        ],
      },
    ],
  };
}

describe('waypoint on loopback', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let a: HboneBackend;
  let b: HboneBackend;
  let waypoint: Bound;
  let client: MeshClient;
  let clientOptions: ConstructorParameters<typeof MeshClient>[0];
  const flaky = new Map<string, number>();
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    a = new HboneBackend('a', await pki.identity('default', 'reviews-a'), (req, res, body) => {
      if (req.url?.startsWith('/flaky') === true) {
        const id = String(req.headers['x-test-id']);
        const n = (flaky.get(id) ?? 0) + 1;
        flaky.set(id, n);
        const status = n <= 2 ? 503 : 200;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`attempt ${n}`);
        return;
      }
      if (req.url === '/slow' || req.url === '/hang') {
        // Never answers: the waypoint's route timeout must.
        return;
      }
      const text = JSON.stringify({ backend: 'a', url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    });
    b = new HboneBackend('b', await pki.identity('default', 'reviews-b'));
    await a.start();
    await b.start();
    const waypointIdentity = await pki.identity('default', 'waypoint');
    xds.set(TypeUrl.cluster, A, edsCluster(A));
    xds.set(TypeUrl.cluster, B, edsCluster(B));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      A,
      assignment(A, [
        {
          address: '10.1.0.1',
          port: 8080,
          hbone: `127.0.0.1:${a.port}`,
          identity: a.identity.id,
          workload: 'reviews-a;default;reviews;v1;Kubernetes',
        },
      ]),
    );
    xds.set(
      TypeUrl.clusterLoadAssignment,
      B,
      assignment(B, [
        {
          address: '10.1.0.2',
          port: 8080,
          hbone: `127.0.0.1:${b.port}`,
          // No identity: b is accepted as any identity of the trust domain, as upstream does.
          workload: 'reviews-b;default;reviews;v2;Kubernetes',
        },
      ]),
    );
    xds.set(
      TypeUrl.cluster,
      LIMITED,
      edsCluster(LIMITED, { circuit_breakers: { thresholds: [{ max_requests: { value: 1 } }] } }),
    );
    xds.set(TypeUrl.clusterLoadAssignment, LIMITED, {
      ...assignment(LIMITED, [
        {
          address: '10.1.0.1',
          port: 8080,
          hbone: `127.0.0.1:${a.port}`,
          identity: a.identity.id,
          workload: 'reviews-a;default;reviews;v1;Kubernetes',
        },
      ]),
    });
    xds.set(TypeUrl.cluster, DEAD, edsCluster(DEAD));
    // Port 1 on loopback: nothing listens there, the connection is refused.
    xds.set(
      TypeUrl.clusterLoadAssignment,
      DEAD,
      assignment(DEAD, [
        {
          address: '10.1.0.9',
          port: 8080,
          hbone: '127.0.0.1:1',
          identity: a.identity.id,
          workload: 'dead;default;dead;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.cluster, EMPTY, edsCluster(EMPTY));
    xds.set(TypeUrl.clusterLoadAssignment, EMPTY, { cluster_name: EMPTY });
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 80, ROUTE, rbacDenyAdmin));
    xds.set(TypeUrl.routeConfiguration, ROUTE, routes());
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      random: cyclingRandom(),
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    clientOptions = {
      identity: await pki.identity('default', 'productpage'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
      baggage:
        'k8s.namespace.name=default,k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1,k8s.cluster.name=Kubernetes',
    };
    client = new MeshClient(clientOptions);
  });

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    await client.close();
    await waypoint.shutdown();
    await a.close();
    await b.close();
    xds.close();
  });

  it('is ready on /healthz/ready once xDS has synced', async () => {
    const res = await fetch(`http://127.0.0.1:${waypoint.readinessAddress.port}/healthz/ready`);
    expect(res.status).toBe(200);
  });

  it('reads and sets the log level on the admin port’s /logging, and rejects an unknown level with 400', async () => {
    const admin = `http://127.0.0.1:${waypoint.adminAddress.port}/logging`;
    const before = await (await fetch(admin)).text();
    expect(before).toMatch(/^current log level is /);
    const set = await fetch(`${admin}?level=xds=warn`, { method: 'POST' });
    expect(set.status).toBe(200);
    expect(await set.text()).toMatch(/xds=warn/);
    const bad = await fetch(`${admin}?level=loud`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/invalid level "loud"/);
    const reset = await fetch(`${admin}?reset`, { method: 'POST' });
    expect(await reset.text()).toBe(before);
  });

  it('forwards to the default route over HBONE with the waypoint identity and the endpoint authority', async () => {
    const res = await client.get('/hello?x=1');
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ backend: 'a', url: '/hello?x=1' });
    expect(res.headers['x-vhost']).toBe('reviews');
    expect(res.headers['x-envoy-upstream-service-time']).toMatch(/^\d+$/);
    const seen = a.requests.at(-1)!;
    expect(seen.peer).toBe('spiffe://cluster.local/ns/default/sa/waypoint');
    expect(seen.authority).toBe('10.1.0.1:8080');
    expect(seen.headers['x-request-id']).toBeTypeOf('string');
  });

  it('serves h2c inside the tunnel (HTTP/2 prior knowledge)', async () => {
    const h2 = new MeshClient({ ...clientOptions, h2: true });
    try {
      const res = await h2.get('/hello-h2', { 'x-canary': 'yes' });
      expect(res.status).toBe(200);
      expect(res.json()).toMatchObject({
        backend: 'b',
        url: '/hello-h2',
        headers: { host: 'reviews.default.svc.cluster.local' },
      });
      expect((await h2.get('/admin')).status).toBe(403);
    } finally {
      await h2.close();
    }
  });

  it('splits by weight (80/20)', async () => {
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 20; i++) {
      const res = await client.get('/split');
      counts[(res.json() as { backend: 'a' | 'b' }).backend]++;
    }
    expect(counts).toEqual({ a: 16, b: 4 });
  });

  it('matches on a header and applies request header modifiers', async () => {
    const res = await client.get('/anything', { 'x-canary': 'yes', 'x-routed': 'client' });
    expect(res.json()).toMatchObject({ backend: 'b', headers: { 'x-routed': 'canary' } });
  });

  it('retries on 503 until the upstream succeeds', async () => {
    const res = await client.get('/flaky', { 'x-test-id': 'one' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('attempt 3');
  });

  it('answers 504 when the route timeout passes', async () => {
    const res = await client.get('/slow');
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
  });

  it('answers 503 UO over the circuit breaker max_requests', async () => {
    const hanging = client.get('/hang');
    await waitFor('the first request at the backend', () => a.requests.some(r => r.url === '/hang'));
    // A second connection: the first one is busy with the hanging request.
    const other = new MeshClient(clientOptions);
    const second = await other.get('/limited').finally(() => other.close());
    expect(second.status).toBe(503);
    expect(second.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    );
    expect((await hanging).status).toBe(504);
    expect((await client.get('/limited')).status).toBe(200);
  });

  it('answers 503 UF,URX when the upstream refuses connections after a retry', async () => {
    const res = await client.get('/dead');
    expect(res.status).toBe(503);
    expect(res.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    );
  });

  it('answers 503 UH when the cluster has no endpoint', async () => {
    const res = await client.get('/empty');
    expect(res.status).toBe(503);
    expect(res.text).toBe('no healthy upstream');
  });

  it('rewrites the path prefix and redirects', async () => {
    expect((await client.get('/old/x')).json()).toMatchObject({ url: '/new/x' });
    const moved = await client.get('/moved');
    expect(moved.status).toBe(302);
    expect(moved.headers.location).toBe('http://other.example/here');
  });

  it('denies by RBAC with 403', async () => {
    const res = await client.get('/admin/users');
    expect(res.status).toBe(403);
    expect(res.text).toBe('RBAC: access denied');
  });

  it('normalises the path before RBAC, so encoded or doubled slashes do not bypass a deny', async () => {
    expect((await client.get('/./admin/users')).status).toBe(403);
    expect((await client.get('/%61dmin/users')).status).toBe(403);
    expect((await client.get('/public/../admin')).status).toBe(403);
  });

  it('rejects conflicting Content-Length and Transfer-Encoding with 400 and forwards nothing', async () => {
    const before = a.requests.length + b.requests.length;
    const reply = await client.raw(
      'POST /smuggle HTTP/1.1\r\nhost: reviews\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nhost: reviews\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(a.requests.length + b.requests.length).toBe(before);
    expect((await client.get('/hello')).status).toBe(200);
  });

  it('exports Istio request metrics with reporter="waypoint"', async () => {
    const text = await scrapeStats(waypoint);
    const line = requestsTotalLine(text, 'destination_workload="reviews-a"', 'response_code="200"');
    expect(line).toBeDefined();
    expect(line).toContain('reporter="waypoint"');
    expect(line).toContain('source_workload="productpage-v1"');
    expect(line).toContain('source_principal="spiffe://cluster.local/ns/default/sa/productpage"');
    expect(line).toContain('destination_service="reviews-a.default.svc.cluster.local"');
    expect(line).toContain('destination_principal="spiffe://cluster.local/ns/default/sa/reviews-a"');
    expect(text).toMatch(/istio_requests_total\{[^}]*response_flags="UT"[^}]*response_code="504"/);
    expect(text).toMatch(/istio_requests_total\{[^}]*response_code="403"/);
    expect(text).toMatch(/istio_requests_total\{[^}]*response_flags="UO"[^}]*response_code="503"/);
    expect(text).toMatch(/istio_requests_total\{[^}]*response_flags="UF,URX"[^}]*response_code="503"/);
    expect(text).toMatch(/istio_requests_total\{[^}]*response_flags="UH"[^}]*response_code="503"/);
    expect(text).toContain('istio_request_duration_milliseconds_bucket{');
    // The retries of '/flaky' (two 503s before the success), counted on its cluster.
    expect(text).toMatch(/envoy_cluster_upstream_rq_retry\{cluster_name="[^"]+"\} [1-9]/);
  });

  it('NACKs an unsupported resource and keeps serving the last good config', async () => {
    const bad = routes();
    (bad.virtual_hosts as Record<string, unknown>[])[0]!.routes = [
      {
        match: { prefix: '/' },
        route: { cluster: A, request_mirror_policies: [{ cluster_header: 'x-mirror' }] },
      },
    ];
    xds.set(TypeUrl.routeConfiguration, ROUTE, bad);
    await waitFor('the NACK', () => xds.syncState(TypeUrl.routeConfiguration) === 'nacked');
    expect(xds.lastNack(TypeUrl.routeConfiguration)).toContain(
      'virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster_header: is not supported by the waypoint',
    );
    expect((await client.get('/split')).status).toBe(200);
    expect(waypoint.nacks.get(TypeUrl.routeConfiguration)?.nack).toContain(ROUTE);
  });

  it('reports a taken HBONE port as WAYPOINT_BIND_FAILED naming the listener', async () => {
    const config = { ...testConfig(), hboneAddress: { host: '127.0.0.1', port: waypoint.hboneAddress.port } };
    await expect(
      build(config, {
        xdsConnect: xds.connect(),
        identity: await pki.identity('default', 'waypoint'),
        processMetrics: false,
        logs: captureLogs().logs,
      }),
    ).rejects.toMatchObject({
      code: 'WAYPOINT_BIND_FAILED',
      message: expect.stringContaining(`HBONE on 127.0.0.1:${waypoint.hboneAddress.port}`) as unknown,
    });
  });

  it('applies a route change to new requests', async () => {
    const next = routes();
    (next.virtual_hosts as Record<string, unknown>[])[0]!.routes = [
      {
        name: 'all',
        match: { prefix: '/' },
        direct_response: { status: 418, body: { inline_string: 'teapot' } },
      },
    ];
    xds.set(TypeUrl.routeConfiguration, ROUTE, next);
    await waitFor('the new route', async () => (await client.get('/x')).status === 418);
    expect(any(EnvoyType.router, {})['@type']).toContain('Router');
  });
});
