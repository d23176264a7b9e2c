/**
 * Egress through the waypoint on loopback: clusters of ServiceEntry hosts (`STRICT_DNS`,
 * `LOGICAL_DNS`, `ORIGINAL_DST`) whose endpoints are outside the mesh. Real plain HTTP servers
 * stand in for the external hosts; the waypoint reaches them over plain TCP (not HBONE). TLS
 * origination has its own file (`tls-origination.test.ts`).
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import {
  MeshClient,
  TestXdsServer,
  createTestPki,
  requestsTotalLine,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { testConfig } from './testing/harness.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import type { ResolvedAddress } from './proxy/dns-clusters.ts';

/** The ServiceEntry's VIP (ztunnel sends the client's tunnel to the waypoint with it). */
const VIP = '240.240.0.10';
const ROUTE = 'inbound-vip|80|http|api.example.com';
const STRICT = 'inbound-vip|80|http|api.example.com';
const MULTI = 'inbound-vip|80|http|multi.example.com';
const LOGICAL = 'inbound-vip|80|http|logical.example.com';
const MOVING = 'inbound-vip|80|http|moving.example.com';
const PASSTHROUGH = 'inbound-vip|80|http|passthrough.example.com';
const TLS = 'inbound-vip|443|http|tls.example.com';
const TCP = 'inbound-vip|5432|tcp|db.example.com';
const STATIC_ENTRY = 'inbound-vip|80|http|static.example.com';

interface External {
  readonly server: Server;
  readonly address: string;
  /** The local address each request arrived on, and whether it came over TLS (never). */
  readonly seen: { readonly localAddress: string; readonly url: string }[];
}

async function listen(address: string, port: number): Promise<External> {
  const seen: { localAddress: string; url: string }[] = [];
  const server = createServer((req, res) => {
    seen.push({ localAddress: req.socket.localAddress ?? '', url: req.url ?? '' });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ external: address, url: req.url, host: req.headers.host }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, address, seen };
}

/** Two plain HTTP servers on the same port, on 127.0.0.1 and 127.0.0.2 (retried if the port is taken). */
async function twoServers(): Promise<[External, External]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await listen('127.0.0.1', 0);
    const port = (first.server.address() as AddressInfo).port;
    try {
      return [first, await listen('127.0.0.2', port)];
    } catch {
      await new Promise<void>(resolve =>
        first.server.close(() => {
          resolve();
        }),
      );
    }
  }
  throw new Error('no port free on both 127.0.0.1 and 127.0.0.2');
}

const socket = (address: string, port: number) => ({
  endpoint: { address: { socket_address: { address, port_value: port } } },
});

function dnsCluster(
  name: string,
  type: string,
  host: string,
  port: number,
  extra: ProtoObject = {},
): ProtoObject {
  return {
    name,
    type,
    connect_timeout: ms(1000),
    dns_lookup_family: 'V4_ONLY',
    dns_refresh_rate: ms(60_000),
    respect_dns_ttl: true,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [socket(host, port)] }] },
    ...extra,
  };
}

describe('waypoint egress to ServiceEntry hosts (DNS and original-destination clusters)', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let one: External;
  let two: External;
  let port: number;
  let waypoint: Bound;
  let client: MeshClient;
  let passthroughClient: MeshClient;
  let tcpClient: MeshClient;
  let tcpServer: TcpServer;
  /** What the resolver answers per name; `moving.test` changes during a test. */
  const answers = new Map<string, readonly ResolvedAddress[]>();
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    [one, two] = await twoServers();
    port = (one.server.address() as AddressInfo).port;
    // An opaque TCP service: answers `pong:<first chunk>` and closes.
    tcpServer = createTcpServer(conn => {
      conn.once('data', (chunk: Buffer) => {
        conn.end(`pong:${chunk.toString('latin1')}`);
      });
    });
    await new Promise<void>(resolve => tcpServer.listen(0, '127.0.0.1', resolve));
    const tcpPort = (tcpServer.address() as AddressInfo).port;
    xds.set(TypeUrl.cluster, TCP, dnsCluster(TCP, 'STRICT_DNS', 'localhost', tcpPort));
    answers.set('multi.test', [
      { address: '127.0.0.1', family: 4 },
      { address: '127.0.0.2', family: 4 },
    ]);
    answers.set('moving.test', [{ address: '127.0.0.1', family: 4 }]);
    // `localhost` itself goes to Node's resolver (the hosts file).
    const lookup = async (host: string): Promise<readonly ResolvedAddress[]> => {
      const fixed = answers.get(host);
      if (fixed !== undefined) return fixed;
      const { lookup: real } = await import('node:dns/promises');
      return real(host, { all: true, family: 0 });
    };
    xds.set(TypeUrl.cluster, STRICT, dnsCluster(STRICT, 'STRICT_DNS', 'localhost', port));
    xds.set(TypeUrl.cluster, MULTI, dnsCluster(MULTI, 'STRICT_DNS', 'multi.test', port));
    xds.set(TypeUrl.cluster, LOGICAL, dnsCluster(LOGICAL, 'LOGICAL_DNS', 'multi.test', port));
    xds.set(
      TypeUrl.cluster,
      MOVING,
      dnsCluster(MOVING, 'STRICT_DNS', 'moving.test', port, { dns_refresh_rate: ms(100) }),
    );
    // `resolution: STATIC`: an EDS cluster whose endpoints carry no tunnel metadata.
    xds.set(TypeUrl.cluster, STATIC_ENTRY, edsCluster(STATIC_ENTRY));
    xds.set(TypeUrl.clusterLoadAssignment, STATIC_ENTRY, {
      cluster_name: STATIC_ENTRY,
      endpoints: [{ lb_endpoints: [socket('127.0.0.2', port)] }],
    });
    xds.set(TypeUrl.cluster, PASSTHROUGH, {
      name: PASSTHROUGH,
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      connect_timeout: ms(1000),
    });
    const route = (path: string, cluster: string) => ({
      name: path,
      match: { prefix: path },
      route: { cluster, timeout: ms(0) },
    });
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: 'api.example.com:80',
          domains: ['*'],
          routes: [
            route('/multi', MULTI),
            route('/logical', LOGICAL),
            route('/moving', MOVING),
            route('/passthrough', PASSTHROUGH),
            route('/static', STATIC_ENTRY),
            route('/', STRICT),
          ],
        },
      ],
    });
    // Two chains: the ServiceEntry VIP, and the original destination 127.0.0.1:<port> itself.
    const vipChain = httpListener('main_internal', VIP, 80, ROUTE);
    const directChain = httpListener('main_internal', '127.0.0.1', port, ROUTE);
    xds.set(TypeUrl.listener, 'main_internal', {
      name: 'main_internal',
      filter_chains: [
        ...(vipChain.filter_chains as object[]),
        ...(directChain.filter_chains as object[]).map(c => ({ ...c, name: PASSTHROUGH })),
        {
          name: TCP,
          filter_chain_match: {
            destination_port: { value: 5432 },
            prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
          },
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: any(EnvoyType.tcpProxy, { stat_prefix: TCP, cluster: TCP }),
            },
          ],
        },
      ],
    });
    const waypointIdentity = await pki.identity('egress', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      dnsLookup: lookup,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    const options = {
      identity: await pki.identity('egress', 'client'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
      baggage: 'k8s.namespace.name=egress,k8s.deployment.name=client,service.name=client,service.version=v1',
    };
    client = new MeshClient(options);
    passthroughClient = new MeshClient({ ...options, target: `127.0.0.1:${port}` });
    tcpClient = new MeshClient({ ...options, target: `${VIP}:5432` });
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    await client.close();
    await passthroughClient.close();
    await tcpClient.close();
    await new Promise<void>(resolve =>
      tcpServer.close(() => {
        resolve();
      }),
    );
    await waypoint.shutdown();
    await Promise.all(
      [one, two].map(
        e =>
          new Promise<void>(resolve =>
            e.server.close(() => {
              resolve();
            }),
          ),
      ),
    );
    xds.close();
  });

  it('accepts STRICT_DNS, LOGICAL_DNS and ORIGINAL_DST clusters (ACK)', () => {
    expect(xds.syncState(TypeUrl.cluster)).not.toBe('nacked');
    const clusters = waypoint.state.snapshot().clusters;
    expect(clusters.get(STRICT)?.discovery).toMatchObject({ kind: 'dns', mode: 'strict', family: 'v4-only' });
    expect(clusters.get(LOGICAL)?.discovery).toMatchObject({ kind: 'dns', mode: 'logical' });
    expect(clusters.get(PASSTHROUGH)?.discovery).toEqual({ kind: 'original-dst' });
  });

  it('sends HTTP to the resolved address of a STRICT_DNS host over plain TCP', async () => {
    const before = one.seen.length;
    const res = await client.get('/hello', { host: 'api.example.com' });
    expect(res.status).toBe(200);
    // A plain HTTP server answered: the waypoint spoke HTTP/1.1 over TCP, not HBONE.
    expect(res.json()).toMatchObject({ external: '127.0.0.1', url: '/hello', host: 'api.example.com' });
    expect(one.seen.slice(before)).toEqual([{ localAddress: '127.0.0.1', url: '/hello' }]);
  });

  it('balances a STRICT_DNS cluster across every resolved address', async () => {
    const hit = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await client.get('/multi', { host: 'multi.example.com' });
      expect(res.status).toBe(200);
      hit.add((res.json() as { external: string }).external);
    }
    expect([...hit].sort()).toEqual(['127.0.0.1', '127.0.0.2']);
  });

  it('sends a LOGICAL_DNS cluster to the first resolved address only', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await client.get('/logical', { host: 'logical.example.com' });
      expect(res.status).toBe(200);
      expect((res.json() as { external: string }).external).toBe('127.0.0.1');
    }
  });

  it('resolves again at dns_refresh_rate and follows the new address', async () => {
    const first = await client.get('/moving', { host: 'moving.example.com' });
    expect((first.json() as { external: string }).external).toBe('127.0.0.1');
    answers.set('moving.test', [{ address: '127.0.0.2', family: 4 }]);
    await waitFor(
      'requests to follow the new DNS answer',
      async () => {
        const res = await client.get('/moving', { host: 'moving.example.com' });
        return (res.json() as { external: string }).external === '127.0.0.2';
      },
      20_000,
    );
  });

  it('connects an ORIGINAL_DST cluster to the CONNECT authority (the original destination)', async () => {
    const before = one.seen.length;
    const res = await passthroughClient.get('/passthrough/x', { host: 'passthrough.example.com' });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ external: '127.0.0.1', url: '/passthrough/x' });
    expect(one.seen.length).toBe(before + 1);
  });

  it('sends an EDS endpoint without tunnel metadata (ServiceEntry STATIC) over plain TCP', async () => {
    const res = await client.get('/static', { host: 'static.example.com' });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ external: '127.0.0.2', url: '/static' });
  });

  it('relays an opaque TCP chain to a STRICT_DNS cluster over plain TCP', async () => {
    expect(await tcpClient.raw('ping')).toBe('pong:ping');
  });

  it('labels the waypoint metrics with the ServiceEntry host as destination service', async () => {
    const text = await scrapeStats(waypoint);
    const line = requestsTotalLine(text, 'destination_service="api.example.com"', 'response_code="200"');
    expect(line).toBeDefined();
    expect(line).toContain('reporter="waypoint"');
    expect(line).toContain('destination_service_name="api.example.com"');
    expect(line).toContain('source_workload="client"');
    expect(text).toMatch(/istio_requests_total\{[^}]*destination_service="passthrough\.example\.com"/);
  });

  it('NACKs TLS origination it cannot honour (SDS) and use_http_header with a reason, keeping the last good clusters', async () => {
    xds.set(
      TypeUrl.cluster,
      TLS,
      dnsCluster(TLS, 'STRICT_DNS', 'localhost', port, {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: any(EnvoyType.upstreamTlsContext, {
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'kubernetes://client-cert' }],
            },
          }),
        },
      }),
    );
    await waitFor('the NACK', () => xds.syncState(TypeUrl.cluster) === 'nacked');
    expect(xds.lastNack(TypeUrl.cluster)).toContain(
      'transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: SDS secret "kubernetes://client-cert" is not supported',
    );
    xds.set(TypeUrl.cluster, TLS, {
      name: TLS,
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      original_dst_lb_config: { use_http_header: true },
    });
    await waitFor('the second NACK', () =>
      (xds.lastNack(TypeUrl.cluster) ?? '').includes('original_dst_lb_config.use_http_header'),
    );
    expect(waypoint.state.snapshot().clusters.has(TLS)).toBe(false);
    expect((await client.get('/hello', { host: 'api.example.com' })).status).toBe(200);
  });
});
