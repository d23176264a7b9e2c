/**
 * Tracing through the waypoint on loopback, against a real Jaeger v2 (OTLP receiver and query
 * API): the HCM's `tracing` (OpenTelemetry provider) makes the waypoint continue the client's
 * W3C or B3 context with a SERVER span, hand that span to the upstream as its parent, and export
 * it over OTLP (gRPC and HTTP) under the waypoint's service name. In router mode (an ingress
 * gateway) the same HCM `tracing` starts the trace at the edge when the client sends none.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, ms, router } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import { Jaeger } from './testing/jaeger.ts';
import type { JaegerApiSpan, JaegerApiTrace } from './testing/jaeger.ts';
import { HboneBackend, MeshClient, TestXdsServer, createTestPki, waitFor } from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const GRPC_VIP = '240.240.0.20';
const HTTP_VIP = '240.240.0.21';
const SERVICE = 'reviews.default.svc.cluster.local';
const GRPC_CHAIN = `inbound-vip|80|http|${SERVICE}`;
const HTTP_CHAIN = `inbound-vip|80|http|ratings.default.svc.cluster.local`;
const BACKEND = `outbound|80||${SERVICE}`;
const OTLP_GRPC = 'outbound|4317||jaeger-collector.istio-system.svc.cluster.local';
const OTLP_HTTP = 'outbound|4318||jaeger-collector.istio-system.svc.cluster.local';

function tracingOf(protocol: 'grpc' | 'http', serviceName: string, sampling: number): ProtoObject {
  const collector =
    protocol === 'grpc'
      ? { grpc_service: { envoy_grpc: { cluster_name: OTLP_GRPC, authority: 'jaeger-collector' } } }
      : {
          http_service: {
            http_uri: {
              uri: 'http://jaeger-collector.istio-system:4318/v1/traces',
              cluster: OTLP_HTTP,
              timeout: ms(2000),
            },
          },
        };
  return {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: any(EnvoyType.openTelemetryConfig, { ...collector, service_name: serviceName }),
    },
    random_sampling: { value: sampling },
    custom_tags: [{ tag: 'istio.mesh_id', literal: { value: 'cluster.local' } }],
  };
}

function chain(name: string, vip: string, tracing: ProtoObject): ProtoObject {
  return {
    name,
    filter_chain_match: {
      destination_port: { value: 80 },
      prefix_ranges: [{ address_prefix: vip, prefix_len: { value: 32 } }],
    },
    filters: [
      {
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: any(EnvoyType.httpConnectionManager, {
          stat_prefix: name,
          rds: { route_config_name: 'reviews' },
          http_filters: [router],
          tracing,
        }),
      },
    ],
  };
}

function staticCluster(name: string, port: number): ProtoObject {
  return {
    name,
    type: 'STATIC',
    connect_timeout: ms(1000),
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
          ],
        },
      ],
    },
  };
}

const TRACE_A = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN_A = '00f067aa0ba902b7';
const TRACE_B = '80f198ee56343ba864fe8b2a57d3eff7';
const CLIENT_SPAN_B = 'e457b5a2e4d86bd1';

const tag = (span: JaegerApiSpan, key: string): unknown => span.tags.find(t => t.key === key)?.value;

describe('waypoint tracing to a real Jaeger (OTLP)', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let jaeger: Jaeger;
  let backend: HboneBackend;
  let waypoint: Bound;
  let grpcClient: MeshClient;
  let httpClient: MeshClient;
  /** What started, stopped in reverse order (also after a failed start). */
  const cleanups: (() => Promise<void> | void)[] = [];
  const captured = captureLogs();

  beforeAll(async () => {
    jaeger = await Jaeger.start();
    cleanups.push(() => jaeger.stop());
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    cleanups.push(() => {
      xds.close();
    });
    backend = new HboneBackend('reviews-v1', await pki.identity('default', 'reviews'));
    await backend.start();
    cleanups.push(() => backend.close());
    xds.set(TypeUrl.cluster, BACKEND, edsCluster(BACKEND));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      BACKEND,
      assignment(BACKEND, [
        {
          address: '10.0.0.5',
          port: 9080,
          hbone: `127.0.0.1:${backend.port}`,
          identity: backend.identity.id,
          workload: 'reviews-v1;default;reviews;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.cluster, OTLP_GRPC, staticCluster(OTLP_GRPC, jaeger.otlpGrpcPort));
    xds.set(TypeUrl.cluster, OTLP_HTTP, staticCluster(OTLP_HTTP, jaeger.otlpHttpPort));
    xds.set(TypeUrl.routeConfiguration, 'reviews', {
      name: 'reviews',
      virtual_hosts: [
        {
          name: 'reviews',
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, route: { cluster: BACKEND } }],
        },
      ],
    });
    xds.set(TypeUrl.listener, 'main_internal', {
      name: 'main_internal',
      filter_chains: [
        // OTLP/gRPC, every request without a decision sampled.
        chain(GRPC_CHAIN, GRPC_VIP, tracingOf('grpc', 'waypoint.default', 100)),
        // OTLP/HTTP, nothing sampled unless the client says so.
        chain(HTTP_CHAIN, HTTP_VIP, tracingOf('http', 'waypoint-http.default', 0)),
      ],
    });
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    cleanups.push(() => waypoint.shutdown());
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    const clientIdentity = await pki.identity('default', 'productpage');
    const client = (vip: string): MeshClient =>
      new MeshClient({
        identity: clientIdentity,
        waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
        waypointIdentity: waypointIdentity.id,
        target: `${vip}:80`,
      });
    grpcClient = client(GRPC_VIP);
    httpClient = client(HTTP_VIP);
    cleanups.push(
      () => grpcClient.close(),
      () => httpClient.close(),
    );
  }, 120_000);

  afterAll(async () => {
    for (const stop of cleanups.reverse()) await stop();
  }, 60_000);

  async function exported(
    traceId: string,
    spanId: string,
  ): Promise<{ trace: JaegerApiTrace; span: JaegerApiSpan }> {
    let found: { trace: JaegerApiTrace; span: JaegerApiSpan } | undefined;
    await waitFor(
      `span ${spanId} of trace ${traceId} in Jaeger`,
      async () => {
        const trace = await jaeger.trace(traceId);
        const span = trace?.spans.find(s => s.spanID === spanId);
        if (trace !== undefined && span !== undefined) found = { trace, span };
        return found !== undefined;
      },
      45_000,
    );
    return found as { trace: JaegerApiTrace; span: JaegerApiSpan };
  }

  it("continues a W3C traceparent: the waypoint span is the client span's child and the upstream's parent (OTLP/gRPC)", async () => {
    const before = backend.requests.length;
    const r = await grpcClient.get('/reviews/1?x=y', {
      traceparent: `00-${TRACE_A}-${CLIENT_SPAN_A}-01`,
      tracestate: 'vendor=opaque',
    });
    expect(r.status).toBe(200);
    const seen = backend.requests[before];
    const upstream = String(seen?.headers.traceparent);
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(upstream);
    expect(match?.[1]).toBe(TRACE_A);
    const waypointSpan = match?.[2] ?? '';
    expect(waypointSpan).not.toBe(CLIENT_SPAN_A);
    expect(seen?.headers.tracestate).toBe('vendor=opaque');
    // B3 goes upstream too, with the same span.
    expect(seen?.headers['x-b3-traceid']).toBe(TRACE_A);
    expect(seen?.headers['x-b3-spanid']).toBe(waypointSpan);
    expect(seen?.headers['x-b3-sampled']).toBe('1');

    const { trace, span } = await exported(TRACE_A, waypointSpan);
    expect(span.references).toContainEqual({ refType: 'CHILD_OF', traceID: TRACE_A, spanID: CLIENT_SPAN_A });
    expect(trace.processes[span.processID]?.serviceName).toBe('waypoint.default');
    expect(tag(span, 'span.kind')).toBe('server');
    expect(tag(span, 'http.method')).toBe('GET');
    expect(tag(span, 'http.url')).toBe(`http://${SERVICE}/reviews/1?x=y`);
    expect(tag(span, 'http.status_code')).toBe(200);
    expect(tag(span, 'upstream_cluster')).toBe(BACKEND);
    expect(tag(span, 'upstream_address')).toBe('10.0.0.5:9080');
    expect(tag(span, 'peer.address')).toBe('127.0.0.1');
    expect(tag(span, 'response_flags')).toBe('-');
    expect(tag(span, 'istio.mesh_id')).toBe('cluster.local');
    expect(tag(span, 'istio.destination_principal')).toBe(backend.identity.id);
    expect(tag(span, 'istio.destination_workload')).toBe('reviews-v1');
    // The console's query: the waypoint's service lists the trace.
    const listed = await jaeger.traces('waypoint.default');
    expect(listed.some(t => t.traceID === TRACE_A)).toBe(true);
  }, 90_000);

  it('continues a B3 single header, respecting its sampled flag over a 0% random sampling (OTLP/HTTP)', async () => {
    const before = backend.requests.length;
    const r = await httpClient.get('/reviews/2', { b3: `${TRACE_B}-${CLIENT_SPAN_B}-1` });
    expect(r.status).toBe(200);
    const seen = backend.requests[before];
    const b3 = /^([0-9a-f]{32})-([0-9a-f]{16})-1$/.exec(String(seen?.headers.b3));
    expect(b3?.[1]).toBe(TRACE_B);
    const waypointSpan = b3?.[2] ?? '';
    expect(waypointSpan).not.toBe(CLIENT_SPAN_B);
    expect(seen?.headers.traceparent).toBe(`00-${TRACE_B}-${waypointSpan}-01`);

    const { trace, span } = await exported(TRACE_B, waypointSpan);
    expect(span.references).toContainEqual({ refType: 'CHILD_OF', traceID: TRACE_B, spanID: CLIENT_SPAN_B });
    expect(trace.processes[span.processID]?.serviceName).toBe('waypoint-http.default');
    expect(tag(span, 'upstream_cluster')).toBe(BACKEND);
  }, 90_000);

  it('starts an unsampled trace at 0% random sampling when the request carries no context', async () => {
    const before = backend.requests.length;
    const r = await httpClient.get('/reviews/3');
    expect(r.status).toBe(200);
    const seen = backend.requests[before];
    expect(String(seen?.headers.traceparent)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(seen?.headers['x-b3-sampled']).toBe('0');
  });
});

describe('ingress gateway (router mode) tracing to a real Jaeger (OTLP)', () => {
  const PLAIN = 'outbound|80||web.edge.svc.cluster.local';
  const TRACE_C = 'a3ce929d0e0e47364bf92f3577b34da6';
  const CLIENT_SPAN_C = 'b7ad6b7169203331';
  let jaeger: Jaeger;
  let xds: TestXdsServer;
  let gateway: Bound;
  let backend: HttpServer;
  const seen: IncomingMessage['headers'][] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  const captured = captureLogs();

  beforeAll(async () => {
    jaeger = await Jaeger.start();
    cleanups.push(() => jaeger.stop());
    backend = createHttpServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await new Promise<void>(resolve => backend.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>(resolve => {
          backend.closeAllConnections();
          backend.close(() => {
            resolve();
          });
        }),
    );
    xds = new TestXdsServer();
    await xds.start();
    cleanups.push(() => {
      xds.close();
    });
    xds.set(TypeUrl.cluster, PLAIN, staticCluster(PLAIN, (backend.address() as AddressInfo).port));
    xds.set(TypeUrl.cluster, OTLP_GRPC, staticCluster(OTLP_GRPC, jaeger.otlpGrpcPort));
    xds.set(TypeUrl.routeConfiguration, 'http.80', {
      name: 'http.80',
      virtual_hosts: [
        { name: 'web', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: PLAIN } }] },
      ],
    });
    // As istiod programs an ingress Gateway a Telemetry traces: the HCM of 0.0.0.0_<port>.
    xds.set(TypeUrl.listener, '0.0.0.0_80', {
      name: '0.0.0.0_80',
      address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: any(EnvoyType.httpConnectionManager, {
                stat_prefix: 'outbound_0.0.0.0_80',
                use_remote_address: { value: true },
                rds: { route_config_name: 'http.80' },
                http_filters: [router],
                tracing: tracingOf('grpc', 'public-istio.edge', 100),
              }),
            },
          ],
        },
      ],
    });
    const pki = await createTestPki();
    gateway = await build(
      {
        ...testConfig(),
        mode: 'router',
        podName: 'public-istio-5f7c9-abcde',
        podNamespace: 'edge',
        serviceAccount: 'public-istio',
        proxyMetadata: { WORKLOAD_NAME: 'public-istio' },
      },
      {
        xdsConnect: xds.connect(),
        identity: await pki.identity('edge', 'public-istio'),
        processMetrics: false,
        logs: captured.logs,
      },
    );
    cleanups.push(() => gateway.shutdown());
    await waitFor('the listener bound', () => gateway.listenerAddresses().has('0.0.0.0_80'), 20_000);
  }, 120_000);

  afterAll(async () => {
    for (const stop of cleanups.reverse()) await stop();
  }, 60_000);

  const get = async (headers: Record<string, string>): Promise<IncomingMessage['headers']> => {
    const before = seen.length;
    const port = gateway.listenerAddresses().get('0.0.0.0_80')!.port;
    const r = await fetch(`http://127.0.0.1:${port}/shop`, {
      headers,
    });
    expect(r.status).toBe(200);
    await r.text();
    return seen[before]!;
  };

  const spanOf = async (
    traceId: string,
    spanId: string,
  ): Promise<{ trace: JaegerApiTrace; span: JaegerApiSpan }> => {
    let found: { trace: JaegerApiTrace; span: JaegerApiSpan } | undefined;
    await waitFor(
      `span ${spanId} of trace ${traceId} in Jaeger`,
      async () => {
        const trace = await jaeger.trace(traceId);
        const span = trace?.spans.find(s => s.spanID === spanId);
        if (trace !== undefined && span !== undefined) found = { trace, span };
        return found !== undefined;
      },
      45_000,
    );
    return found as { trace: JaegerApiTrace; span: JaegerApiSpan };
  };

  it('starts a trace at the edge for a request without context, exports its root span and propagates it (W3C and B3)', async () => {
    const headers = await get({});
    const w3c = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(headers.traceparent));
    expect(w3c).not.toBeNull();
    const [, traceId = '', spanId = ''] = w3c!;
    expect(headers['x-b3-traceid']).toBe(traceId);
    expect(headers['x-b3-spanid']).toBe(spanId);
    const { trace, span } = await spanOf(traceId, spanId);
    expect(span.references).toEqual([]);
    expect(trace.processes[span.processID]?.serviceName).toBe('public-istio.edge');
    expect(tag(span, 'span.kind')).toBe('server');
    expect(tag(span, 'http.url')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/shop$/);
    expect(tag(span, 'upstream_cluster')).toBe(PLAIN);
  }, 90_000);

  it("continues a client's traceparent: the gateway span is its child", async () => {
    const headers = await get({ traceparent: `00-${TRACE_C}-${CLIENT_SPAN_C}-01` });
    const w3c = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(headers.traceparent));
    expect(w3c?.[1]).toBe(TRACE_C);
    const { span } = await spanOf(TRACE_C, w3c?.[2] ?? '');
    expect(span.references).toContainEqual({ refType: 'CHILD_OF', traceID: TRACE_C, spanID: CLIENT_SPAN_C });
  }, 90_000);
});
