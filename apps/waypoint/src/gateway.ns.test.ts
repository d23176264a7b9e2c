/**
 * Router mode in a real network namespace (root): the gateway binds its listeners on
 * privileged ports (0.0.0.0:80 and 0.0.0.0:443) in a pod namespace, as a gateway pod does, and a
 * client in a peer namespace reaches them over a veth. A second listener on 0.0.0.0:80 is
 * NACKed; the client's real address is the `x-forwarded-for`.
 */
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, connectInNetns, listenInNetns, openNetns } from '@ambient-mesh/netns';
import { createPodNetns } from '@ambient-mesh/netns/testing';
import type { PodNetns } from '@ambient-mesh/netns/testing';
import { issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, edsCluster, router } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import { TestXdsServer, TypeUrl, createTestPki, waitFor } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const BACKEND = 'outbound|80||web.edge.svc.cluster.local';
const ROUTES = 'http.80';

const hcm: ProtoObject = {
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: any(EnvoyType.httpConnectionManager, {
    stat_prefix: ROUTES,
    rds: { route_config_name: ROUTES },
    http_filters: [router],
  }),
};

const at = (port: number): ProtoObject => ({ socket_address: { address: '0.0.0.0', port_value: port } });

/** One HTTP/1.1 exchange on `socket`; resolves with the raw response once the gateway closes. */
async function exchange(socket: Socket | ReturnType<typeof tlsConnect>, host: string): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(`GET /ns HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    socket.once('close', () => {
      resolve();
    });
    socket.once('error', reject);
  });
  return Buffer.concat(chunks).toString('utf8');
}

describe('router mode on privileged ports in a pod network namespace', () => {
  const captured = captureLogs();
  let netns: PodNetns;
  let podFd: number;
  let peerFd: number;
  let xds: TestXdsServer;
  let backend: HttpServer;
  let gateway: Bound;
  let certId: string;

  beforeAll(async () => {
    netns = createPodNetns('gwns');
    podFd = openNetns(netns.podPath);
    peerFd = openNetns(netns.peerPath);
    backend = createHttpServer((req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ headers: req.headers }));
    });
    await new Promise<void>(resolve => backend.listen(0, '127.0.0.1', resolve));
    const backendPort = (backend.address() as AddressInfo).port;
    const pki = await createTestPki();
    certId = 'spiffe://cluster.local/ns/tls/sa/web';
    const cert = await issueRawCert(pki.ca, certId);
    xds = new TestXdsServer();
    await xds.start();
    xds.set(TypeUrl.cluster, BACKEND, edsCluster(BACKEND));
    xds.set(TypeUrl.clusterLoadAssignment, BACKEND, {
      cluster_name: BACKEND,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } } },
          ],
        },
      ],
    });
    xds.set(TypeUrl.routeConfiguration, ROUTES, {
      name: ROUTES,
      virtual_hosts: [
        {
          name: 'web',
          domains: ['*'],
          routes: [
            { name: 'all', match: { prefix: '/' }, route: { cluster: BACKEND, timeout: { seconds: 0 } } },
          ],
        },
      ],
    });
    xds.set(TypeUrl.listener, '0.0.0.0_80', {
      name: '0.0.0.0_80',
      address: at(80),
      filter_chains: [{ filters: [hcm] }],
    });
    xds.set(TypeUrl.listener, '0.0.0.0_443', {
      name: '0.0.0.0_443',
      address: at(443),
      filter_chains: [
        {
          filter_chain_match: { server_names: ['web.example.com'] },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: any(EnvoyType.downstreamTlsContext, {
              common_tls_context: {
                tls_certificates: [
                  {
                    certificate_chain: { inline_string: cert.certChain.join('\n') },
                    private_key: { inline_string: cert.privateKeyPem },
                  },
                ],
              },
            }),
          },
          filters: [hcm],
        },
      ],
    });
    // Another listener wanting port 80: NACKed, the first keeps it.
    xds.set(TypeUrl.listener, 'zz_duplicate_80', {
      name: 'zz_duplicate_80',
      address: at(80),
      filter_chains: [{ filters: [hcm] }],
    });
    gateway = await build(
      { ...testConfig(), mode: 'router', podNamespace: 'edge' },
      {
        xdsConnect: xds.connect(),
        identity: await pki.identity('edge', 'gw-istio'),
        processMetrics: false,
        logs: captured.logs,
        listenerSocket: async (server, address) => {
          await listenInNetns(podFd, { host: address.host, port: address.port }, server);
        },
      },
    );
    await waitFor('xDS sync', () => gateway.readiness.ready, 30_000);
  }, 60_000);

  afterAll(async () => {
    await gateway.shutdown();
    xds.close();
    backend.closeAllConnections();
    await new Promise<void>(resolve => {
      backend.close(() => {
        resolve();
      });
    });
    closeFd(podFd);
    closeFd(peerFd);
    netns.remove();
  });

  it('binds 0.0.0.0:80 and 0.0.0.0:443 in the pod namespace and serves a client from another namespace', async () => {
    expect(gateway.listenerAddresses().get('0.0.0.0_80')?.port).toBe(80);
    expect(gateway.listenerAddresses().get('0.0.0.0_443')?.port).toBe(443);
    const plain = await exchange(connectInNetns(peerFd, { host: netns.podIp, port: 80 }), 'web.example.com');
    expect(plain).toMatch(/^HTTP\/1\.1 200/);
    expect(plain).toContain(`"x-forwarded-for":"${netns.peerIp}"`);
    expect(plain).toContain('"x-forwarded-proto":"http"');
    const raw = connectInNetns(peerFd, { host: netns.podIp, port: 443 });
    const tls = tlsConnect({ socket: raw, servername: 'web.example.com', rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    expect(tls.getPeerCertificate().subjectaltname).toBe(`URI:${certId}`);
    const secure = await exchange(tls, 'web.example.com');
    expect(secure).toMatch(/^HTTP\/1\.1 200/);
    expect(secure).toContain('"x-forwarded-proto":"https"');
  });

  it('NACKs a second listener on the same port, naming the address', async () => {
    await waitFor('the NACK', () => gateway.nacks.get(TypeUrl.listener) !== undefined);
    expect(gateway.nacks.get(TypeUrl.listener)?.nack).toContain(
      'zz_duplicate_80: cannot bind 0.0.0.0:80: the address is already in use (EADDRINUSE)',
    );
    expect(gateway.listenerAddresses().has('zz_duplicate_80')).toBe(false);
  });
});
