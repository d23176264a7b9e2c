/**
 * TLS origination on loopback: clusters of ServiceEntry hosts whose `transport_socket` is an
 * `UpstreamTlsContext` (istiod's DestinationRule `tls` SIMPLE/MUTUAL). A real HTTPS server
 * stands in for the external host; the client sends plain HTTP through the waypoint, which dials
 * TLS with the cluster's SNI, CA, SAN matchers, client certificate and ALPN.
 */
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { convertCluster } from './config/convert-cluster.ts';
import { any, httpListener, ms } from './testing/fixtures.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import {
  MeshClient,
  TestXdsServer,
  createTestPki,
  requestsTotalLine,
  scrapeStats,
} from './testing/loopback.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';
import { parseSubjectAltNames, subjectAltNamesMatch } from './proxy/upstream.ts';

const VIP = '240.240.0.20';
const HOST = 'tls.example.com';
const ROUTE = `inbound-vip|80|http|${HOST}`;
const GOOD = 'outbound|good|tls';
const WRONG_CA = 'outbound|wrong-ca|tls';
const WRONG_SAN = 'outbound|wrong-san|tls';
const MTLS = 'outbound|mtls|tls';
const SKIP = 'outbound|skip|tls';
const PLAIN = 'outbound|plain|tls';
const ISTIO = 'outbound|istio|tls';
const H2 = 'outbound|h2|tls';

interface Seen {
  readonly url: string;
  readonly sni: string | false | null;
  readonly alpn: string | false | null;
  /** The client certificate's SANs, if one was presented. */
  readonly clientSan: string | undefined;
}

function tlsSocket(opts: {
  ca?: string;
  sans?: object[];
  cert?: { chain: string; key: string };
  alpn?: string[];
  sni?: string;
}): ProtoObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(EnvoyType.upstreamTlsContext, {
      ...(opts.sni !== undefined ? { sni: opts.sni } : {}),
      common_tls_context: {
        ...(opts.cert !== undefined
          ? {
              tls_certificates: [
                {
                  certificate_chain: { inline_string: opts.cert.chain },
                  private_key: { inline_string: opts.cert.key },
                },
              ],
            }
          : {}),
        ...(opts.ca !== undefined
          ? {
              validation_context: {
                trusted_ca: { inline_string: opts.ca },
                ...(opts.sans !== undefined ? { match_typed_subject_alt_names: opts.sans } : {}),
              },
            }
          : {}),
        ...(opts.alpn !== undefined ? { alpn_protocols: opts.alpn } : {}),
      },
    }),
  };
}

function cluster(name: string, port: number, transport?: ProtoObject): ProtoObject {
  return {
    name,
    type: 'STRICT_DNS',
    connect_timeout: ms(2000),
    dns_lookup_family: 'V4_ONLY',
    dns_refresh_rate: ms(60_000),
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
    ...(transport !== undefined ? { transport_socket: transport } : {}),
  };
}

describe('waypoint TLS origination to a host outside the mesh (UpstreamTlsContext)', () => {
  let xds: TestXdsServer;
  let server: Server;
  let meshServer: Server;
  let h2Server: Http2SecureServer;
  const h2Seen: {
    readonly path: string;
    readonly alpn: string | false | null;
    readonly sni: string | false | null;
  }[] = [];
  const meshSeen: Seen[] = [];
  let waypoint: Bound;
  let client: MeshClient;
  const seen: Seen[] = [];
  const captured = captureLogs();

  beforeAll(async () => {
    const pki = await createTestPki();
    const ca = await createTestCa();
    const other = await createTestCa();
    const serving = await ca.signServingCertificate({
      dnsNames: [HOST],
      ipAddresses: ['127.0.0.1'],
      ttlSeconds: 3600,
    });
    const clientCert = await issueRawCert(ca, 'spiffe://external.test/egress-waypoint');
    server = createServer(
      {
        cert: serving.certChainPem,
        key: serving.keyPem,
        ca: ca.trustBundle.pem,
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
      },
      (req, res) => {
        if (!(req.socket instanceof TLSSocket)) throw new Error('not a TLS connection');
        const socket = req.socket;
        const peer = socket.getPeerCertificate();
        seen.push({
          url: req.url ?? '',
          sni: socket.servername,
          alpn: socket.alpnProtocol,
          clientSan: socket.authorized && peer.subjectaltname !== undefined ? peer.subjectaltname : undefined,
        });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('secure\n');
      },
    );
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    // A peer with a mesh identity (upstream's ISTIO_MUTUAL): it requires a client certificate of
    // the mesh CA and records the one it got.
    const meshPeer = await pki.identity('external', 'api');
    meshServer = createServer(
      {
        cert: typeof meshPeer.certChain === 'string' ? meshPeer.certChain : meshPeer.certChain.join(''),
        key: meshPeer.privateKey as string,
        ca: pki.ca.trustBundle.pem,
        requestCert: true,
        rejectUnauthorized: true,
        // An Istio peer accepts upstream's in-mesh ALPN.
        ALPNProtocols: ['istio'],
      },
      (req, res) => {
        if (!(req.socket instanceof TLSSocket)) throw new Error('not a TLS connection');
        const socket = req.socket;
        meshSeen.push({
          url: req.url ?? '',
          sni: socket.servername,
          alpn: socket.alpnProtocol,
          clientSan: socket.getPeerCertificate().subjectaltname,
        });
        res.writeHead(200).end('mesh\n');
      },
    );
    await new Promise<void>(resolve => meshServer.listen(0, '127.0.0.1', resolve));
    const meshPort = (meshServer.address() as AddressInfo).port;
    // An HTTP/2-only TLS server: the cluster speaks HTTP/2 and offers ALPN h2 (a gRPC port).
    h2Server = createSecureServer({ cert: serving.certChainPem, key: serving.keyPem, ALPNProtocols: ['h2'] });
    h2Server.on('stream', (stream, headers) => {
      const socket = stream.session?.socket;
      h2Seen.push({
        path: String(headers[':path']),
        alpn: socket instanceof TLSSocket ? socket.alpnProtocol : null,
        sni: socket instanceof TLSSocket ? socket.servername : null,
      });
      stream.respond({ ':status': 200 });
      stream.end('h2\n');
    });
    await new Promise<void>(resolve => h2Server.listen(0, '127.0.0.1', resolve));
    const h2Port = (h2Server.address() as AddressInfo).port;
    xds = new TestXdsServer();
    await xds.start();
    xds.set(TypeUrl.cluster, H2, {
      ...cluster(H2, h2Port, tlsSocket({ ca: ca.trustBundle.pem, sni: HOST, alpn: ['h2'] })),
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': any(EnvoyType.httpProtocolOptions, {
          explicit_http_config: { http2_protocol_options: {} },
        }),
      },
    });
    const sds = {
      api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
    };
    xds.set(
      TypeUrl.cluster,
      ISTIO,
      cluster(ISTIO, meshPort, {
        name: 'envoy.transport_sockets.tls',
        typed_config: any(EnvoyType.upstreamTlsContext, {
          sni: 'outbound_.80_._.mesh.example.com',
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sds }],
            combined_validation_context: {
              default_validation_context: {
                match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: meshPeer.id } }],
              },
              validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sds },
            },
            alpn_protocols: ['istio-peer-exchange', 'istio'],
          },
        }),
      }),
    );
    const caPem = ca.trustBundle.pem;
    const dns = (value: string) => ({ san_type: 'DNS', matcher: { exact: value } });
    xds.set(
      TypeUrl.cluster,
      GOOD,
      cluster(GOOD, port, tlsSocket({ ca: caPem, sans: [dns(HOST)], sni: HOST, alpn: ['http/1.1'] })),
    );
    xds.set(
      TypeUrl.cluster,
      WRONG_CA,
      cluster(WRONG_CA, port, tlsSocket({ ca: other.trustBundle.pem, sni: HOST })),
    );
    xds.set(
      TypeUrl.cluster,
      WRONG_SAN,
      cluster(WRONG_SAN, port, tlsSocket({ ca: caPem, sans: [dns('other.example.com')], sni: HOST })),
    );
    xds.set(
      TypeUrl.cluster,
      MTLS,
      cluster(
        MTLS,
        port,
        tlsSocket({
          ca: caPem,
          sni: 'mtls.example.com',
          cert: { chain: clientCert.certChain.join(''), key: clientCert.privateKeyPem },
        }),
      ),
    );
    xds.set(TypeUrl.cluster, SKIP, cluster(SKIP, port, tlsSocket({})));
    xds.set(TypeUrl.cluster, PLAIN, cluster(PLAIN, port));
    const route = (path: string, c: string) => ({
      name: path,
      match: { prefix: path },
      route: { cluster: c, timeout: ms(0) },
    });
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: `${HOST}:80`,
          domains: ['*'],
          routes: [
            route('/wrong-ca', WRONG_CA),
            route('/wrong-san', WRONG_SAN),
            route('/mtls', MTLS),
            route('/skip', SKIP),
            route('/plain', PLAIN),
            route('/istio', ISTIO),
            route('/h2', H2),
            route('/', GOOD),
          ],
        },
      ],
    });
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 80, ROUTE));
    const started = await startLoopbackWaypoint({ xds, pki, logs: captured.logs, namespace: 'egress' });
    waypoint = started.waypoint;
    client = new MeshClient(
      await started.clientOptions('client', `${VIP}:80`, {
        baggage:
          'k8s.namespace.name=egress,k8s.deployment.name=client,service.name=client,service.version=v1',
      }),
    );
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    await client.close();
    await waypoint.shutdown();
    await new Promise<void>(resolve => {
      h2Server.close(() => {
        resolve();
      });
    });
    for (const srv of [server, meshServer])
      await new Promise<void>(resolve => {
        srv.close(() => {
          resolve();
        });
        srv.closeAllConnections();
      });
    xds.close();
  });

  it('accepts the TLS clusters (ACK) with their UpstreamTlsContext', () => {
    expect(xds.syncState(TypeUrl.cluster)).not.toBe('nacked');
    const good = waypoint.state.snapshot().clusters.get(GOOD);
    expect(good?.upstreamTls).toMatchObject({ sni: HOST, alpn: ['http/1.1'], trustedCa: { kind: 'pem' } });
    expect(waypoint.state.snapshot().clusters.get(SKIP)?.upstreamTls?.trustedCa).toBeUndefined();
  });

  it('originates TLS with the SNI and ALPN, verifying the CA and the SAN: the plain HTTP request gets 200', async () => {
    const before = seen.length;
    const res = await client.get('/good', { host: HOST });
    expect(res.status).toBe(200);
    expect(seen.slice(before)).toEqual([{ url: '/good', sni: HOST, alpn: 'http/1.1', clientSan: undefined }]);
  });

  it('presents the client certificate for MUTUAL', async () => {
    const before = seen.length;
    expect((await client.get('/mtls', { host: HOST })).status).toBe(200);
    expect(seen.slice(before)).toEqual([
      {
        url: '/mtls',
        sni: 'mtls.example.com',
        alpn: false,
        clientSan: 'URI:spiffe://external.test/egress-waypoint',
      },
    ]);
  });

  it('speaks HTTP/2 over the TLS connection when the cluster asks for it, with ALPN h2', async () => {
    expect((await client.get('/h2', { host: HOST })).status).toBe(200);
    expect(h2Seen.at(-1)).toEqual({ path: '/h2', alpn: 'h2', sni: HOST });
  });

  it("ISTIO_MUTUAL (SDS default and ROOTCA): the waypoint's own workload certificate, the mesh roots and the peer's SPIFFE ID", async () => {
    expect(waypoint.state.snapshot().clusters.get(ISTIO)?.upstreamTls).toMatchObject({
      clientCertificate: { kind: 'workload' },
      trustedCa: { kind: 'mesh' },
    });
    expect((await client.get('/istio', { host: HOST })).status).toBe(200);
    expect(meshSeen.at(-1)).toEqual({
      url: '/istio',
      sni: 'outbound_.80_._.mesh.example.com',
      alpn: 'istio',
      clientSan: 'URI:spiffe://cluster.local/ns/egress/sa/waypoint',
    });
  });

  it('a server certificate from another CA, or without the SAN asked for: 503 UF, counted, nothing reaches the server', async () => {
    const before = seen.length;
    expect((await client.get('/wrong-ca', { host: HOST })).status).toBe(503);
    expect((await client.get('/wrong-san', { host: HOST })).status).toBe(503);
    expect(seen.length).toBe(before);
    const text = await scrapeStats(waypoint);
    expect(requestsTotalLine(text, 'response_code="503"', 'response_flags="UF"')).toBeDefined();
    for (const c of [WRONG_CA, WRONG_SAN])
      expect(text).toMatch(
        new RegExp(
          `envoy_cluster_ssl_connection_error\\{cluster_name="${c.replaceAll('|', '\\|')}"\\} [1-9]`,
        ),
      );
  });

  it('without a validation context verifies nothing (insecureSkipVerify); without a socket speaks plain HTTP to the TLS port (fails)', async () => {
    const before = seen.length;
    expect((await client.get('/skip', { host: HOST })).status).toBe(200);
    expect(seen.slice(before).map(s => s.url)).toEqual(['/skip']);
    expect((await client.get('/plain', { host: HOST })).status).not.toBe(200);
  });

  it('matches SANs by type and matcher; rejects socket configs it cannot honour', () => {
    const sans = parseSubjectAltNames('DNS:a.example.com, URI:spiffe://td/ns/x, IP Address:10.0.0.1');
    expect(sans).toEqual([
      { type: 'DNS', value: 'a.example.com' },
      { type: 'URI', value: 'spiffe://td/ns/x' },
      { type: 'IP_ADDRESS', value: '10.0.0.1' },
    ]);
    const m = (type: 'DNS' | 'URI' | undefined, kind: 'exact' | 'suffix', value: string) => ({
      type,
      match: { kind, value, ignoreCase: false },
    });
    expect(subjectAltNamesMatch([m('DNS', 'suffix', '.example.com')], sans)).toBe(true);
    expect(subjectAltNamesMatch([m('URI', 'exact', 'a.example.com')], sans)).toBe(false);
    expect(subjectAltNamesMatch([m(undefined, 'exact', 'a.example.com')], sans)).toBe(true);
    expect(subjectAltNamesMatch([], sans)).toBe(true);
    const sds = convertCluster('c', '1', {
      ...cluster('c', 1),
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: any(EnvoyType.upstreamTlsContext, {
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{ name: 'kubernetes://client-cert' }],
            validation_context: { trusted_ca: { filename: '/etc/certs/root.pem' } },
          },
        }),
      },
    });
    expect(sds.ok).toBe(false);
    expect(sds.ok ? [] : sds.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('SDS secret "kubernetes://client-cert" is not supported'),
        expect.stringContaining('/etc/certs/root.pem is not supported'),
      ]),
    );
  });
});
