// Cluster tier, scenario 13: ingress on a 2-node local cluster (name `ingress`, slot 134), one
// cluster shared by the file. A Gateway of class `istio` (istiod deploys our proxy in router mode
// behind a LoadBalancer Service) with an HTTPRoute to an ambient backend whose Services use a
// waypoint (namespace label `istio.io/use-waypoint`). Requests come from outside the mesh: from the
// host, to the Gateway's LoadBalancer address (`status.addresses`, on the cluster fabric).
//
// - Without `istio.io/ingress-use-waypoint`, the gateway sends straight to the backend over HBONE
//   (the backend's ztunnel counts mTLS connections from the gateway's identity) and the waypoint
//   sees none of it, as upstream.
// - With `istio.io/ingress-use-waypoint: "true"` on the backend Service, the same requests cross the
//   waypoint too: its `istio_requests_total` counts them.
// - A TLS listener in `Passthrough` mode with a TLSRoute (v1alpha2): the gateway picks the route by
//   the ClientHello's SNI and relays the still-encrypted stream over HBONE to a backend that
//   terminates TLS itself (the client meets the backend's certificate, not a gateway one).
// - On the same port, an HTTPS listener with `tls.options` `gateway.istio.io/tls-terminate-mode:
//   MUTUAL`: the gateway terminates TLS for its hostname and answers only a client whose
//   certificate chains to the Secret's `ca.crt`.
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import {
  GATEWAY_PATH,
  HTTPROUTE_PATH,
  waypointMetrics,
  waypointRequests,
  type WaypointPod,
} from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, mtlsConnectionsTo, type MeshPod } from '../mesh/workloads.ts';

const NS = 'ingress';
const GATEWAY = 'public';
/** istiod names the generated Deployment, Service and ServiceAccount `<gateway>-istio`. */
const GATEWAY_SA = `${GATEWAY}-istio`;
const GATEWAY_ID = `spiffe://cluster.local/ns/${NS}/sa/${GATEWAY_SA}`;
/** The TLS passthrough backend's own certificate (a URI SAN the client can recognise). */
const SECURE_ID = `spiffe://cluster.local/ns/${NS}/sa/secure-backend`;
const SECURE_HOST = 'secure.example.com';
const MTLS_HOST = 'mtls.example.com';
/** A client certificate of the CA in the MUTUAL listener's Secret (`ca.crt`), PEM. */
let clientCert: { cert: string; key: string };
const TLSROUTE_PATH = (ns: string): string =>
  `/apis/gateway.networking.k8s.io/v1alpha2/namespaces/${ns}/tlsroutes`;
const scenario = new ScenarioContext<MeshPod>('ingress');
const { log, kube } = scenario;
let waypoint: WaypointPod;
let address: string;

type Cond = { type: string; status: string; reason?: string };

/** GET http://<address>/ from the host (outside the mesh): status and the echo pod that answered. */
async function fromHost(path: string): Promise<{ status: number; pod?: string }> {
  const script =
    `fetch('http://${address}${path}', { signal: AbortSignal.timeout(8000) })` +
    `.then(async r => { const t = await r.text(); let pod; try { pod = JSON.parse(t).pod } catch {} ` +
    `console.log(JSON.stringify({ status: r.status, pod })) }, () => console.log(JSON.stringify({ status: 0 })))`;
  const r = await runCommand([process.execPath, '-e', script], { allowFailure: true, timeoutMs: 15_000 });
  try {
    return JSON.parse(r.stdout.trim()) as { status: number; pod?: string };
  } catch {
    return { status: 0 };
  }
}

/** The waypoint's `istio_requests_total` for the echo Service. */
async function waypointEchoRequests(): Promise<number> {
  return waypointRequests(await waypointMetrics(waypoint))
    .filter(s => s.labels.destination_service_name === 'echo')
    .reduce((n, s) => n + s.value, 0);
}

/**
 * An HTTPS GET to the Gateway's port 443 from the host with SNI `servername` (certificate not
 * checked): the status, the answering echo pod and the SAN of the certificate the client met.
 */
async function tlsFromHost(
  servername: string,
  client?: { cert: string; key: string },
): Promise<{ status: number; pod?: string; san?: string }> {
  const tlsClient = client === undefined ? '' : `...${JSON.stringify(client)}, `;
  const script =
    `const r = require('node:https').get({ ${tlsClient}host: '${address}', port: 443, path: '/tls', servername: '${servername}', ` +
    `headers: { host: '${servername}' }, rejectUnauthorized: false, timeout: 8000 }, res => { let t = ''; ` +
    `const san = res.socket.getPeerCertificate().subjectaltname; res.setEncoding('utf8'); res.on('data', c => t += c); ` +
    `res.on('end', () => { let pod; try { pod = JSON.parse(t).pod } catch {} console.log(JSON.stringify({ status: res.statusCode, pod, san })) }) }); ` +
    `r.on('timeout', () => r.destroy(new Error('timeout'))); r.on('error', () => console.log(JSON.stringify({ status: 0 })))`;
  const r = await runCommand([process.execPath, '-e', script], { allowFailure: true, timeoutMs: 15_000 });
  try {
    return JSON.parse(r.stdout.trim()) as { status: number; pod?: string; san?: string };
  } catch {
    return { status: 0 };
  }
}

describe('scenario 13: ingress Gateway to an ambient backend, with and without its waypoint', () => {
  beforeAll(async () => {
    const ca = await createTestCa();
    const secureCert = await issueRawCert(ca, SECURE_ID);
    const gatewayCert = await issueRawCert(ca, `spiffe://cluster.local/ns/${NS}/sa/mtls-site`);
    const client = await issueRawCert(ca, `spiffe://cluster.local/ns/${NS}/sa/partner`);
    clientCert = { cert: client.certChain.join('\n'), key: client.privateKeyPem };
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'ingress', slot: 134 },
      namespace: NS,
      serviceAccounts: ['client', 'echo', 'secure'],
      pods: [
        [
          'echo',
          echoPod('echo', {
            namespace: NS,
            node: 'node-1',
            serviceAccount: 'echo',
            labels: { app: 'echo' },
            containerPorts: [8080],
          }),
        ],
        [
          'secure',
          echoPod('secure', {
            namespace: NS,
            node: 'node-1',
            serviceAccount: 'secure',
            labels: { app: 'secure' },
            containerPorts: [8080, 8443],
            env: {
              TLS_PORT: '8443',
              TLS_CERT: secureCert.certChain.join('\n'),
              TLS_KEY: secureCert.privateKeyPem,
            },
          }),
        ],
        [
          'client',
          echoPod('client', {
            namespace: NS,
            node: 'node-0',
            serviceAccount: 'client',
            env: { PORT: '9090' },
          }),
        ],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    const c = kube().client;
    await c.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'secure', namespace: NS },
      spec: { selector: { app: 'secure' }, ports: [{ name: 'tls', port: 443, targetPort: 8443 }] },
    });
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    await c.create(`/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'mtls-cert', namespace: NS },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': b64(gatewayCert.certChain.join('\n')),
        'tls.key': b64(gatewayCert.privateKeyPem),
        'ca.crt': b64(gatewayCert.roots.pem),
      },
    });
    await c.create(GATEWAY_PATH(NS), {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: GATEWAY, namespace: NS },
      spec: {
        gatewayClassName: 'istio',
        listeners: [
          { name: 'http', port: 80, protocol: 'HTTP' },
          { name: 'tls', port: 443, protocol: 'TLS', tls: { mode: 'Passthrough' } },
          {
            name: 'mtls',
            port: 443,
            protocol: 'HTTPS',
            hostname: MTLS_HOST,
            tls: {
              mode: 'Terminate',
              certificateRefs: [{ name: 'mtls-cert' }],
              options: { 'gateway.istio.io/tls-terminate-mode': 'MUTUAL' },
            },
          },
        ],
      },
    });
    await c.create(TLSROUTE_PATH(NS), {
      apiVersion: 'gateway.networking.k8s.io/v1alpha2',
      kind: 'TLSRoute',
      metadata: { name: 'secure', namespace: NS },
      spec: {
        parentRefs: [{ name: GATEWAY, sectionName: 'tls' }],
        hostnames: [SECURE_HOST],
        rules: [{ backendRefs: [{ name: 'secure', port: 443 }] }],
      },
    });
    await c.create(HTTPROUTE_PATH(NS), {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'echo', namespace: NS },
      spec: { parentRefs: [{ name: GATEWAY }], rules: [{ backendRefs: [{ name: 'echo', port: 80 }] }] },
    });
    address = await waitFor(
      `Gateway ${GATEWAY} Programmed with a LoadBalancer address`,
      async () => {
        const gw = await c.get<{ status?: { conditions?: Cond[]; addresses?: { value: string }[] } }>(
          `${GATEWAY_PATH(NS)}/${GATEWAY}`,
        );
        const programmed = gw.status?.conditions?.some(x => x.type === 'Programmed' && x.status === 'True');
        return programmed === true ? gw.status?.addresses?.[0]?.value : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1_000 },
    );
    log(`gateway ${NS}/${GATEWAY} at ${address}`);
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('reports the route Accepted on the Gateway and the listener with one attached route', async () => {
    const c = kube().client;
    const route = await waitFor(
      'HTTPRoute echo Accepted by the Gateway',
      async () => {
        const r = await c.get<{
          status?: { parents?: { parentRef: { name: string }; conditions: Cond[] }[] };
        }>(`${HTTPROUTE_PATH(NS)}/echo`);
        const p = r.status?.parents?.find(x => x.parentRef.name === GATEWAY);
        return p?.conditions.some(x => x.type === 'Accepted' && x.status === 'True') === true ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(route.conditions.find(x => x.type === 'ResolvedRefs')?.status).toBe('True');
    const gw = await c.get<{ status?: { listeners?: { name: string; attachedRoutes: number }[] } }>(
      `${GATEWAY_PATH(NS)}/${GATEWAY}`,
    );
    expect(gw.status?.listeners?.find(l => l.name === 'http')?.attachedRoutes).toBe(1);
  }, 90_000);

  it('from the host, the LoadBalancer address reaches the backend over HBONE, bypassing its waypoint', async () => {
    const before = await waypointEchoRequests();
    const first = await waitFor(
      `http://${address}/ answered by the backend`,
      async () => {
        const r = await fromHost('/');
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    expect(first.pod).toBe('echo');
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await fromHost(`/direct-${i}`)).status);
    expect(codes).toEqual([200, 200, 200, 200, 200]);
    // The backend's ztunnel took the gateway's requests as HBONE mTLS from the gateway's identity.
    expect(await mtlsConnectionsTo(kube(), 'echo', GATEWAY_ID)).toBeGreaterThan(0);
    expect(await waypointEchoRequests()).toBe(before);
  }, 180_000);

  it('with istio.io/ingress-use-waypoint on the Service, the same requests also cross the waypoint', async () => {
    await kube().client.mergePatch(`/api/v1/namespaces/${NS}/services/echo`, {
      metadata: { labels: { 'istio.io/ingress-use-waypoint': 'true' } },
    });
    const before = await waypointEchoRequests();
    // The gateway's config follows the label: wait until a request is counted by the waypoint.
    await waitFor(
      'a request from the host counted by the waypoint',
      async () => {
        const r = await fromHost('/via-waypoint');
        return r.status === 200 && (await waypointEchoRequests()) > before ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    const start = await waypointEchoRequests();
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await fromHost(`/waypoint-${i}`)).status);
    expect(codes).toEqual([200, 200, 200, 200, 200]);
    await waitFor(
      'the waypoint counts all five',
      async () => ((await waypointEchoRequests()) >= start + 5 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 180_000);

  it('TLS passthrough: by SNI the encrypted stream reaches the backend over HBONE, which terminates it', async () => {
    const c = kube().client;
    const parent = await waitFor(
      'TLSRoute secure Accepted by the Gateway',
      async () => {
        const r = await c.get<{
          status?: { parents?: { parentRef: { name: string }; conditions: Cond[] }[] };
        }>(`${TLSROUTE_PATH(NS)}/secure`);
        const p = r.status?.parents?.find(x => x.parentRef.name === GATEWAY);
        return p?.conditions.some(x => x.type === 'Accepted' && x.status === 'True') === true ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(parent.conditions.find(x => x.type === 'ResolvedRefs')?.status).toBe('True');
    const gw = await c.get<{ status?: { listeners?: { name: string; attachedRoutes: number }[] } }>(
      `${GATEWAY_PATH(NS)}/${GATEWAY}`,
    );
    expect(gw.status?.listeners?.find(l => l.name === 'tls')?.attachedRoutes).toBe(1);
    const first = await waitFor(
      `https://${SECURE_HOST} through ${address}:443 answered by the TLS backend`,
      async () => {
        const r = await tlsFromHost(SECURE_HOST);
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    // The certificate the client met is the backend's own: the gateway did not terminate.
    expect(first).toMatchObject({ pod: 'secure', san: `URI:${SECURE_ID}` });
    // An SNI no TLSRoute names gets no answer.
    expect((await tlsFromHost('other.example.com')).status).toBe(0);
    // The backend's ztunnel took the stream as HBONE mTLS from the gateway's identity.
    expect(await mtlsConnectionsTo(kube(), 'secure', GATEWAY_ID)).toBeGreaterThan(0);
  }, 180_000);

  it('MUTUAL on the same port: the HTTPS listener answers a client of ca.crt, not one without a certificate', async () => {
    const first = await waitFor(
      `https://${MTLS_HOST} through ${address}:443 with a client certificate answered by echo`,
      async () => {
        const r = await tlsFromHost(MTLS_HOST, clientCert);
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    // Terminated by the gateway (its certificate), routed by the HTTPRoute to echo.
    expect(first).toMatchObject({ pod: 'echo', san: `URI:spiffe://cluster.local/ns/${NS}/sa/mtls-site` });
    expect((await tlsFromHost(MTLS_HOST)).status).toBe(0);
    expect((await tlsFromHost(MTLS_HOST, clientCert)).status).toBe(200);
  }, 180_000);
});
