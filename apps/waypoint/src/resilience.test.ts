/**
 * The waypoint's resilience features end to end on loopback: circuit breaking (max_connections 1,
 * max_pending_requests 1 under 20 concurrent clients), the HTTP fault filter (abort and delay, as
 * istiod's per-route config) and outlier detection (one of three endpoints answering 500).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, ms, router } from './testing/fixtures.ts';
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

const VIP = '10.96.0.20';
const ROUTE = 'resilience.80';
const OK = 'outbound|80||ok.default.svc.cluster.local';
const LIMITED = 'outbound|80||limited.default.svc.cluster.local';
const OUTLIER = 'outbound|80||three.default.svc.cluster.local';

/** istiod's form of a VirtualService `fault` on a route. */
const fault = (config: ProtoObject): ProtoObject => ({
  'envoy.filters.http.fault': any(EnvoyType.fault, config),
});
const perMillion = (percent: number): ProtoObject => ({
  numerator: percent * 10_000,
  denominator: 'MILLION',
});

function routes(): ProtoObject {
  const to = (cluster: string) => ({ cluster, timeout: ms(0) });
  return {
    name: ROUTE,
    virtual_hosts: [
      {
        name: 'resilience',
        domains: ['*'],
        routes: [
          { name: 'limited', match: { prefix: '/limited' }, route: to(LIMITED) },
          {
            name: 'abort-10',
            match: { prefix: '/abort-10' },
            route: to(OK),
            typed_per_filter_config: fault({ abort: { http_status: 503, percentage: perMillion(10) } }),
          },
          {
            name: 'abort-all',
            match: { prefix: '/abort-all' },
            route: to(OK),
            typed_per_filter_config: fault({ abort: { http_status: 418, percentage: perMillion(100) } }),
          },
          {
            name: 'delay',
            match: { prefix: '/delay' },
            route: to(OK),
            typed_per_filter_config: fault({ delay: { fixed_delay: ms(400), percentage: perMillion(100) } }),
          },
          { name: 'three', match: { prefix: '/three' }, route: to(OUTLIER) },
          { name: 'default', match: { prefix: '/' }, route: to(OK) },
        ],
      },
    ],
  };
}

/** istiod's chain: HCM over RDS with the fault filter (empty config) before the router. */
function listener(): ProtoObject {
  return {
    name: 'main_internal',
    internal_listener: {},
    filter_chains: [
      {
        name: 'inbound-vip|80|http|resilience.default.svc.cluster.local',
        filter_chain_match: {
          destination_port: { value: 80 },
          prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: any(EnvoyType.httpConnectionManager, {
              stat_prefix: ROUTE,
              rds: { route_config_name: ROUTE },
              http_filters: [
                { name: 'envoy.filters.http.fault', typed_config: any(EnvoyType.fault, {}) },
                router,
              ],
            }),
          },
        ],
      },
    ],
  };
}

describe('waypoint resilience on loopback', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  const backends: HboneBackend[] = [];
  let waypoint: Bound;
  let clientOptions: ConstructorParameters<typeof MeshClient>[0];
  let client: MeshClient;
  let inFlight = 0;
  let maxInFlight = 0;
  const captured = captureLogs();

  const stats = (): Promise<string> => scrapeStats(waypoint);

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
    // Holds each request 100 ms and records how many it serves at once.
    const slow = await backend('slow', (_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('slow');
      }, 100);
    });
    const good1 = await backend('good-1');
    const good2 = await backend('good-2');
    const bad = await backend('bad', (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('bad');
    });
    const ep = (b: HboneBackend, n: number) => ({
      address: `10.1.0.${n}`,
      port: 8080,
      hbone: `127.0.0.1:${b.port}`,
      identity: b.identity.id,
      workload: `${b.name};default;${b.name};v1;Kubernetes`,
    });
    xds.set(TypeUrl.cluster, OK, edsCluster(OK));
    xds.set(TypeUrl.clusterLoadAssignment, OK, assignment(OK, [ep(ok, 1)]));
    xds.set(
      TypeUrl.cluster,
      LIMITED,
      edsCluster(LIMITED, {
        circuit_breakers: {
          thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 1 } }],
        },
      }),
    );
    xds.set(TypeUrl.clusterLoadAssignment, LIMITED, assignment(LIMITED, [ep(slow, 2)]));
    xds.set(
      TypeUrl.cluster,
      OUTLIER,
      edsCluster(OUTLIER, {
        outlier_detection: {
          consecutive_5xx: { value: 3 },
          enforcing_consecutive_5xx: { value: 100 },
          interval: ms(1000),
          base_ejection_time: ms(60_000),
          max_ejection_percent: { value: 50 },
          enforcing_success_rate: { value: 0 },
        },
      }),
    );
    xds.set(
      TypeUrl.clusterLoadAssignment,
      OUTLIER,
      assignment(OUTLIER, [ep(good1, 3), ep(good2, 4), ep(bad, 5)]),
    );
    xds.set(TypeUrl.listener, 'main_internal', listener());
    xds.set(TypeUrl.routeConfiguration, ROUTE, routes());
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      random: seeded(7),
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    expect(waypoint.nacks.size).toBe(0);
    clientOptions = {
      identity: await pki.identity('default', 'client'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
    };
    client = new MeshClient(clientOptions);
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    for (const b of backends) await b.close();
    xds.close();
  });

  it('circuit breaking: 20 concurrent clients over max_connections 1 and max_pending_requests 1 get some 503 UO; the backend never serves two at once', async () => {
    const clients = Array.from({ length: 20 }, () => new MeshClient(clientOptions));
    try {
      const results = await Promise.all(
        clients.map(async c => {
          const out: Awaited<ReturnType<MeshClient['get']>>[] = [];
          for (let i = 0; i < 3; i++) out.push(await c.get(`/limited/${i}`));
          return out;
        }),
      );
      const all = results.flat();
      const overflow = all.filter(r => r.status === 503);
      expect(overflow.length).toBeGreaterThan(0);
      expect(all.filter(r => r.status === 200).length).toBeGreaterThan(0);
      expect(all.every(r => r.status === 200 || r.status === 503)).toBe(true);
      expect(overflow[0]?.text).toBe(
        'upstream connect error or disconnect/reset before headers. reset reason: overflow',
      );
      // Envoy's router marks a request dropped by a circuit breaker.
      expect(overflow[0]?.headers['x-envoy-overloaded']).toBe('true');
      // Envoy's counters: each 503 UO here is a pending overflow; requests that waited for the
      // one connection count as connection overflows.
      const text = await stats();
      const value = (name: string): number => {
        const line = text
          .split('\n')
          .find(l => l.startsWith(`${name}{`) && l.includes(`cluster_name="${LIMITED}"`));
        return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
      };
      expect(value('envoy_cluster_upstream_rq_pending_overflow')).toBe(overflow.length);
      expect(value('envoy_cluster_upstream_cx_overflow')).toBeGreaterThan(0);
      expect(maxInFlight).toBe(1);
      expect(await stats()).toMatch(
        /istio_requests_total\{[^}]*destination_service="limited[^"]*"[^}]*response_flags="UO"[^}]*response_code="503"/,
      );
    } finally {
      await Promise.all(clients.map(c => c.close()));
    }
  }, 60_000);

  it('fault abort at 10 % answers 503 to 10 ± 3 % of 1,000 requests; at 100 % every one, flag FI', async () => {
    let aborted = 0;
    for (let i = 0; i < 1000; i++) {
      const r = await client.get(`/abort-10/${i}`);
      if (r.status === 503) {
        expect(r.text).toBe('fault filter abort');
        aborted++;
      } else expect(r.status).toBe(200);
    }
    expect(aborted).toBeGreaterThanOrEqual(70);
    expect(aborted).toBeLessThanOrEqual(130);
    for (let i = 0; i < 5; i++) expect((await client.get('/abort-all')).status).toBe(418);
    expect(await stats()).toMatch(/istio_requests_total\{[^}]*response_flags="FI"[^}]*response_code="418"/);
  }, 120_000);

  it('fault delay holds each request for the fixed delay before forwarding it, flag DI', async () => {
    const started = performance.now();
    const r = await client.get('/delay');
    expect(r.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(await stats()).toMatch(/istio_requests_total\{[^}]*response_flags="DI"[^}]*response_code="200"/);
  });

  it('drains on shutdown: not ready, new tunnels still served for the drain duration, requests in flight finish', async () => {
    const identity = await pki.identity('default', 'waypoint');
    const second = await build(
      { ...testConfig(), drainDurationMs: 500, terminationGracePeriodMs: 5_000 },
      { xdsConnect: xds.connect(), identity, processMetrics: false, logs: captured.logs },
    );
    await waitFor('xDS sync', () => second.readiness.ready);
    const options = { ...clientOptions, waypoint: `127.0.0.1:${second.hboneAddress.port}` };
    const busy = new MeshClient(options);
    const late = new MeshClient(options);
    try {
      // Held 100 ms by the slow backend: in flight when the shutdown starts.
      const inFlightRequest = busy.get('/limited/drain');
      await waitFor('the request at the backend', () => inFlight > 0);
      const stopped = second.shutdown();
      const ready = await fetch(`http://127.0.0.1:${second.readinessAddress.port}/healthz/ready`);
      expect(ready.status).toBe(503);
      // A new tunnel during the drain is still served, and told to close after its answer.
      const lateAnswer = await late.get('/drain-late');
      expect(lateAnswer.status).toBe(200);
      expect(lateAnswer.headers.connection).toBe('close');
      expect((await inFlightRequest).status).toBe(200);
      await stopped;
    } finally {
      await busy.close();
      await late.close();
    }
  });

  it('outlier detection ejects the endpoint answering 500 after 3 in a row; then every request succeeds', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 60; i++) codes.push((await client.get(`/three/${i}`)).status);
    // Round robin over three endpoints: the bad one answers requests 3, 6 and 9, and is ejected.
    expect(codes.filter(c => c === 500)).toHaveLength(3);
    expect(codes.slice(9).every(c => c === 200)).toBe(true);
    const text = await stats();
    expect(text).toMatch(
      /envoy_cluster_outlier_detection_ejections_enforced_total\{cluster_name="outbound\|80\|\|three[^"]*"\} 1/,
    );
  });
});
