// Cluster tier: egress through a waypoint (issue 20, scenario 14) on a 1-node local cluster
// (name `egress`, slot 119). A plain HTTP server run by
// this test on the cluster's own address in the root netns (`10.211.119.1`, the `am-egress` link
// the cluster made) stands in for a host outside the mesh. ServiceEntries in the app namespace
// (bound to its waypoint by the namespace label `istio.io/use-waypoint`) name it:
// `resolution: DNS` (a `STRICT_DNS` cluster in the waypoint), `DNS_ROUND_ROBIN` (`LOGICAL_DNS`),
// `STATIC` (`EDS`, endpoints without tunnel metadata) and `NONE` (an `ORIGINAL_DST` cluster). A pod's request goes client ztunnel -> waypoint (HBONE) -> the server
// (plain TCP), and the waypoint's metrics count it for the ServiceEntry host. An
// AuthorizationPolicy targeting a ServiceEntry is enforced by the waypoint on that egress traffic.
// TLS origination: an HTTPS server (a certificate from a CA this test creates) stands in for a
// TLS-only external host; the pod sends plain HTTP to the ServiceEntry's port and a
// DestinationRule (`tls.mode: SIMPLE`, `credentialName` naming a Secret with the CA) makes the
// waypoint originate TLS to it (SNI, CA and SAN verified); with the wrong CA the request fails 503.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pki } from '../control-plane/pki.ts';
import { waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { listenOn, type ListeningServer } from '../mesh/external-server.ts';
import { waypointMetrics, waypointRequests, type WaypointPod } from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { curlInPod, echoPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'egress';
const SLOT = 119;
const HOST_IP = `10.211.${SLOT}.1`;
const SE_PATH = `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`;
const scenario = new ScenarioContext<MeshPod>('egress');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;
let server: ListeningServer | undefined;
let serverPort = 0;
/** The requests the external server saw: path and Host header. */
const seen: { readonly url: string; readonly host: string }[] = [];
/** The HTTPS server (TLS origination): its port and the requests it saw, with their SNI. */
let tlsServer: ListeningServer | undefined;
let tlsPort = 0;
const seenTls: { readonly url: string; readonly host: string; readonly sni: string | false | null }[] = [];
let pkiDir: string | undefined;
/** PEM CAs: the one that signed the HTTPS server's certificate, and an unrelated one. */
let goodCa = '';
let wrongCa = '';
const SECURE_HOST = 'secure.egress.test';
const SECURE_VIP = '240.240.119.13';

/** Sum of `istio_requests_total{reporter="waypoint"}` with code 200 for `host`. */
async function countedFor(host: string): Promise<number> {
  return waypointRequests(await waypointMetrics(waypoint))
    .filter(s => s.labels.destination_service === host && s.labels.response_code === '200')
    .reduce((sum, s) => sum + s.value, 0);
}

/**
 * Requests `url` from the client pod (Host header `host`) until the external server answered one
 * with 200 and the waypoint counted it for `host` (a request that went past the waypoint, before
 * the ServiceEntry took effect, is not counted there).
 */
async function throughWaypoint(url: string, host: string): Promise<void> {
  await waitFor(
    `${url} (Host ${host}) from the client pod answered by the external server and counted by the waypoint`,
    async () => {
      const before = seen.length;
      const code = await curlInPod(pod('client'), url, { headers: { host }, maxTimeS: 5 });
      const hit = seen.slice(before).some(s => s.host === host);
      return code === '200' && hit && (await countedFor(host)) > 0 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
}

describe('egress through a waypoint to a host outside the mesh, on a 1-node local cluster', () => {
  beforeAll(async () => {
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'egress', slot: SLOT, nodes: 1 },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods: [
        ['echo', echoPod('echo', { namespace: NS, node: 'node-0', containerPorts: [8080] })],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    // The cluster's address exists once the cluster started: the external server listens there.
    const plainServer = createServer((req, res) => {
      seen.push({ url: req.url ?? '', host: req.headers.host ?? '' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('external\n');
    });
    server = await listenOn(plainServer, HOST_IP);
    serverPort = server.port;
    log(`external server on ${HOST_IP}:${serverPort}`);
    // The TLS-only external host: a serving certificate for its name from a CA of this test.
    pkiDir = mkdtempSync(join(tmpdir(), 'am-egress-tls-'));
    const pki = new Pki(join(pkiDir, 'good'));
    await pki.init();
    const wrong = new Pki(join(pkiDir, 'wrong'));
    await wrong.init();
    const serving = await pki.serving('secure', [SECURE_HOST], [HOST_IP]);
    goodCa = readFileSync(pki.ca.cert, 'utf8');
    wrongCa = readFileSync(wrong.ca.cert, 'utf8');
    const httpsServer = createHttpsServer(
      { cert: readFileSync(serving.cert), key: readFileSync(serving.key) },
      (req, res) => {
        const sni = req.socket instanceof TLSSocket ? req.socket.servername : null;
        seenTls.push({ url: req.url ?? '', host: req.headers.host ?? '', sni });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('secure external\n');
      },
    );
    tlsServer = await listenOn(httpsServer, HOST_IP);
    tlsPort = tlsServer.port;
    log(`external HTTPS server on ${HOST_IP}:${tlsPort}`);
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await tlsServer?.close();
    if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
    await server?.close();
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('resolution DNS: a pod reaches the external host through the waypoint (STRICT_DNS, plain TCP), counted by the waypoint', async () => {
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'api', namespace: NS },
      spec: {
        hosts: ['api.egress.test'],
        addresses: ['240.240.119.10'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: serverPort }],
        resolution: 'DNS',
        endpoints: [{ address: HOST_IP }],
      },
    });
    // The VIP is routed nowhere but through the waypoint.
    await throughWaypoint('http://240.240.119.10/dns', 'api.egress.test');
    expect(seen.some(s => s.url === '/dns')).toBe(true);
  }, 180_000);

  it('an AuthorizationPolicy on the ServiceEntry (DENY POST) is enforced by the waypoint: POST 403, GET 200', async () => {
    await kube().client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'api-no-post', namespace: NS },
      spec: {
        targetRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'api' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      },
    });
    const post = (): Promise<string> =>
      curlInPod(pod('client'), 'http://240.240.119.10/post', {
        headers: { host: 'api.egress.test' },
        method: 'POST',
      });
    await waitFor(
      'POST to api.egress.test denied (403)',
      async () => ((await post()) === '403' ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 1_000,
      },
    );
    // Once the policy is in force, a denied POST never reaches the external server.
    const before = seen.length;
    expect(await post()).toBe('403');
    expect(seen.slice(before).some(s => s.url === '/post')).toBe(false);
    expect(
      await curlInPod(pod('client'), 'http://240.240.119.10/get', { headers: { host: 'api.egress.test' } }),
    ).toBe('200');
  }, 120_000);

  it('resolution DNS_ROUND_ROBIN (LOGICAL_DNS) and STATIC (EDS without tunnel metadata) reach the external host too', async () => {
    for (const [name, resolution, vip] of [
      ['logical', 'DNS_ROUND_ROBIN', '240.240.119.11'],
      ['fixed', 'STATIC', '240.240.119.12'],
    ] as const) {
      await kube().client.create(SE_PATH, {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name, namespace: NS },
        spec: {
          hosts: [`${name}.egress.test`],
          addresses: [vip],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: serverPort }],
          resolution,
          endpoints: [{ address: HOST_IP }],
        },
      });
      await throughWaypoint(`http://${vip}/${name}`, `${name}.egress.test`);
      log(`${resolution}: ${await countedFor(`${name}.egress.test`)} request(s) counted by the waypoint`);
    }
  }, 240_000);

  it('resolution NONE: the waypoint sends the request to its original destination (ORIGINAL_DST)', async () => {
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'passthrough', namespace: NS },
      spec: {
        hosts: ['passthrough.egress.test'],
        addresses: [HOST_IP],
        ports: [{ number: serverPort, name: 'http', protocol: 'HTTP' }],
        resolution: 'NONE',
      },
    });
    await throughWaypoint(`http://${HOST_IP}:${serverPort}/none`, 'passthrough.egress.test');
    expect(seen.some(s => s.url === '/none')).toBe(true);
  }, 180_000);
  it('TLS origination: a DestinationRule (SIMPLE, credentialName) makes the waypoint speak TLS to the external host (SNI, CA, SAN); the policy still applies; the wrong CA fails with 503', async () => {
    const secretPath = `/api/v1/namespaces/${NS}/secrets`;
    const caData = (pem: string): Record<string, string> => ({
      'ca.crt': Buffer.from(pem).toString('base64'),
    });
    // The Secret and the rule come first: the entry never goes out in plaintext.
    await kube().client.create(secretPath, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'secure-ca', namespace: NS },
      type: 'Opaque',
      data: caData(goodCa),
    });
    await kube().client.create(`/apis/networking.istio.io/v1/namespaces/${NS}/destinationrules`, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'secure-tls', namespace: NS },
      spec: {
        host: SECURE_HOST,
        trafficPolicy: {
          tls: { mode: 'SIMPLE', credentialName: 'secure-ca', subjectAltNames: [SECURE_HOST] },
        },
      },
    });
    await kube().client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'secure-no-post', namespace: NS },
      spec: {
        targetRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'secure' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      },
    });
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'secure', namespace: NS },
      spec: {
        hosts: [SECURE_HOST],
        addresses: [SECURE_VIP],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: tlsPort }],
        resolution: 'DNS',
        endpoints: [{ address: HOST_IP }],
      },
    });
    const url = `http://${SECURE_VIP}/secure`;
    await waitFor(
      `${url} (plain HTTP from the pod) answered by the HTTPS server through the waypoint`,
      async () => {
        const before = seenTls.length;
        const code = await curlInPod(pod('client'), url, { headers: { host: SECURE_HOST }, maxTimeS: 5 });
        const hit = seenTls.slice(before).some(s => s.url === '/secure');
        return code === '200' && hit && (await countedFor(SECURE_HOST)) > 0 ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    // The server saw TLS (it speaks nothing else) with the host's name as SNI.
    expect(seenTls.filter(s => s.url === '/secure').every(s => s.sni === SECURE_HOST)).toBe(true);
    expect(seenTls.at(-1)?.host).toBe(SECURE_HOST);
    const post = (): Promise<string> =>
      curlInPod(pod('client'), `http://${SECURE_VIP}/post`, {
        headers: { host: SECURE_HOST },
        method: 'POST',
      });
    await waitFor(
      'POST to the TLS host denied (403)',
      async () => ((await post()) === '403' ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 1_000,
      },
    );
    expect(seenTls.some(s => s.url === '/post')).toBe(false);
    expect(
      await curlInPod(pod('client'), `http://${SECURE_VIP}/get`, { headers: { host: SECURE_HOST } }),
    ).toBe('200');
    log(`TLS origination: ${seenTls.length} request(s) over TLS, SNI ${String(seenTls.at(-1)?.sni)}`);

    // The wrong CA: the waypoint refuses the server's certificate and answers 503.
    await kube().client.mergePatch(`${secretPath}/secure-ca`, { data: caData(wrongCa) });
    await waitFor(
      'GET to the TLS host failing with 503 once the Secret holds the wrong CA',
      async () =>
        (await curlInPod(pod('client'), `http://${SECURE_VIP}/wrong-ca`, {
          headers: { host: SECURE_HOST },
        })) === '503'
          ? true
          : undefined,
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    const before = seenTls.length;
    expect(
      await curlInPod(pod('client'), `http://${SECURE_VIP}/wrong-ca`, { headers: { host: SECURE_HOST } }),
    ).toBe('503');
    expect(seenTls.slice(before).some(s => s.url === '/wrong-ca')).toBe(false);
    // Counted as Envoy does: the request with flag UF (URX too after the default retries), and the
    // TLS failures of the host's cluster.
    const samples = await waypointMetrics(waypoint);
    const failed = waypointRequests(samples).filter(
      s =>
        s.labels.destination_service === SECURE_HOST &&
        s.labels.response_code === '503' &&
        (s.labels.response_flags ?? '').split(',').includes('UF'),
    );
    log(`wrong CA: 503 with flags ${[...new Set(failed.map(s => s.labels.response_flags))].join(' ')}`);
    expect(failed.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThan(0);
    const tlsErrors = samples.filter(
      s =>
        s.name === 'envoy_cluster_ssl_connection_error' &&
        (s.labels.cluster_name ?? '').endsWith(`|${SECURE_HOST}`),
    );
    expect(tlsErrors.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThan(0);
  }, 360_000);
});
