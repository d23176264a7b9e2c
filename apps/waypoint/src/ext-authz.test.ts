/**
 * CUSTOM authorization (`envoy.filters.http.ext_authz`) end to end on loopback: a real HBONE
 * client, the waypoint, an HBONE echo backend, and Istio's sample ext-authz server as a real
 * process (HTTP and gRPC). Each VIP port is one filter chain laid out as istiod emits a CUSTOM
 * policy: a shadow RBAC filter (`istio_ext_authz_` prefix, paths under `/authz`) then ext_authz.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { testConfig } from './testing/harness.ts';
import {
  any,
  assignment,
  catchAllRoute,
  edsCluster,
  reviewsEndpoint,
  ms,
  router,
} from './testing/fixtures.ts';
import { ExtAuthzSample } from './testing/ext-authz-server.ts';
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

const VIP = '10.96.0.30';
const A = 'outbound|80||reviews-a.default.svc.cluster.local';
const AUTHZ_HTTP = 'outbound|8000||ext-authz.default.svc.cluster.local';
const AUTHZ_GRPC = 'outbound|9000||ext-authz.default.svc.cluster.local';
const AUTHZ_DOWN = 'outbound|8000||ext-authz-down.default.svc.cluster.local';
const PROVIDER = 'istio-ext-authz-sample';
const ports = { http: 80, grpc: 81, failOpen: 82, failClosed: 83 } as const;
const route = (port: number): string => `inbound-vip|${port}|http|reviews.default.svc.cluster.local`;

const patterns = (...names: string[]): ProtoObject => ({
  patterns: names.map(exact => ({ exact, ignore_case: true })),
});

/** istiod's shadow RBAC filter for a CUSTOM policy checking paths under `/authz`. */
const shadowRbac: ProtoObject = {
  name: 'envoy.filters.http.rbac',
  typed_config: any(EnvoyType.httpRbac, {
    shadow_rules: {
      action: 'DENY',
      policies: {
        [`${PROVIDER}-ns[default]-policy[ext]-rule[0]`]: {
          permissions: [{ url_path: { path: { prefix: '/authz' } } }],
          principals: [{ any: true }],
        },
      },
    },
    shadow_rules_stat_prefix: 'istio_ext_authz_',
  }),
};

function extAuthz(service: ProtoObject): ProtoObject {
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: any(EnvoyType.extAuthz, {
      ...service,
      transport_api_version: 'V3',
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: PROVIDER } },
      },
    }),
  };
}

const httpService = (cluster: string): ProtoObject => ({
  http_service: {
    path_prefix: '/check',
    server_uri: { uri: 'http://ext-authz.default.svc.cluster.local', cluster, timeout: ms(10_000) },
    authorization_response: {
      allowed_upstream_headers: patterns('x-ext-authz-check-result'),
      allowed_client_headers: patterns('x-ext-authz-check-result', 'x-ext-authz-check-received'),
    },
  },
  allowed_headers: patterns('x-ext-authz'),
});

function chain(port: number, authz: ProtoObject): ProtoObject {
  return {
    name: route(port),
    filter_chain_match: {
      destination_port: { value: port },
      prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
    },
    filters: [
      {
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: any(EnvoyType.httpConnectionManager, {
          stat_prefix: route(port),
          rds: { route_config_name: route(port) },
          http_filters: [shadowRbac, extAuthz(authz), router],
        }),
      },
    ],
  };
}

/** A plain (out of mesh) endpoint: no `istio`/`tunnel` metadata. */
function plainAssignment(cluster: string, port: number): ProtoObject {
  return {
    cluster_name: cluster,
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
        ],
      },
    ],
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>(resolve =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

describe('waypoint ext_authz (CUSTOM) against Istio’s sample ext-authz server on loopback', () => {
  // Undefined when the setup failed part way (afterAll still cleans up what started).
  let xds: TestXdsServer | undefined;
  let backend: HboneBackend | undefined;
  let waypoint: Bound | undefined;
  let sample: ExtAuthzSample | undefined;
  const clients = new Map<number, MeshClient>();
  const captured = captureLogs();
  const client = (port: number): MeshClient => clients.get(port)!;

  beforeAll(async () => {
    // Fails (never skips) with the setup hint when the sample is not built.
    sample = await ExtAuthzSample.start();
    const pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    backend = new HboneBackend('a', await pki.identity('default', 'reviews-a'), (req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ headers: req.headers }));
    });
    await backend.start();
    xds.set(TypeUrl.cluster, A, edsCluster(A));
    xds.set(TypeUrl.clusterLoadAssignment, A, assignment(A, [reviewsEndpoint(backend)]));
    const down = await closedPort();
    for (const [name, port] of [
      [AUTHZ_HTTP, sample.httpPort],
      [AUTHZ_GRPC, sample.grpcPort],
      [AUTHZ_DOWN, down],
    ] as const) {
      xds.set(TypeUrl.cluster, name, edsCluster(name));
      xds.set(TypeUrl.clusterLoadAssignment, name, plainAssignment(name, port));
    }
    xds.set(TypeUrl.listener, 'main_internal', {
      name: 'main_internal',
      filter_chains: [
        chain(ports.http, httpService(AUTHZ_HTTP)),
        chain(ports.grpc, {
          grpc_service: {
            envoy_grpc: { cluster_name: AUTHZ_GRPC, authority: 'ext-authz.default.svc.cluster.local' },
            timeout: ms(10_000),
          },
        }),
        chain(ports.failOpen, { ...httpService(AUTHZ_DOWN), failure_mode_allow: true }),
        chain(ports.failClosed, {
          ...httpService(AUTHZ_DOWN),
          status_on_error: { code: 'ServiceUnavailable' },
        }),
      ],
    });
    for (const port of Object.values(ports)) {
      xds.set(TypeUrl.routeConfiguration, route(port), catchAllRoute(route(port), A));
    }
    const waypointIdentity = await pki.identity('default', 'waypoint');
    const wp = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    waypoint = wp;
    await waitFor('xDS sync', () => wp.readiness.ready, 30_000);
    expect([...wp.nacks.values()]).toEqual([]);
    const identity = await pki.identity('default', 'productpage');
    for (const port of Object.values(ports)) {
      clients.set(
        port,
        new MeshClient({
          identity,
          waypoint: `127.0.0.1:${wp.hboneAddress.port}`,
          waypointIdentity: waypointIdentity.id,
          target: `${VIP}:${port}`,
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients.values()) await c.close();
    await waypoint?.shutdown();
    await backend?.close();
    xds?.close();
    await sample?.stop();
  });

  const headersSeen = (r: { json: () => unknown }): Record<string, string> =>
    (r.json() as { headers: Record<string, string> }).headers;

  it('HTTP service: allows with `x-ext-authz: allow` and sets the allowed upstream header', async () => {
    const r = await client(ports.http).get('/authz/ok?q=1', { 'x-ext-authz': 'allow' });
    expect(r.status).toBe(200);
    const seen = headersSeen(r);
    expect(seen['x-ext-authz-check-result']).toBe('allowed');
    // Only the listed authorization response headers reach the upstream.
    expect(seen['x-ext-authz-check-received']).toBeUndefined();
  });

  it('HTTP service: denies otherwise with the service’s status, body and allowed headers (UAEX)', async () => {
    const r = await client(ports.http).get('/authz/no?q=1', { 'x-ext-authz': 'deny', 'x-other': 'secret' });
    expect(r.status).toBe(403);
    expect(r.text).toContain('denied by ext_authz');
    expect(r.headers['x-ext-authz-check-result']).toBe('denied');
    // The check request: the path prefix, the query, and only the allowed request headers.
    const received = String(r.headers['x-ext-authz-check-received']);
    expect(received).toContain('/check/authz/no?q=1');
    expect(received).toContain('X-Ext-Authz:[deny]');
    expect(received).not.toContain('secret');
    expect(await scrapeStats(waypoint!)).toMatch(
      /istio_requests_total\{[^}]*response_flags="UAEX"[^}]*response_code="403"/,
    );
  });

  it('checks only the requests the CUSTOM rules match', async () => {
    const r = await client(ports.http).get('/public');
    expect(r.status).toBe(200);
    expect(headersSeen(r)['x-ext-authz-check-result']).toBeUndefined();
  });

  it('gRPC service (envoy.service.auth.v3.Authorization/Check): allow with ok_response headers, deny with denied_response', async () => {
    const ok = await client(ports.grpc).get('/authz/grpc', { 'x-ext-authz': 'allow' });
    expect(ok.status).toBe(200);
    const seen = headersSeen(ok);
    expect(seen['x-ext-authz-check-result']).toBe('allowed');
    expect(seen['x-ext-authz-additional-header-override']).toBe('grpc-additional-header-override-value');
    // The attributes the service saw (it echoes them): the path and the client's identity.
    expect(seen['x-ext-authz-check-received']).toContain('/authz/grpc');
    expect(seen['x-ext-authz-check-received']).toContain('spiffe://cluster.local/ns/default/sa/productpage');
    const denied = await client(ports.grpc).get('/authz/grpc', { 'x-ext-authz': 'nope' });
    expect(denied.status).toBe(403);
    expect(denied.text).toContain('denied by ext_authz');
    expect(denied.headers['x-ext-authz-check-result']).toBe('denied');
  });

  it('an unreachable service: failure_mode_allow lets requests through; otherwise status_on_error', async () => {
    const open = await client(ports.failOpen).get('/authz/x');
    expect(open.status).toBe(200);
    const closed = await client(ports.failClosed).get('/authz/x', { 'x-ext-authz': 'allow' });
    expect(closed.status).toBe(503);
    expect(await scrapeStats(waypoint!)).toMatch(
      /istio_requests_total\{[^}]*response_flags="UAEX"[^}]*response_code="503"/,
    );
  });
});
