/**
 * Protocol sniffing on the waypoint (`http_inspector`, `application_protocols`), on loopback with
 * real HBONE: one undeclared Service port has an HTTP chain (matched on `http/1.0`, `http/1.1`,
 * `h2c`) and a TCP chain, as istiod writes them. HTTP/1.1 and h2c go to the HTTP backend, opaque
 * TCP to the TCP backend; a server-first protocol (the client sends nothing until the server's
 * banner) reaches the TCP chain when the listener filter timeout passes.
 */
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { convertListener } from './config/convert-listener.ts';
import { selectChain } from './proxy/route.ts';
import { any, assignment, edsCluster } from './testing/fixtures.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';
import {
  HboneBackend,
  HboneTcpBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
} from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const VIP = '10.96.9.9';
const HOST = 'echo.default.svc.cluster.local';
const HTTP_CLUSTER = `inbound-vip|9000|http|${HOST}`;
const ECHO_CLUSTER = 'echo-tcp';
const BANNER_CLUSTER = 'banner-tcp';
const ALPNS = ['http/1.0', 'http/1.1', 'h2c'];

function chains(port: number, tcpCluster: string): ProtoObject[] {
  const match = {
    destination_port: { value: port },
    prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
  };
  return [
    {
      name: `inbound-vip|${port}|http|${HOST}`,
      filter_chain_match: { ...match, application_protocols: ALPNS },
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: any(EnvoyType.httpConnectionManager, {
            stat_prefix: HTTP_CLUSTER,
            rds: { route_config_name: HTTP_CLUSTER },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: any(EnvoyType.router, {}) }],
          }),
        },
      ],
    },
    {
      name: `inbound-vip|${port}|tcp|${HOST}`,
      filter_chain_match: match,
      filters: [
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: any(EnvoyType.tcpProxy, { stat_prefix: tcpCluster, cluster: tcpCluster }),
        },
      ],
    },
  ];
}

const mainInternal = (timeout?: ProtoObject): ProtoObject => ({
  name: 'main_internal',
  internal_listener: {},
  filter_chains: [...chains(9000, ECHO_CLUSTER), ...chains(9001, BANNER_CLUSTER)],
  listener_filters: [
    {
      name: 'envoy.filters.listener.http_inspector',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
      },
    },
  ],
  continue_on_listener_filters_timeout: true,
  ...(timeout === undefined ? {} : { listener_filters_timeout: timeout }),
});

async function listen(onConnection: (conn: Socket) => void): Promise<TcpServer> {
  const server = createTcpServer(onConnection);
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('http_inspector and application_protocols (conversion and chain match, pure)', () => {
  it('reads application_protocols and the listener filter timeout (default 15 s)', () => {
    const c = convertListener('main_internal', '1', mainInternal({ seconds: 0, nanos: 300_000_000 }));
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.value.httpInspector).toEqual({ timeoutMs: 300 });
    expect(c.value.chains[0]!.match.applicationProtocols).toEqual(ALPNS);
    const d = convertListener('main_internal', '1', mainInternal());
    expect(d.ok && d.value.httpInspector).toEqual({ timeoutMs: 15_000 });
  });

  it('picks the HTTP chain for a sniffed HTTP protocol and the TCP chain for none', () => {
    const c = convertListener('main_internal', '1', mainInternal());
    if (!c.ok) throw new Error('not converted');
    const config = { listeners: new Map([['main_internal', c.value]]) } as unknown as Parameters<
      typeof selectChain
    >[0];
    const name = (p?: string) => {
      const r = selectChain(config, VIP, 9000, p);
      return r.kind === 'chain' ? r.chain.name : r.reason;
    };
    for (const p of ALPNS) expect(name(p)).toBe(`inbound-vip|9000|http|${HOST}`);
    expect(name(undefined)).toBe(`inbound-vip|9000|tcp|${HOST}`);
    expect(name('h2')).toBe(`inbound-vip|9000|tcp|${HOST}`);
  });
});

describe('waypoint protocol sniffing over HBONE: one undeclared port, HTTP/1.1, h2c and opaque TCP', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let web: HboneBackend;
  let echoServer: TcpServer;
  let bannerServer: TcpServer;
  let echo: HboneTcpBackend;
  let banner: HboneTcpBackend;
  let waypoint: Bound;
  let http1: MeshClient;
  let h2c: MeshClient;
  let tcp: MeshClient;
  let serverFirst: MeshClient;
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    web = new HboneBackend('web', await pki.identity('default', 'web'));
    await web.start();
    // Opaque TCP: answers `tcp:<first chunk>` and closes.
    echoServer = await listen(conn => {
      conn.once('data', (chunk: Buffer) => conn.end(`tcp:${chunk.toString('latin1')}`));
      conn.on('error', () => undefined);
    });
    // Server-first: greets first, then answers `got:<first chunk>` and closes.
    bannerServer = await listen(conn => {
      conn.write('BANNER\n');
      conn.once('data', (chunk: Buffer) => conn.end(`got:${chunk.toString('latin1')}`));
      conn.on('error', () => undefined);
    });
    echo = new HboneTcpBackend(
      await pki.identity('default', 'echo'),
      (echoServer.address() as AddressInfo).port,
    );
    banner = new HboneTcpBackend(
      await pki.identity('default', 'banner'),
      (bannerServer.address() as AddressInfo).port,
    );
    await echo.start();
    await banner.start();
    const endpoint = (b: { port: number; identity: { id: string } }, ip: string) => ({
      address: ip,
      port: 9000,
      hbone: `127.0.0.1:${b.port}`,
      identity: b.identity.id,
      workload: `echo;default;echo;v1;Kubernetes`,
    });
    for (const [name, backend, ip] of [
      [HTTP_CLUSTER, web, '10.244.9.1'],
      [ECHO_CLUSTER, echo, '10.244.9.2'],
      [BANNER_CLUSTER, banner, '10.244.9.3'],
    ] as const) {
      xds.set(TypeUrl.cluster, name, edsCluster(name));
      xds.set(TypeUrl.clusterLoadAssignment, name, assignment(name, [endpoint(backend, ip)]));
    }
    xds.set(TypeUrl.routeConfiguration, HTTP_CLUSTER, {
      name: HTTP_CLUSTER,
      virtual_hosts: [
        {
          name: HOST,
          domains: ['*'],
          routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: HTTP_CLUSTER } }],
        },
      ],
    });
    // A short listener filter timeout: the server-first case waits for it.
    xds.set(TypeUrl.listener, 'main_internal', mainInternal({ seconds: 0, nanos: 300_000_000 }));
    const started = await startLoopbackWaypoint({ xds, pki, logs: captured.logs });
    waypoint = started.waypoint;
    const options = await started.clientOptions('client', `${VIP}:9000`);
    http1 = new MeshClient(options);
    h2c = new MeshClient({ ...options, h2: true });
    tcp = new MeshClient(options);
    serverFirst = new MeshClient({ ...options, target: `${VIP}:9001` });
  }, 60_000);

  afterAll(async () => {
    for (const c of [http1, h2c, tcp, serverFirst]) await c.close();
    await waypoint.shutdown();
    await web.close();
    await echo.close();
    await banner.close();
    for (const s of [echoServer, bannerServer])
      await new Promise<void>(resolve =>
        s.close(() => {
          resolve();
        }),
      );
    xds.close();
  });

  it('accepts the listener (ACK)', () => {
    expect(xds.syncState(TypeUrl.listener)).not.toBe('nacked');
  });

  it('serves HTTP/1.1 on the undeclared port through the HTTP chain, more than one request per tunnel', async () => {
    for (const path of ['/one', '/two']) {
      const r = await http1.get(path);
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ backend: 'web', method: 'GET', url: path });
    }
  });

  it('serves h2c (prior knowledge) on the same port through the HTTP chain', async () => {
    const r = await h2c.post('/grpc-like', 'payload');
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ backend: 'web', method: 'POST', url: '/grpc-like', body: 'payload' });
  });

  it('relays opaque TCP on the same port through the TCP chain, first bytes intact', async () => {
    expect(await tcp.raw('\x00\x01binary hello')).toBe('tcp:\x00\x01binary hello');
    // Text that is not an HTTP request line is opaque too.
    expect(await tcp.raw('PING\r\n')).toBe('tcp:PING\r\n');
  });

  it('sends a server-first protocol to the TCP chain once the listener filter timeout passes', async () => {
    const tunnel = await serverFirst.hbone.connect({
      target: `${VIP}:9001`,
      nextHop: `127.0.0.1:${waypoint.hboneAddress.port}`,
      identity: await pki.identity('default', 'client'),
      expectedIdentities: [(await pki.identity('default', 'waypoint')).id],
    });
    let text = '';
    tunnel.setEncoding('latin1');
    tunnel.on('data', (c: string) => (text += c));
    const closed = new Promise<void>(resolve => {
      tunnel.once('close', resolve);
      tunnel.once('end', resolve);
      tunnel.once('error', () => {
        resolve();
      });
    });
    // The client says nothing until it has the banner (bounded wait: 20 s).
    const deadline = Date.now() + 20_000;
    while (!text.includes('BANNER\n') && Date.now() < deadline)
      await new Promise(resolve => setTimeout(resolve, 20));
    expect(text).toBe('BANNER\n');
    tunnel.write('hello');
    await closed;
    expect(text).toBe('BANNER\ngot:hello');
  }, 30_000);
});
