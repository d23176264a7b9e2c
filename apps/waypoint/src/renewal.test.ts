/**
 * Certificate renewal on loopback: the waypoint gets its certificate from a real CA server
 * (`IstioCertificateService/CreateCertificate` over grpc-js, signing with the test CA) that issues
 * certificates of a few seconds, and renews it while HTTP traffic flows through it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateDump } from '@ambient-mesh/spiffe-certs';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import { WaypointErrorCode } from './errors.ts';
import type { Bound } from './app.ts';
import { assignment, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import {
  HboneBackend,
  MeshClient,
  TestXdsServer,
  TypeUrl,
  createTestPki,
  startTestCaServer,
  waitFor,
} from './testing/loopback.ts';
import type { TestCaServer, TestPki } from './testing/loopback.ts';
import { testConfig } from './testing/harness.ts';

const VIP = '10.96.0.20';
const ROUTE = 'ratings.80';
const CLUSTER = 'outbound|80||ratings.default.svc.cluster.local';
const WAYPOINT_ID = 'spiffe://cluster.local/ns/default/sa/waypoint';
/** The lifetime the waypoint asks for (SECRET_TTL): renewed about every second or two. */
const TTL_SECONDS = 4;

/** The CA: signs each CSR for the identity it names, with the requested lifetime. */
function startCaServer(pki: TestPki, issueAs: string = WAYPOINT_ID): Promise<TestCaServer> {
  return startTestCaServer(pki.ca, issueAs);
}

/** The serial number of the certificate the waypoint presents to a new TLS handshake. */
function presentedSerial(port: number, client: HboneIdentity): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['h2'],
      cert: typeof client.certChain === 'string' ? client.certChain : client.certChain.join('\n'),
      key: client.privateKey as string,
      // Only the presented certificate is read here; the HBONE clients verify it.
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

function currentCert(waypoint: Bound): CertificateDump['certChain'][number] | undefined {
  const [dump] = waypoint.certificates();
  return dump?.state === 'Available' ? dump.certChain[0] : undefined;
}

describe('waypoint certificate renewal', () => {
  const captured = captureLogs();
  let pki: TestPki;
  let caServer: Awaited<ReturnType<typeof startCaServer>>;
  let xds: TestXdsServer;
  let backend: HboneBackend;
  let waypoint: Bound;
  let tokenDir: string;

  beforeAll(async () => {
    pki = await createTestPki();
    caServer = await startCaServer(pki);
    xds = new TestXdsServer();
    await xds.start();
    // Each response closes its connection, so every request opens a new upstream HBONE tunnel:
    // after a renewal, tunnels go on a new connection made with the new certificate.
    backend = new HboneBackend('ratings', await pki.identity('default', 'ratings'), (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(req.url ?? '');
    });
    await backend.start();
    xds.set(TypeUrl.cluster, CLUSTER, edsCluster(CLUSTER));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      CLUSTER,
      assignment(CLUSTER, [
        {
          address: '10.1.0.7',
          port: 8080,
          hbone: `127.0.0.1:${backend.port}`,
          identity: backend.identity.id,
          workload: 'ratings-v1;default;ratings;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 80, ROUTE));
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: 'ratings',
          domains: ['*'],
          routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: CLUSTER, timeout: ms(0) } }],
        },
      ],
    });
    tokenDir = mkdtempSync(join(tmpdir(), 'waypoint-renewal-'));
    writeFileSync(join(tokenDir, 'istio-token'), 'token\n');
    waypoint = await build(
      {
        ...testConfig(),
        caAddress: caServer.address,
        tokenPath: join(tokenDir, 'istio-token'),
        certDir: join(tokenDir, 'no-certs'),
        secretTtlSeconds: TTL_SECONDS,
      },
      { xdsConnect: xds.connect(), processMetrics: false, logs: captured.logs },
    );
    await waitFor('xDS sync', () => waypoint.readiness.ready, 30_000);
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    await waypoint.shutdown();
    await backend.close();
    xds.close();
    caServer.close();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  it('renews at half-life while traffic flows: new handshakes get the new certificate, no request fails', async () => {
    const first = currentCert(waypoint);
    expect(first).toBeDefined();
    const firstExpiry = Date.parse(first!.expirationTime);
    const clientIdentity = await pki.identity('default', 'productpage');
    const options = {
      identity: clientIdentity,
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: WAYPOINT_ID,
      target: `${VIP}:80`,
    };
    // One client keeps its HBONE connection (made with the first certificate) throughout.
    const steady = new MeshClient(options);
    expect((await steady.get('/start')).status).toBe(200);
    const serials = new Set<string>([first!.serialNumber]);
    const presented = new Set<string>();
    const failures: string[] = [];
    let requests = 0;
    // Until two renewals happened, the first certificate expired and a new handshake got a
    // renewed certificate (bounded: the loop gives up after 60 s).
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const current = currentCert(waypoint);
      if (current !== undefined) serials.add(current.serialNumber);
      const serial = await presentedSerial(waypoint.hboneAddress.port, clientIdentity);
      presented.add(serial);
      // A fresh client: a new handshake with the waypoint for each round.
      const fresh = new MeshClient(options);
      try {
        for (const client of [steady, fresh]) {
          requests++;
          const res = await client.get(`/r${requests}`).catch((err: unknown) => ({ status: String(err) }));
          if (res.status !== 200) failures.push(`/r${requests}: ${res.status}`);
        }
      } finally {
        await fresh.close();
      }
      const renewedPresented = [...presented].some(s => s !== first!.serialNumber);
      if (serials.size >= 3 && Date.now() > firstExpiry + 500 && renewedPresented) break;
    }
    expect(failures).toEqual([]);
    expect(serials.size).toBeGreaterThanOrEqual(3);
    expect(caServer.issued()).toBeGreaterThanOrEqual(3);
    // A new handshake presents the certificate in use, not the first one.
    const now = currentCert(waypoint)!;
    const renewed = [...presented].filter(s => s !== first!.serialNumber);
    expect(renewed.length).toBeGreaterThan(0);
    for (const s of renewed) expect(serials.has(s)).toBe(true);
    expect(Date.now()).toBeGreaterThan(firstExpiry);
    // The steady client never needed a second connection to the waypoint.
    expect(steady.hbone.stats().connections).toBe(1);
    expect((await steady.get('/end')).status).toBe(200);
    expect(Date.parse(now.expirationTime)).toBeGreaterThan(firstExpiry);
    // The upstream saw the waypoint's identity on every request.
    expect(backend.requests.every(r => r.peer === WAYPOINT_ID)).toBe(true);
    // The first certificate has expired: a handshake with a new endpoint succeeds only with a
    // renewed one (the endpoint verifies the waypoint's certificate, validity included).
    const moved = new HboneBackend('ratings-2', backend.identity, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.url ?? '');
    });
    await moved.start();
    try {
      xds.set(
        TypeUrl.clusterLoadAssignment,
        CLUSTER,
        assignment(CLUSTER, [
          {
            address: '10.1.0.8',
            port: 8080,
            hbone: `127.0.0.1:${moved.port}`,
            identity: backend.identity.id,
            workload: 'ratings-v2;default;ratings;v2;Kubernetes',
          },
        ]),
      );
      await waitFor(
        'a request to the moved endpoint',
        async () => {
          const res = await steady.get('/moved');
          expect(res.status).toBe(200);
          return moved.requests.length > 0;
        },
        30_000,
      );
      expect(moved.requests.at(-1)?.peer).toBe(WAYPOINT_ID);
    } finally {
      await moved.close();
    }
    expect(captured.records.filter(r => r.msg === 'certificate renewed').length).toBeGreaterThanOrEqual(2);
    await steady.close();
  }, 90_000);

  it('reports the certificate in use in /config_dump', async () => {
    const res = await fetch(`http://127.0.0.1:${waypoint.adminAddress.port}/config_dump`);
    const dump = (await res.json()) as { certificates: CertificateDump[] };
    expect(dump.certificates).toHaveLength(1);
    expect(dump.certificates[0]).toMatchObject({ identity: WAYPOINT_ID, state: 'Available' });
    expect(dump.certificates[0]?.certChain[0]?.pem).toMatch(/BEGIN CERTIFICATE/);
    expect(dump.certificates[0]?.rootCerts).toHaveLength(1);
  });

  it('does not start when the CA issues no usable certificate', async () => {
    const wrong = await startCaServer(pki, 'spiffe://cluster.local/ns/default/sa/other');
    try {
      await expect(
        build(
          {
            ...testConfig(),
            caAddress: wrong.address,
            tokenPath: join(tokenDir, 'istio-token'),
            certDir: join(tokenDir, 'no-certs'),
            secretTtlSeconds: TTL_SECONDS,
          },
          { xdsConnect: xds.connect(), processMetrics: false, logs: captured.logs },
        ),
      ).rejects.toMatchObject({ code: WaypointErrorCode.CertificateRequestFailed });
    } finally {
      wrong.close();
    }
  });
});
