/**
 * The waypoint binary as an ingress gateway (router mode) on loopback: LDS listeners with a
 * socket address bound as plain TCP ports, HTTP/1.1, h2c, TLS chosen by SNI with ALPN, plain and
 * HBONE upstreams, listener updates and bind conflicts, edge headers, metrics and drain.
 * Real clients (undici, node:http2, node:tls), a real ADS server and real backends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as UndiciClient } from 'undici';
import { issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import { bindFailure } from './proxy/gateway.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, router } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import {
  HboneBackend,
  TestXdsServer,
  TypeUrl,
  createTestPki,
  requestsTotalLine,
  scrapeStats,
  startTestCaServer,
  waitFor,
} from './testing/loopback.ts';
import type { TestCaServer, TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const PLAIN = 'outbound|80||plain.edge.svc.cluster.local';
const MESH = 'outbound|80||mesh.edge.svc.cluster.local';
const HTTP_ROUTES = 'http.80';
const HTTPS_ROUTES = 'https.443';
/** The TLS backend behind the passthrough listener (outside the mesh: plain TCP). */
const PASSTHROUGH = 'outbound|443||tls.edge.svc.cluster.local';

const hcm = (routes: string): ProtoObject => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: any(EnvoyType.httpConnectionManager, {
    stat_prefix: routes,
    use_remote_address: { value: true },
    rds: { route_config_name: routes },
    http_filters: [router],
  }),
});

interface Cert {
  readonly id: string;
  readonly chain: string;
  readonly key: string;
}

const tlsSocket = (cert: Cert, inline: 'bytes' | 'string'): ProtoObject => {
  const data = (text: string): ProtoObject =>
    inline === 'bytes' ? { inline_bytes: Buffer.from(text).toString('base64') } : { inline_string: text };
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(EnvoyType.downstreamTlsContext, {
      common_tls_context: {
        alpn_protocols: ['h2', 'http/1.1'],
        tls_certificates: [{ certificate_chain: data(cert.chain), private_key: data(cert.key) }],
      },
    }),
  };
};

const socketAddress = (port: number): ProtoObject => ({
  socket_address: { address: '127.0.0.1', port_value: port },
});

function plainListener(name: string, port: number, routes = HTTP_ROUTES): ProtoObject {
  return { name, address: socketAddress(port), filter_chains: [{ filters: [hcm(routes)] }] };
}

function tlsChain(
  name: string,
  serverNames: readonly string[],
  cert: Cert,
  inline: 'bytes' | 'string',
): ProtoObject {
  return {
    name,
    filter_chain_match: serverNames.length === 0 ? {} : { server_names: serverNames },
    transport_socket: tlsSocket(cert, inline),
    filters: [hcm(HTTPS_ROUTES)],
  };
}

/** A TLS passthrough chain: matched on the ClientHello's SNI, relayed encrypted to `cluster`. */
function passthroughChain(name: string, serverNames: readonly string[], cluster: string): ProtoObject {
  return {
    name,
    filter_chain_match: { server_names: serverNames, transport_protocol: 'tls' },
    filters: [
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: any(EnvoyType.tcpProxy, { stat_prefix: cluster, cluster }),
      },
    ],
  };
}

/** A terminating chain that requires a client certificate chaining to `ca` (Istio's MUTUAL). */
function mutualChain(cert: Cert, ca: string): ProtoObject {
  return {
    name: 'mutual',
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: any(EnvoyType.downstreamTlsContext, {
        require_client_certificate: { value: true },
        common_tls_context: {
          alpn_protocols: ['http/1.1'],
          tls_certificates: [
            { certificate_chain: { inline_string: cert.chain }, private_key: { inline_string: cert.key } },
          ],
          validation_context: { trusted_ca: { inline_string: ca } },
        },
      }),
    },
    filters: [hcm(HTTPS_ROUTES)],
  };
}

/**
 * One HTTP/1.1 request over TLS (optionally with a client certificate): the status line's code,
 * the server certificate's SAN, and the body; or the error when the connection fails or closes
 * without an answer.
 */
async function tlsExchange(
  port: number,
  servername: string,
  payload: string,
  client?: { readonly cert: string; readonly key: string },
): Promise<{ readonly san: string; readonly text: string } | { readonly error: string }> {
  return new Promise(resolve => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: false,
      ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
    });
    let text = '';
    let san = '';
    socket.setEncoding('utf8');
    socket.once('secureConnect', () => {
      san = socket.getPeerCertificate().subjectaltname ?? '';
      socket.write(payload);
    });
    socket.on('data', (c: string) => (text += c));
    socket.once('error', err => {
      resolve({ error: err.message });
    });
    socket.once('close', () => {
      resolve(text === '' ? { error: 'closed without an answer' } : { san, text });
    });
  });
}

function route(name: string, domains: readonly string[], cluster: string): ProtoObject {
  return {
    name,
    domains,
    routes: [{ name: `${name}-all`, match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } }],
  };
}

type Response = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

async function request(
  client: UndiciClient,
  host: string,
  path = '/',
  headers: Record<string, string> = {},
): Promise<Response> {
  const r = await client.request({ path, method: 'GET', headers: { host, ...headers } });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

/** A TLS handshake only: the presented certificate's SAN and the ALPN, or the handshake error. */
async function hello(
  port: number,
  servername: string | undefined,
  alpn: readonly string[] = ['h2', 'http/1.1'],
): Promise<{ readonly san: string; readonly alpn: string | false } | { readonly error: string }> {
  return new Promise(resolve => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ...(servername === undefined ? {} : { servername }),
      ALPNProtocols: [...alpn],
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      resolve({ san: socket.getPeerCertificate().subjectaltname ?? '', alpn: socket.alpnProtocol ?? false });
      socket.destroy();
    });
    socket.once('error', err => {
      resolve({ error: err.message });
    });
    // TLS 1.3: a refused handshake may surface as a close without an error on the client.
    socket.once('close', () => {
      resolve({ error: 'closed' });
    });
  });
}

async function h2Get(session: ClientHttp2Session, authority: string, path: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':authority': authority });
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', h => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => {
      resolve({ status, headers, text });
    });
    stream.on('error', reject);
  });
}

describe('the waypoint binary in router mode (ingress gateway)', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let gateway: Bound;
  let gatewayId: string;
  let plain: HttpServer;
  let plainPort: number;
  let meshBackend: HboneBackend;
  let taken: NetServer;
  let takenPort: number;
  let tlsBackend: TlsServer;
  let backendCert: Cert;
  let clientGood: Cert;
  let clientStranger: Cert;
  let clientCa: string;
  const certs: Record<'a' | 'wild' | 'x' | 'def', Cert> = {} as never;
  const seen: { url: string; headers: IncomingMessage['headers'] }[] = [];
  /** Releases the backend's answer to `/slow` (the drain test). */
  let releaseSlow: () => void = () => undefined;
  let slowArrived = false;
  const clients: UndiciClient[] = [];
  const captured = captureLogs();

  const port = (listener: string): number => {
    const at = gateway.listenerAddresses().get(listener);
    if (at === undefined) throw new Error(`listener ${listener} is not bound`);
    return at.port;
  };
  const client = (listener: string, tls?: { servername: string }): UndiciClient => {
    const c = new UndiciClient(`${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port(listener)}`, {
      pipelining: 1,
      ...(tls === undefined ? {} : { connect: { servername: tls.servername, rejectUnauthorized: false } }),
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pki = await createTestPki();
    for (const name of ['a', 'wild', 'x', 'def'] as const) {
      const id = `spiffe://cluster.local/ns/tls/sa/${name}`;
      const c = await issueRawCert(pki.ca, id);
      certs[name] = { id, chain: c.certChain.join('\n'), key: c.privateKeyPem };
    }
    // The passthrough backend terminates TLS itself, with its own certificate, and says which
    // SNI it saw; the clients of the MUTUAL listener: one of the gateway's CA, one of another.
    const backend = await issueRawCert(pki.ca, 'spiffe://cluster.local/ns/edge/sa/tls-backend');
    backendCert = {
      id: 'spiffe://cluster.local/ns/edge/sa/tls-backend',
      chain: backend.certChain.join('\n'),
      key: backend.privateKeyPem,
    };
    const good = await issueRawCert(pki.ca, 'spiffe://cluster.local/ns/edge/sa/client');
    clientGood = { id: 'client', chain: good.certChain.join('\n'), key: good.privateKeyPem };
    clientCa = good.roots.pem;
    const other = await createTestPki();
    const stranger = await issueRawCert(other.ca, 'spiffe://cluster.local/ns/edge/sa/client');
    clientStranger = { id: 'stranger', chain: stranger.certChain.join('\n'), key: stranger.privateKeyPem };
    tlsBackend = createTlsServer({ cert: backendCert.chain, key: backendCert.key }, socket => {
      const sni = (socket as unknown as { servername?: string | false }).servername;
      socket.once('data', (d: Buffer) => {
        socket.end(`backend saw SNI ${String(sni)} and ${d.toString('utf8')}`);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>(resolve => tlsBackend.listen(0, '127.0.0.1', resolve));
    xds = new TestXdsServer();
    await xds.start();
    plain = createHttpServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      const answer = (): void => {
        const text = JSON.stringify({ backend: 'plain', url: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      };
      if (req.url === '/slow') {
        slowArrived = true;
        releaseSlow = () => {
          releaseSlow = () => undefined;
          answer();
        };
      } else answer();
    });
    await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve));
    plainPort = (plain.address() as AddressInfo).port;
    meshBackend = new HboneBackend('mesh', await pki.identity('edge', 'mesh'));
    await meshBackend.start();
    // A port something else holds: the listener that wants it is NACKed.
    taken = createNetServer();
    await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as AddressInfo).port;

    xds.set(TypeUrl.cluster, PLAIN, edsCluster(PLAIN));
    // No tunnel metadata: outside the mesh, plain TCP.
    xds.set(TypeUrl.clusterLoadAssignment, PLAIN, {
      cluster_name: PLAIN,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: plainPort } } } },
          ],
        },
      ],
    });
    xds.set(TypeUrl.cluster, PASSTHROUGH, edsCluster(PASSTHROUGH));
    xds.set(TypeUrl.clusterLoadAssignment, PASSTHROUGH, {
      cluster_name: PASSTHROUGH,
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: {
                address: {
                  socket_address: {
                    address: '127.0.0.1',
                    port_value: (tlsBackend.address() as AddressInfo).port,
                  },
                },
              },
            },
          ],
        },
      ],
    });
    xds.set(TypeUrl.cluster, MESH, edsCluster(MESH));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      MESH,
      assignment(MESH, [
        {
          address: '127.0.0.1',
          port: 8080,
          hbone: `127.0.0.1:${meshBackend.port}`,
          identity: meshBackend.identity.id,
          workload: 'mesh-v1;edge;mesh;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.routeConfiguration, HTTP_ROUTES, {
      name: HTTP_ROUTES,
      virtual_hosts: [
        route('plain', ['plain.example.com', 'plain.example.com:*'], PLAIN),
        route('mesh', ['mesh.example.com', 'mesh.example.com:*'], MESH),
      ],
    });
    xds.set(TypeUrl.routeConfiguration, HTTPS_ROUTES, {
      name: HTTPS_ROUTES,
      virtual_hosts: [route('any', ['*'], PLAIN)],
    });
    xds.set(TypeUrl.listener, 'http', plainListener('http', 0));
    xds.set(TypeUrl.listener, 'removable', plainListener('removable', 0));
    xds.set(TypeUrl.listener, 'https', {
      name: 'https',
      address: socketAddress(0),
      listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
      filter_chains: [
        tlsChain('a', ['a.example.com'], certs.a, 'bytes'),
        tlsChain('wild', ['*.wild.example.com'], certs.wild, 'string'),
        tlsChain('x', ['x.wild.example.com'], certs.x, 'string'),
        tlsChain('default', [], certs.def, 'bytes'),
      ],
    });
    xds.set(TypeUrl.listener, 'strict', {
      name: 'strict',
      address: socketAddress(0),
      filter_chains: [tlsChain('a', ['a.example.com'], certs.a, 'bytes')],
    });
    // TLS passthrough next to a terminating chain on one port.
    xds.set(TypeUrl.listener, 'passthrough', {
      name: 'passthrough',
      address: socketAddress(0),
      listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
      filter_chains: [
        passthroughChain('pt', ['pt.example.com', '*.pt.example.com'], PASSTHROUGH),
        tlsChain('a', ['a.example.com'], certs.a, 'bytes'),
      ],
    });
    xds.set(TypeUrl.listener, 'mutual', {
      name: 'mutual',
      address: socketAddress(0),
      listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
      filter_chains: [mutualChain(certs.a, clientCa)],
    });
    xds.set(TypeUrl.listener, 'taken', plainListener('taken', takenPort));

    const identity = await pki.identity('edge', 'gw-istio');
    gatewayId = identity.id;
    gateway = await build(
      {
        ...testConfig(),
        mode: 'router',
        podName: 'gw-istio-5f7c9-abcde',
        podNamespace: 'edge',
        serviceAccount: 'gw-istio',
        proxyMetadata: { WORKLOAD_NAME: 'gw-istio' },
        terminationGracePeriodMs: 20_000,
      },
      { xdsConnect: xds.connect(), identity, processMetrics: false, logs: captured.logs },
    );
    await waitFor('xDS sync', () => gateway.readiness.ready, 20_000);
    await waitFor('the listeners bound', () => gateway.listenerAddresses().size >= 6, 20_000);
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    releaseSlow();
    await Promise.all(clients.map(c => c.destroy()));
    await gateway.shutdown();
    xds.close();
    await meshBackend.close();
    plain.closeAllConnections();
    await new Promise<void>(resolve => {
      plain.close(() => {
        resolve();
      });
    });
    await new Promise<void>(resolve => {
      taken.close(() => {
        resolve();
      });
    });
    await new Promise<void>(resolve => {
      tlsBackend.close(() => {
        resolve();
      });
    });
  });

  it('relays TLS passthrough by SNI without terminating: the client meets the backend certificate', async () => {
    const pt = port('passthrough');
    const exact = await tlsExchange(pt, 'pt.example.com', 'ping');
    expect(exact).toEqual({
      san: `URI:${backendCert.id}`,
      text: 'backend saw SNI pt.example.com and ping',
    });
    const wild = await tlsExchange(pt, 'v1.pt.example.com', 'pong');
    expect(wild).toMatchObject({
      san: `URI:${backendCert.id}`,
      text: 'backend saw SNI v1.pt.example.com and pong',
    });
    // The terminating chain of the same port still terminates (the gateway's certificate).
    expect(await hello(pt, 'a.example.com')).toMatchObject({ san: `URI:${certs.a.id}` });
    const terminated = await tlsExchange(
      pt,
      'a.example.com',
      'GET /t HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n',
    );
    expect(terminated).toMatchObject({ san: `URI:${certs.a.id}` });
    expect('text' in terminated ? terminated.text : '').toMatch(/^HTTP\/1\.1 200/);
    // An SNI no chain takes: refused.
    expect(await tlsExchange(pt, 'other.example.org', 'x')).toHaveProperty('error');
    // The two relayed connections in istio_tcp_* as upstream gateways report them (reporter="source").
    const dest = 'destination_service="tls.edge.svc.cluster.local"';
    const line = (text: string, metric: string) =>
      text.split('\n').find(l => l.startsWith(`${metric}{`) && l.includes(dest)) ?? '';
    const value = (text: string, metric: string) => Number(line(text, metric).split(' ').pop() ?? 0);
    let text = '';
    await waitFor('both passthrough connections counted closed', async () => {
      text = await scrapeStats(gateway);
      return value(text, 'istio_tcp_connections_closed_total') === 2;
    });
    expect(value(text, 'istio_tcp_connections_opened_total')).toBe(2);
    const opened = line(text, 'istio_tcp_connections_opened_total');
    for (const label of [
      'reporter="source"',
      'source_workload="gw-istio"',
      'source_workload_namespace="edge"',
      'request_protocol="tcp"',
      'response_flags="-"',
    ])
      expect(opened).toContain(label);
    // The ClientHellos and payloads came from the clients; the backend's handshakes and answers went to them.
    expect(value(text, 'istio_tcp_received_bytes_total')).toBeGreaterThan(2 * 'ping'.length);
    expect(value(text, 'istio_tcp_sent_bytes_total')).toBeGreaterThan(2 * 'backend saw SNI'.length);
  });

  it('requires a client certificate of the listener CA on a MUTUAL chain: none and a stranger are refused', async () => {
    const m = port('mutual');
    const get = 'GET /mutual HTTP/1.1\r\nhost: a.example.com\r\nconnection: close\r\n\r\n';
    expect(await tlsExchange(m, 'a.example.com', get)).toHaveProperty('error');
    expect(
      await tlsExchange(m, 'a.example.com', get, { cert: clientStranger.chain, key: clientStranger.key }),
    ).toHaveProperty('error');
    const ok = await tlsExchange(m, 'a.example.com', get, { cert: clientGood.chain, key: clientGood.key });
    expect(ok).toMatchObject({ san: `URI:${certs.a.id}` });
    expect('text' in ok ? ok.text : '').toMatch(/^HTTP\/1\.1 200/);
    expect('text' in ok ? ok.text : '').toContain('"url":"/mutual"');
  });

  it('says router~ in its xDS node id, has no HBONE inbound and is ready on 15021', async () => {
    expect(gateway.xds).toBeDefined();
    expect(gateway.hboneAddress.port).toBe(0);
    const ready = await fetch(`http://127.0.0.1:${gateway.readinessAddress.port}/healthz/ready`);
    expect(ready.status).toBe(200);
  });

  it('routes HTTP/1.1 on a plain listener to a plain backend (plain TCP) and to an HBONE backend (mTLS as the gateway)', async () => {
    const c = client('http');
    const toPlain = await request(c, 'plain.example.com', '/hello');
    expect(toPlain.status).toBe(200);
    expect(JSON.parse(toPlain.text)).toMatchObject({ backend: 'plain', url: '/hello' });
    const before = meshBackend.requests.length;
    const toMesh = await request(c, 'mesh.example.com', '/api');
    expect(toMesh.status).toBe(200);
    expect(JSON.parse(toMesh.text)).toMatchObject({ backend: 'mesh', url: '/api' });
    const arrived = meshBackend.requests[before];
    expect(arrived?.peer).toBe(gatewayId);
    expect(arrived?.authority).toBe('127.0.0.1:8080');
  });

  it('serves h2c (prior knowledge) on a plain listener', async () => {
    const session = h2connect(`http://127.0.0.1:${port('http')}`);
    try {
      const r = await h2Get(session, 'plain.example.com', '/h2c');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text)).toMatchObject({ backend: 'plain', url: '/h2c' });
    } finally {
      session.close();
    }
  });

  it('answers 404 (NR) when no virtual host or route matches', async () => {
    const r = await request(client('http'), 'nowhere.example.com', '/');
    expect(r.status).toBe(404);
  });

  it('sets x-forwarded-for, x-forwarded-proto and x-envoy-external-address as an edge Envoy', async () => {
    const c = client('http');
    const first = JSON.parse((await request(c, 'plain.example.com', '/xff')).text) as {
      headers: Record<string, string>;
    };
    expect(first.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(first.headers['x-forwarded-proto']).toBe('http');
    expect(first.headers['x-envoy-external-address']).toBe('127.0.0.1');
    const appended = JSON.parse(
      (
        await request(c, 'plain.example.com', '/xff', {
          'x-forwarded-for': '203.0.113.7',
          'x-forwarded-proto': 'https',
          'x-envoy-internal': 'true',
        })
      ).text,
    ) as { headers: Record<string, string | undefined> };
    expect(appended.headers['x-forwarded-for']).toBe('203.0.113.7,127.0.0.1');
    expect(appended.headers['x-forwarded-proto']).toBe('http');
    expect(appended.headers['x-envoy-internal']).toBeUndefined();
  });

  it('picks the TLS certificate by SNI: exact, most specific wildcard, default chain; refuses an unknown SNI without a default', async () => {
    const https = port('https');
    expect(await hello(https, 'a.example.com')).toMatchObject({ san: `URI:${certs.a.id}` });
    expect(await hello(https, 'A.Example.COM')).toMatchObject({ san: `URI:${certs.a.id}` });
    expect(await hello(https, 'y.wild.example.com')).toMatchObject({ san: `URI:${certs.wild.id}` });
    expect(await hello(https, 'deep.y.wild.example.com')).toMatchObject({ san: `URI:${certs.wild.id}` });
    expect(await hello(https, 'x.wild.example.com')).toMatchObject({ san: `URI:${certs.x.id}` });
    expect(await hello(https, 'other.example.org')).toMatchObject({ san: `URI:${certs.def.id}` });
    expect(await hello(https, undefined)).toMatchObject({ san: `URI:${certs.def.id}` });
    const strict = port('strict');
    expect(await hello(strict, 'a.example.com')).toMatchObject({ san: `URI:${certs.a.id}` });
    expect(await hello(strict, 'other.example.org')).toHaveProperty('error');
    expect(await hello(strict, undefined)).toHaveProperty('error');
  });

  it('negotiates ALPN: h2 over TLS serves HTTP/2, http/1.1 serves HTTP/1.1, both with x-forwarded-proto https', async () => {
    const https = port('https');
    expect(await hello(https, 'a.example.com', ['h2', 'http/1.1'])).toMatchObject({ alpn: 'h2' });
    expect(await hello(https, 'a.example.com', ['http/1.1'])).toMatchObject({ alpn: 'http/1.1' });
    const session = h2connect(`https://127.0.0.1:${https}`, {
      servername: 'a.example.com',
      rejectUnauthorized: false,
    });
    try {
      const r = await h2Get(session, 'a.example.com', '/over-h2');
      expect(session.alpnProtocol).toBe('h2');
      expect(r.status).toBe(200);
      const body = JSON.parse(r.text) as { url: string; headers: Record<string, string> };
      expect(body.url).toBe('/over-h2');
      expect(body.headers['x-forwarded-proto']).toBe('https');
    } finally {
      session.close();
    }
    const h1 = await request(
      client('https', { servername: 'y.wild.example.com' }),
      'y.wild.example.com',
      '/over-h1',
    );
    expect(h1.status).toBe(200);
    expect((JSON.parse(h1.text) as { headers: Record<string, string> }).headers['x-forwarded-proto']).toBe(
      'https',
    );
  });

  it('NACKs a listener whose port is taken, naming the address and cause, while the others keep serving', async () => {
    await waitFor('the NACK', () => gateway.nacks.get(TypeUrl.listener) !== undefined);
    const nack = gateway.nacks.get(TypeUrl.listener)?.nack ?? '';
    expect(nack).toContain(
      `taken: cannot bind 127.0.0.1:${takenPort}: the address is already in use (EADDRINUSE)`,
    );
    expect(xds.lastNack(TypeUrl.listener)).toContain('EADDRINUSE');
    expect(gateway.listenerAddresses().has('taken')).toBe(false);
    expect((await request(client('http'), 'plain.example.com')).status).toBe(200);
    const dump = (await (
      await fetch(`http://127.0.0.1:${gateway.adminAddress.port}/config_dump`)
    ).json()) as {
      listeners: { name: string; address?: { port: number }; filterChains?: { serverNames: string[] }[] }[];
    };
    const names = dump.listeners.map(l => l.name).sort();
    expect(names).toEqual(['http', 'https', 'mutual', 'passthrough', 'removable', 'strict']);
    expect(dump.listeners.find(l => l.name === 'http')?.address?.port).toBe(port('http'));
    expect(dump.listeners.find(l => l.name === 'https')?.filterChains?.map(c => c.serverNames)).toEqual([
      ['a.example.com'],
      ['*.wild.example.com'],
      ['x.wild.example.com'],
      [],
    ]);
  });

  it('NACKs a TLS listener whose certificate is not valid PEM, and says why a privileged port fails', async () => {
    xds.set(TypeUrl.listener, 'badcert', {
      name: 'badcert',
      address: socketAddress(0),
      filter_chains: [
        tlsChain('a', ['a.example.com'], { id: '', chain: 'not a certificate', key: 'not a key' }, 'string'),
      ],
    });
    await waitFor('the NACK', () => (gateway.nacks.get(TypeUrl.listener)?.nack ?? '').includes('badcert'));
    expect(gateway.nacks.get(TypeUrl.listener)?.nack).toMatch(
      /badcert: filter chain "a": its certificate or key is not valid PEM or they do not match/,
    );
    expect(gateway.listenerAddresses().has('badcert')).toBe(false);
    expect((await request(client('http'), 'plain.example.com')).status).toBe(200);
    expect(bindFailure('0.0.0.0:80', Object.assign(new Error('listen EACCES'), { code: 'EACCES' }))).toBe(
      'cannot bind 0.0.0.0:80: permission denied (EACCES); ports below 1024 need the pod sysctl net.ipv4.ip_unprivileged_port_start=0 or NET_BIND_SERVICE',
    );
  });

  it('updates a listener in place and removes one without dropping its open connections', async () => {
    const removablePort = port('removable');
    const kept = client('removable');
    expect((await request(kept, 'plain.example.com', '/before')).status).toBe(200);
    // An update on the same address keeps the socket: same port, the open connection still served.
    const version = gateway.state.snapshot().listeners.get('removable')?.version;
    xds.set(TypeUrl.listener, 'removable', plainListener('removable', removablePort));
    await waitFor(
      'the update',
      () => gateway.state.snapshot().listeners.get('removable')?.version !== version,
    );
    expect(port('removable')).toBe(removablePort);
    expect((await request(kept, 'mesh.example.com', '/updated')).status).toBe(200);
    xds.ads.push(xds.source.delete(TypeUrl.listener, 'removable'));
    await waitFor('the removal', () => !gateway.state.snapshot().listeners.has('removable'));
    // New connections are refused...
    const fresh = new UndiciClient(`http://127.0.0.1:${removablePort}`);
    clients.push(fresh);
    await expect(request(fresh, 'plain.example.com')).rejects.toThrow();
    // ...the open one is still served.
    const after = await request(kept, 'plain.example.com', '/after');
    expect(after.status).toBe(200);
    expect(JSON.parse(after.text)).toMatchObject({ url: '/after' });
  });

  it('rotates a certificate on a Listener update (a Secret change): new handshakes get the new one, an open connection stays', async () => {
    const strict = port('strict');
    expect(await hello(strict, 'a.example.com')).toMatchObject({ san: `URI:${certs.a.id}` });
    const kept = client('strict', { servername: 'a.example.com' });
    expect((await request(kept, 'a.example.com', '/before-rotation')).status).toBe(200);
    const version = gateway.state.snapshot().listeners.get('strict')?.version;
    xds.set(TypeUrl.listener, 'strict', {
      name: 'strict',
      address: socketAddress(strict),
      filter_chains: [tlsChain('a', ['a.example.com'], certs.x, 'bytes')],
    });
    await waitFor(
      'the rotation',
      () => gateway.state.snapshot().listeners.get('strict')?.version !== version,
    );
    expect(port('strict')).toBe(strict);
    expect(await hello(strict, 'a.example.com')).toMatchObject({ san: `URI:${certs.x.id}` });
    // The connection made before the rotation is still served (no drop).
    expect((await request(kept, 'a.example.com', '/after-rotation')).status).toBe(200);
    xds.set(TypeUrl.listener, 'strict', {
      name: 'strict',
      address: socketAddress(strict),
      filter_chains: [tlsChain('a', ['a.example.com'], certs.a, 'bytes')],
    });
    await waitFor('the rotation back', async () => {
      const h = await hello(strict, 'a.example.com');
      return 'san' in h && h.san === `URI:${certs.a.id}`;
    });
  });

  it('reports requests as upstream gateways do: reporter="source" with the gateway as the source workload', async () => {
    await request(client('http'), 'mesh.example.com', '/metrics-check');
    let text = '';
    await waitFor('the series', async () => {
      text = await scrapeStats(gateway);
      return requestsTotalLine(text, 'destination_service="mesh.edge.svc.cluster.local"') !== undefined;
    });
    const mesh = requestsTotalLine(text, 'destination_service="mesh.edge.svc.cluster.local"') ?? '';
    expect(mesh).toContain('reporter="source"');
    expect(mesh).toContain('source_workload="gw-istio"');
    expect(mesh).toContain('source_workload_namespace="edge"');
    expect(mesh).toContain('source_canonical_service="gw-istio"');
    expect(mesh).toContain(`source_principal="${gatewayId}"`);
    expect(mesh).toContain('destination_workload="mesh-v1"');
    expect(mesh).toContain('response_code="200"');
    const nr = requestsTotalLine(text, 'response_code="404"') ?? '';
    expect(nr).toContain('reporter="source"');
    expect(nr).toContain('response_flags="NR"');
    expect(text).not.toContain('reporter="waypoint"');
  });

  it('drains on shutdown: not ready, no new connections, the request in flight finishes', async () => {
    const c = client('http');
    const httpPort = port('http');
    const inFlight = request(c, 'plain.example.com', '/slow');
    await waitFor('the slow request at the backend', () => slowArrived);
    const stopping = gateway.shutdown();
    await waitFor('not ready', async () => {
      const r = await fetch(`http://127.0.0.1:${gateway.readinessAddress.port}/healthz/ready`).catch(
        () => undefined,
      );
      return r === undefined || r.status === 503;
    });
    await waitFor('the listener closed', async () => {
      const probe = new UndiciClient(`http://127.0.0.1:${httpPort}`);
      try {
        await request(probe, 'plain.example.com');
        return false;
      } catch {
        return true;
      } finally {
        await probe.destroy();
      }
    });
    releaseSlow();
    const done = await inFlight;
    expect(done.status).toBe(200);
    expect(JSON.parse(done.text)).toMatchObject({ url: '/slow' });
    await stopping;
  }, 30_000);
});

describe('the gateway identity in router mode', () => {
  const captured = captureLogs();
  const GATEWAY_ID = 'spiffe://cluster.local/ns/edge/sa/gw-istio';
  let pki: TestPki;
  let ca: TestCaServer;
  let xds: TestXdsServer;
  let backend: HboneBackend;
  let gateway: Bound;
  let tokenDir: string;

  beforeAll(async () => {
    pki = await createTestPki();
    // The CA issues the gateway's service account identity; the gateway rejects any other.
    ca = await startTestCaServer(pki.ca, GATEWAY_ID);
    xds = new TestXdsServer();
    await xds.start();
    backend = new HboneBackend('mesh', await pki.identity('edge', 'mesh'));
    await backend.start();
    xds.set(TypeUrl.cluster, MESH, edsCluster(MESH));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      MESH,
      assignment(MESH, [
        {
          address: '127.0.0.1',
          port: 8080,
          hbone: `127.0.0.1:${backend.port}`,
          identity: backend.identity.id,
          workload: 'mesh-v1;edge;mesh;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.routeConfiguration, HTTP_ROUTES, {
      name: HTTP_ROUTES,
      virtual_hosts: [route('mesh', ['*'], MESH)],
    });
    xds.set(TypeUrl.listener, 'http', plainListener('http', 0));
    tokenDir = mkdtempSync(join(tmpdir(), 'gateway-identity-'));
    writeFileSync(join(tokenDir, 'istio-token'), 'token\n');
    gateway = await build(
      {
        ...testConfig(),
        mode: 'router',
        podName: 'gw-istio-5f7c9-abcde',
        podNamespace: 'edge',
        serviceAccount: 'gw-istio',
        caAddress: ca.address,
        tokenPath: join(tokenDir, 'istio-token'),
        certDir: join(tokenDir, 'no-certs'),
      },
      { xdsConnect: xds.connect(), processMetrics: false, logs: captured.logs },
    );
    await waitFor('xDS sync', () => gateway.readiness.ready, 30_000);
  }, 60_000);

  afterAll(async () => {
    await gateway.shutdown();
    await backend.close();
    xds.close();
    ca.close();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  it("gets its own workload certificate (the pod's service account) from the CA and presents it upstream", async () => {
    expect(ca.issued()).toBeGreaterThanOrEqual(1);
    expect(gateway.certificates()[0]?.identity).toBe(GATEWAY_ID);
    const c = new UndiciClient(`http://127.0.0.1:${gateway.listenerAddresses().get('http')?.port ?? 0}`);
    try {
      const r = await request(c, 'mesh.example.com', '/who');
      expect(r.status).toBe(200);
      expect(backend.requests.at(-1)?.peer).toBe(GATEWAY_ID);
    } finally {
      await c.destroy();
    }
  });
});
