/**
 * Circuit breaking on HTTP/2 upstreams, end to end on loopback: an h2c client and a grpc-js
 * client (through an HBONE forwarder, as ztunnel's outbound) → waypoint → HBONE → an h2c backend
 * and a grpc-js server that hold each request until the test lets it go, so the concurrency the
 * backend sees is exact. The clusters speak HTTP/2 as istiod writes gRPC ports
 * (`explicit_http_config.http2_protocol_options`):
 *
 * - `max_requests` 3: of 6 concurrent streams, 3 reach the backend and 3 get 503 `UO` at once;
 * - `max_concurrent_streams` 1, `max_connections` 1, `max_pending_requests` 2: one stream at the
 *   backend, two wait in the waypoint and are served in turn, the rest get 503 `UO`;
 * - `max_requests_per_connection` 2: a new upstream connection every two requests;
 * - gRPC over `max_requests` 2: the extra calls end UNAVAILABLE.
 *
 * Envoy's counters come out on the stats port: `envoy_cluster_upstream_rq_pending_overflow`
 * (both `max_requests` and `max_pending_requests`) and `envoy_cluster_upstream_cx_overflow`.
 */
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session, Http2Server, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { testConfig } from './testing/harness.ts';
import { any, assignment, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import {
  HboneForwarder,
  HboneTcpBackend,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';

const VIP = '10.96.0.40';
const ROUTE = 'cb-h2.80';
const STREAMS = 'outbound|80||cb-streams.default.svc.cluster.local';
const PENDING = 'outbound|80||cb-pending.default.svc.cluster.local';
const PER_CONN = 'outbound|80||cb-per-conn.default.svc.cluster.local';
const GRPC = 'outbound|80||cb-grpc.default.svc.cluster.local';
const PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const OVERFLOW = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

/** An HTTP/2 cluster as istiod writes a gRPC port's, with `thresholds` and protocol options. */
function h2Cluster(
  name: string,
  thresholds: ProtoObject,
  options: { readonly http2?: ProtoObject; readonly common?: ProtoObject } = {},
): ProtoObject {
  return edsCluster(name, {
    circuit_breakers: { thresholds: [thresholds] },
    typed_extension_protocol_options: {
      [PROTOCOL_OPTIONS]: any(EnvoyType.httpProtocolOptions, {
        explicit_http_config: { http2_protocol_options: options.http2 ?? {} },
        ...(options.common === undefined ? {} : { common_http_protocol_options: options.common }),
      }),
    },
  });
}

interface Msg {
  readonly text: string;
}
const json = {
  serialize: (v: Msg): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString('utf8')) as Msg,
};
const HOLD: grpc.MethodDefinition<Msg, Msg> = {
  path: '/test.Hold/Unary',
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
};

/** Requests per group (`/a/...` → `a`) as the backend sees them: open now, most at once, held. */
class Backend {
  readonly active = new Map<string, number>();
  readonly most = new Map<string, number>();
  readonly served = new Map<string, number>();
  readonly sessions = new Map<string, Set<object>>();
  readonly #held: { group: string; stream: ServerHttp2Stream; path: string }[] = [];
  readonly #auto = new Set<string>();

  held(group: string): number {
    return this.#held.filter(h => h.group === group).length;
  }

  /** Answers the held requests of `group`; with `auto`, later ones are answered at once. */
  release(group: string, auto: boolean): void {
    if (auto) this.#auto.add(group);
    else this.#auto.delete(group);
    for (const h of this.#held.filter(x => x.group === group)) this.#answer(h.stream, h.group, h.path);
    this.#held.splice(0, this.#held.length, ...this.#held.filter(h => h.group !== group));
  }

  hold(group: string): void {
    this.#auto.delete(group);
  }

  onStream(stream: ServerHttp2Stream, path: string): void {
    stream.on('error', () => undefined);
    const group = path.split('/')[1] ?? '';
    const session = stream.session;
    if (session !== undefined) {
      const set = this.sessions.get(group) ?? new Set<object>();
      set.add(session);
      this.sessions.set(group, set);
    }
    const now = (this.active.get(group) ?? 0) + 1;
    this.active.set(group, now);
    this.most.set(group, Math.max(this.most.get(group) ?? 0, now));
    stream.once('close', () => this.active.set(group, (this.active.get(group) ?? 1) - 1));
    if (this.#auto.has(group)) this.#answer(stream, group, path);
    else this.#held.push({ group, stream, path });
  }

  #answer(stream: ServerHttp2Stream, group: string, path: string): void {
    this.served.set(group, (this.served.get(group) ?? 0) + 1);
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`served ${path}`);
  }
}

interface Answer {
  readonly status: number;
  readonly text: string;
  /** The `x-envoy-overloaded` header (Envoy's mark of a circuit-breaker drop). */
  readonly overloaded: string | undefined;
}

/** One GET on `session`; resolves with the status and body. */
function get(session: ClientHttp2Session, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':authority': 'cb.default.svc.cluster.local' });
    let status = 0;
    let overloaded: string | undefined;
    const chunks: Buffer[] = [];
    req.on('response', headers => {
      status = Number(headers[':status']);
      const o = headers['x-envoy-overloaded'];
      overloaded = Array.isArray(o) ? o.join(',') : o;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      resolve({ status, text: Buffer.concat(chunks).toString('utf8'), overloaded });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Starts `n` calls and counts those that settled. */
function concurrently<T>(
  n: number,
  call: (i: number) => Promise<T>,
): { all: Promise<T[]>; settled: () => T[] } {
  const done: T[] = [];
  const all = Promise.all(
    Array.from({ length: n }, (_, i) =>
      call(i).then(v => {
        done.push(v);
        return v;
      }),
    ),
  );
  return { all, settled: () => [...done] };
}

/** The value of a Prometheus counter series that carries `cluster`, or 0. */
function counter(stats: string, name: string, cluster: string): number {
  const line = stats
    .split('\n')
    .find(l => l.startsWith(`${name}{`) && l.includes(`cluster_name="${cluster}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('waypoint circuit breaking on HTTP/2 upstreams (h2c and gRPC over HBONE)', () => {
  let xds: TestXdsServer;
  let h2Server: Http2Server;
  let h2Backend: HboneTcpBackend;
  let grpcServer: grpc.Server;
  let grpcBackend: HboneTcpBackend;
  let waypoint: Bound;
  let forwarder: HboneForwarder;
  const backend = new Backend();
  const serverSessions: ServerHttp2Session[] = [];
  const grpcHeld: ((err: grpc.ServiceError | null, value?: Msg) => void)[] = [];
  let grpcActive = 0;
  let grpcMost = 0;
  const clients: ClientHttp2Session[] = [];
  const captured = captureLogs();

  const client = (): ClientHttp2Session => {
    const s = h2connect(`http://127.0.0.1:${forwarder.port}`);
    s.on('error', () => undefined);
    clients.push(s);
    return s;
  };

  beforeAll(async () => {
    const pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();

    h2Server = createH2Server();
    h2Server.on('session', (s: ServerHttp2Session) => serverSessions.push(s));
    h2Server.on('stream', (stream, headers) => {
      backend.onStream(stream, String(headers[':path']));
    });
    await new Promise<void>(resolve => h2Server.listen(0, '127.0.0.1', resolve));
    h2Backend = new HboneTcpBackend(
      await pki.identity('default', 'cb-h2'),
      (h2Server.address() as AddressInfo).port,
    );
    await h2Backend.start();

    grpcServer = new grpc.Server();
    grpcServer.addService(
      { unary: HOLD },
      {
        unary: (_call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
          grpcActive++;
          grpcMost = Math.max(grpcMost, grpcActive);
          grpcHeld.push((err, value) => {
            grpcActive--;
            if (err !== null) callback(err);
            else callback(null, value);
          });
        },
      },
    );
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    });
    grpcBackend = new HboneTcpBackend(await pki.identity('default', 'cb-grpc'), grpcPort);
    await grpcBackend.start();

    xds.set(TypeUrl.cluster, STREAMS, h2Cluster(STREAMS, { max_requests: { value: 3 } }));
    xds.set(
      TypeUrl.cluster,
      PENDING,
      h2Cluster(
        PENDING,
        {
          max_connections: { value: 1 },
          max_pending_requests: { value: 2 },
          max_requests: { value: 100 },
        },
        { http2: { max_concurrent_streams: { value: 1 } } },
      ),
    );
    xds.set(
      TypeUrl.cluster,
      PER_CONN,
      h2Cluster(PER_CONN, {}, { common: { max_requests_per_connection: { value: 2 } } }),
    );
    xds.set(TypeUrl.cluster, GRPC, h2Cluster(GRPC, { max_requests: { value: 2 } }));
    const endpoint = (n: number, b: HboneTcpBackend, port: number) => ({
      address: `10.1.0.${n}`,
      port,
      hbone: `127.0.0.1:${b.port}`,
      identity: b.identity.id,
      workload: `${b.identity.id.split('/').pop() ?? ''};default;cb;v1;Kubernetes`,
    });
    xds.set(TypeUrl.clusterLoadAssignment, STREAMS, assignment(STREAMS, [endpoint(41, h2Backend, 8080)]));
    xds.set(TypeUrl.clusterLoadAssignment, PENDING, assignment(PENDING, [endpoint(42, h2Backend, 8080)]));
    xds.set(TypeUrl.clusterLoadAssignment, PER_CONN, assignment(PER_CONN, [endpoint(43, h2Backend, 8080)]));
    xds.set(TypeUrl.clusterLoadAssignment, GRPC, assignment(GRPC, [endpoint(44, grpcBackend, 9090)]));
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 80, ROUTE));
    const to = (cluster: string) => ({ cluster, timeout: ms(0), max_grpc_timeout: ms(0) });
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: 'cb',
          domains: ['*'],
          routes: [
            { name: 'streams', match: { prefix: '/a/' }, route: to(STREAMS) },
            { name: 'pending', match: { prefix: '/b/' }, route: to(PENDING) },
            { name: 'per-conn', match: { prefix: '/c/' }, route: to(PER_CONN) },
            { name: 'grpc', match: { prefix: '/test.Hold/' }, route: to(GRPC) },
          ],
        },
      ],
    });
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready, 30_000);
    expect([...waypoint.nacks.values()]).toEqual([]);
    forwarder = new HboneForwarder({
      identity: await pki.identity('default', 'frontend'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
    });
    await forwarder.start();
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    for (const c of clients) c.destroy();
    for (const release of grpcHeld.splice(0)) release({ code: grpc.status.CANCELLED } as grpc.ServiceError);
    await forwarder.close();
    await waypoint.shutdown();
    await h2Backend.close();
    await grpcBackend.close();
    grpcServer.forceShutdown();
    for (const s of serverSessions) s.destroy();
    await new Promise<void>(resolve =>
      h2Server.close(() => {
        resolve();
      }),
    );
    xds.close();
  });

  it('max_requests 3: of 6 concurrent streams 3 reach the backend, 3 get 503 UO; the 3 finish once answered', async () => {
    const session = client();
    const run = concurrently(6, i => get(session, `/a/${i}`));
    await waitFor(
      '3 streams at the backend and 3 overflows',
      () => backend.held('a') === 3 && run.settled().length === 3,
      20_000,
    );
    for (const r of run.settled()) {
      expect(r.status).toBe(503);
      expect(r.text).toBe(OVERFLOW);
      expect(r.overloaded).toBe('true');
    }
    backend.release('a', true);
    const all = await run.all;
    expect(all.filter(r => r.status === 200).length).toBe(3);
    expect(all.filter(r => r.status === 503).length).toBe(3);
    expect(backend.most.get('a')).toBe(3);
    expect(backend.served.get('a')).toBe(3);
    const stats = await scrapeStats(waypoint);
    expect(counter(stats, 'envoy_cluster_upstream_rq_pending_overflow', STREAMS)).toBe(3);
    expect(stats).toMatch(
      /istio_requests_total\{[^}]*destination_service="cb-streams[^"]*"[^}]*response_flags="UO"[^}]*response_code="503"/,
    );
  }, 30_000);

  it('max_concurrent_streams 1, max_connections 1, max_pending_requests 2: one at the backend, two wait and are served in turn, two get 503 UO', async () => {
    const session = client();
    // The connection is up first (as in steady state): then a request either takes its one
    // stream, waits, or overflows.
    backend.release('b', true);
    expect((await get(session, '/b/warm')).status).toBe(200);
    backend.hold('b');
    const run = concurrently(5, i => get(session, `/b/${i}`));
    await waitFor(
      '1 stream at the backend and 2 overflows',
      () => backend.held('b') === 1 && run.settled().length === 2,
      20_000,
    );
    for (const r of run.settled()) {
      expect(r.status).toBe(503);
      expect(r.text).toBe(OVERFLOW);
      expect(r.overloaded).toBe('true');
    }
    // The two waiting requests stay in the waypoint while the stream is busy.
    expect(backend.held('b')).toBe(1);
    backend.release('b', true);
    const all = await run.all;
    expect(all.filter(r => r.status === 200).length).toBe(3);
    expect(backend.most.get('b')).toBe(1);
    expect(backend.sessions.get('b')?.size).toBe(1);
    const stats = await scrapeStats(waypoint);
    expect(counter(stats, 'envoy_cluster_upstream_rq_pending_overflow', PENDING)).toBe(2);
    // The waiting requests could not open a second connection.
    expect(counter(stats, 'envoy_cluster_upstream_cx_overflow', PENDING)).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('max_requests_per_connection 2: every two requests go on a new upstream connection', async () => {
    backend.release('c', true);
    const session = client();
    for (let i = 0; i < 5; i++) expect((await get(session, `/c/${i}`)).status).toBe(200);
    expect(backend.sessions.get('c')?.size).toBe(3);
    expect(backend.most.get('c')).toBe(1);
  }, 30_000);

  it('gRPC over max_requests 2: two calls reach the server, the other two end UNAVAILABLE with the overflow', async () => {
    const grpcClient = new grpc.Client(`127.0.0.1:${forwarder.port}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'cb-grpc.default.svc.cluster.local',
    });
    try {
      const call = (i: number): Promise<{ code: grpc.status; details: string; text?: string }> =>
        new Promise(resolve => {
          grpcClient.makeUnaryRequest(
            HOLD.path,
            json.serialize,
            json.deserialize,
            { text: `call ${i}` },
            new grpc.Metadata(),
            { deadline: Date.now() + 20_000 },
            (err, value) => {
              if (err !== null) resolve({ code: err.code, details: err.details });
              else resolve({ code: grpc.status.OK, details: '', text: value?.text ?? '' });
            },
          );
        });
      const run = concurrently(4, call);
      await waitFor(
        '2 calls at the server and 2 overflows',
        () => grpcHeld.length === 2 && run.settled().length === 2,
        20_000,
      );
      for (const r of run.settled()) {
        expect(r.code).toBe(grpc.status.UNAVAILABLE);
        expect(r.details).toBe(OVERFLOW);
      }
      for (const release of grpcHeld.splice(0)) release(null, { text: 'done' });
      const all = await run.all;
      expect(all.filter(r => r.code === grpc.status.OK).map(r => r.text)).toEqual(['done', 'done']);
      expect(grpcMost).toBe(2);
      const stats = await scrapeStats(waypoint);
      expect(counter(stats, 'envoy_cluster_upstream_rq_pending_overflow', GRPC)).toBe(2);
    } finally {
      grpcClient.close();
    }
  }, 30_000);
});
