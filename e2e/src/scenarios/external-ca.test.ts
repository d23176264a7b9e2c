// Cluster tier: an external CA server in place of istiod's CA, on a 2-node local cluster of its own
// (name `extrot`, slot 116).
//
// Our istiod runs with ENABLE_CA_SERVER=false (xDS only). Both ztunnels get their workload
// certificates from CA_ADDRESS, which points at an implementation of Istio's CA gRPC API that is
// not ours: upstream istiod (the oracle build of tools/install-deps.d/istio-upstream.sh), run out
// of cluster on the fabric address, signing with its own plug-in intermediate. Both istiods'
// intermediates chain to one root, the one ztunnel and the workloads trust.
//
// Workload certificates are short-lived (ztunnel's SECRET_TTL), so each identity is renewed at
// half-life through the external CA several times while a client sends steady traffic. Last, a
// waypoint that istiod deploys with the external CA as its CA_ADDR (istiod's WAYPOINT_CA_ADDR)
// carries L7 traffic between the two.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { ManagedProcess } from '../managed-process.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { parsePrometheus } from '../mesh/observe.ts';
import {
  GATEWAY_PATH,
  denyAdminPost,
  readyWaypoint,
  requestBatch,
  waypointGateway,
  waypointMetrics,
  waypointRequests,
} from '../mesh/waypoint.ts';
import {
  createEchoService,
  httpCode,
  mtlsConnectionsTo,
  setZtunnelEnv,
  waitRollout,
  type MeshPod,
} from '../mesh/workloads.ts';
import { COMPATIBILITY_1_27_ENV, freeLoopbackPort } from '../upstream/istiod.ts';
import { ensureUpstreamIstio } from '../upstream/install.ts';
import { cacertsFiles, cacertsSecretData, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { CaScenario, clientAndEcho, installMeshReady, plugCacerts, ztunnelWarnings } from './ca-fixture.ts';
import { startRequestLoop, type LoopSummary } from './netns-python.ts';

const NS = 'extca-apps';
const scenario = new CaScenario('external-ca', NS);
const { log, kube, mtlsToEcho, leaves, heldCert } = scenario;
const CA_PORT = 15012;
const ECHO_TCP_PORT = 9000;
// Upstream's CA backdates NotBefore by 2 min, so a 180 s TTL is a 300 s lifetime: ztunnel renews
// each certificate at half-life, 30 s after it was issued.
const CERT_TTL_S = 180;

/** A leaf as one poll first saw it in ztunnel's config dump. */
interface HeldLeaf {
  readonly leaf: X509Certificate;
  readonly seenAt: number;
}

/** The middle of a certificate's validity, where ztunnel renews it (ms since the epoch). */
function halfLife(leaf: X509Certificate): number {
  const from = new Date(leaf.validFrom).getTime();
  return from + (new Date(leaf.validTo).getTime() - from) / 2;
}

let upstream: ManagedProcess | undefined;
let upstreamMonitoring = 0;
let upstreamLog = '';
// The external CA as a Service in the cluster (no selector, one endpoint: the fabric address), as
// istio-csr is one; the waypoint's CA_ADDR names it, and upstream's serving certificate carries it.
const CA_SERVICE = 'external-ca';
const CA_SERVICE_HOST = `${CA_SERVICE}.${MESH_NAMESPACE}.svc`;
let material: CaMaterial;

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 3_000 }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const pods = new Map<string, MeshPod>();
const rollout = (path: string, want: (st: Record<string, number | undefined>) => boolean): Promise<void> =>
  waitRollout(kube(), path, want);

describe('an external CA server (CA_ADDRESS) in place of istiod CA, on a 2-node local cluster', () => {
  beforeAll(async () => {
    const dir = scenario.dir();
    material = await makeCaMaterial(dir, 2);
    const istio = await ensureUpstreamIstio(l => {
      log(l);
    });
    const c = await scenario.start('extrot', 116);
    // Our istiod signs only its own serving certificate, with intermediate 0 under the shared root.
    await plugCacerts(c, cacertsSecretData(material, 0), 'external-ca-test');
    await installMeshReady(c, log);

    // The external CA: upstream istiod with its own plug-in intermediate (1), its CA port on the
    // fabric address the nodes reach, everything else on loopback.
    const workDir = join(dir, 'upstream');
    mkdirSync(join(workDir, 'etc', 'cacerts'), { recursive: true });
    for (const [name, pem] of Object.entries(cacertsFiles(material, 1))) {
      writeFileSync(join(workDir, 'etc', 'cacerts', name), pem);
    }
    upstreamMonitoring = await freeLoopbackPort();
    const http = await freeLoopbackPort();
    const caHost = c.layout.apiserverAddress;
    upstreamLog = join(workDir, 'istiod.log');
    upstream = new ManagedProcess({
      name: 'upstream-istiod-ca',
      logFile: upstreamLog,
      cwd: workDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KUBECONFIG: c.kubeconfig,
        POD_NAMESPACE: MESH_NAMESPACE,
        POD_NAME: 'istiod-external-ca',
        SERVICE_ACCOUNT: 'istiod',
        REVISION: 'external-ca',
        CLUSTER_ID: 'Kubernetes',
        PILOT_ENABLE_AMBIENT: 'true',
        CA_TRUSTED_NODE_ACCOUNTS: `${MESH_NAMESPACE}/ztunnel`,
        PILOT_ENABLE_ANALYSIS: 'false',
        ISTIOD_CUSTOM_HOST: CA_SERVICE_HOST,
        ...(istio.version.startsWith('1.27') ? {} : COMPATIBILITY_1_27_ENV),
      },
      argv: [
        istio.pilotDiscovery,
        'discovery',
        '--kubeconfig',
        c.kubeconfig,
        '--domain',
        'cluster.local',
        '--httpAddr',
        `127.0.0.1:${String(http)}`,
        '--grpcAddr',
        `127.0.0.1:${String(await freeLoopbackPort())}`,
        '--secureGRPCAddr',
        `${caHost}:${String(CA_PORT)}`,
        '--httpsAddr',
        `127.0.0.1:${String(await freeLoopbackPort())}`,
        '--monitoringAddr',
        `127.0.0.1:${String(upstreamMonitoring)}`,
        // Each signed certificate is logged with its identity.
        '--log_output_level',
        'serverca:debug',
      ],
    });
    await waitFor(
      'upstream istiod (the external CA) /ready',
      async () => {
        if (upstream?.running !== true)
          throw new Error(`upstream istiod exited; see ${join(workDir, 'istiod.log')}`);
        return (await httpGet(`http://127.0.0.1:${String(http)}/ready`).catch(() => ({ status: 0 })))
          .status === 200
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, fatal: err => String(err).includes('exited') },
    );
    log(`upstream istiod ${istio.version} serves the CA on ${caHost}:${String(CA_PORT)}`);

    await c.client.create(`/api/v1/namespaces/${MESH_NAMESPACE}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: CA_SERVICE, namespace: MESH_NAMESPACE },
      spec: { ports: [{ name: 'grpc', port: CA_PORT, targetPort: CA_PORT, protocol: 'TCP' }] },
    });
    await c.client.create(`/apis/discovery.k8s.io/v1/namespaces/${MESH_NAMESPACE}/endpointslices`, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${CA_SERVICE}-fabric`,
        namespace: MESH_NAMESPACE,
        labels: { 'kubernetes.io/service-name': CA_SERVICE },
      },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: CA_PORT, protocol: 'TCP' }],
      endpoints: [{ addresses: [caHost] }],
    });

    // Our istiod without its CA server, deploying waypoints whose CA_ADDR is the external CA;
    // ztunnel's CA client on the external CA.
    const istiodPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/deployments/istiod`;
    await c.client.strategicPatch(istiodPath, {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'discovery',
                env: [
                  { name: 'ENABLE_CA_SERVER', value: 'false' },
                  { name: 'WAYPOINT_CA_ADDR', value: `${CA_SERVICE_HOST}:${String(CA_PORT)}` },
                ],
              },
            ],
          },
        },
      },
    });
    await rollout(istiodPath, st => st.updatedReplicas === 1 && st.readyReplicas === 1 && st.replicas === 1);
    await setZtunnelEnv(c, {
      CA_ADDRESS: `https://${caHost}:${String(CA_PORT)}`,
      ALT_CA_HOSTNAME: `istiod.${MESH_NAMESPACE}.svc`,
      SECRET_TTL: `${String(CERT_TTL_S)}s`,
    });
    const { client, echo } = await clientAndEcho(c, NS, {
      timeoutMs: 120_000,
      echoEnv: { TCP_PORT: String(ECHO_TCP_PORT) },
    });
    pods.set('echo', echo).set('client', client);
    scenario.logSetupTime();
  }, 900_000);

  afterAll(async () => {
    await upstream?.stop();
    await scenario.stop();
  }, 180_000);

  it('both ztunnels get their certificates from the external CA, and the L4 scenario passes', async () => {
    const client = pods.get('client')!;
    const echo = pods.get('echo')!;
    const external = new X509Certificate(material.intermediates[1]!.certPem);
    const ours = new X509Certificate(material.intermediates[0]!.certPem);
    for (const { sa, leaf } of await leaves({ client, echo })) {
      // Issued by upstream istiod's intermediate, not by the one our istiod holds.
      expect(leaf.verify(external.publicKey), `${sa} issued by the external CA`).toBe(true);
      expect(leaf.verify(ours.publicKey)).toBe(false);
      expect(leaf.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/${NS}/sa/${sa}`);
    }
    // The external CA's own metrics count the certificates it issued.
    const metrics = parsePrometheus(
      (await httpGet(`http://127.0.0.1:${String(upstreamMonitoring)}/metrics`)).body,
    );
    const issued = metrics.find(s => s.name === 'citadel_server_success_cert_issuance_count')?.value ?? 0;
    expect(issued).toBeGreaterThanOrEqual(2);

    // L4: pod-IP traffic across nodes over mTLS with the externally issued identities.
    for (let i = 0; i < 3; i++) expect(await httpCode(client, `http://${echo.ip}:8080/`)).toBe(200);
    await waitFor(
      'the destination ztunnel to count the mTLS connections',
      async () => ((await mtlsToEcho()) >= 3 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 180_000);

  it(
    'renews both certificates at half-life through the external CA under steady traffic, with no request lost',
    async () => {
      const client = pods.get('client')!;
      const echo = pods.get('echo')!;
      const external = new X509Certificate(material.intermediates[1]!.certPem);
      // Each identity's leaves in the order its ztunnel held them, with when each was first seen.
      const history = { client: [] as HeldLeaf[], echo: [] as HeldLeaf[] };
      const poll = async (): Promise<void> => {
        for (const [sa, node] of [
          ['client', client.node],
          ['echo', echo.node],
        ] as const) {
          const cert = await heldCert(node, sa);
          const pem = cert?.certChain[0]?.pem;
          if (pem === undefined) continue;
          const leaf = new X509Certificate(pem);
          const list = history[sa];
          if (list.at(-1)?.leaf.serialNumber === leaf.serialNumber) continue;
          expect(
            leaf.verify(external.publicKey),
            `${sa} leaf ${leaf.serialNumber} issued by the external CA`,
          ).toBe(true);
          list.push({ leaf, seenAt: Date.now() });
        }
      };
      await poll();
      const loop = await startRequestLoop(
        client.netns,
        { host: echo.ip, port: 8080, echoPort: ECHO_TCP_PORT },
        50,
      );
      let summary: LoopSummary | undefined;
      try {
        await waitFor(
          'two renewals of each identity under load',
          async () => {
            await poll();
            return history.client.length >= 3 && history.echo.length >= 3 ? true : undefined;
          },
          { timeoutMs: (CERT_TTL_S + 120) * 1000, intervalMs: 1000 },
        );
        const atRenewal = await mtlsToEcho();
        await waitFor(
          'twenty mTLS connections after the renewals',
          async () => ((await mtlsToEcho()) >= atRenewal + 20 ? true : undefined),
          { timeoutMs: 60_000, intervalMs: 500 },
        );
      } finally {
        summary = await loop.stop();
      }
      const renewals = (sa: 'client' | 'echo'): string =>
        history[sa]
          .slice(1)
          .map((x, i) => `${String(Math.round((x.seenAt - halfLife(history[sa][i]!.leaf)) / 1000))} s`)
          .join(', ');
      log(
        `rotation through the external CA under load: ${String(summary.ok)}/${String(summary.ok + summary.failed)} requests, long-lived ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}; renewals seen after half-life: client ${renewals('client')}, echo ${renewals('echo')}; ${summary.errors.join('; ')}`,
      );
      log(`logs: ${(await ztunnelWarnings(kube(), 10)).join('; ')}`);
      // Renewed at half-life: not before it (a poll may see it up to a few seconds late), and
      // long before the previous certificate expired.
      for (const list of [history.client, history.echo]) {
        for (let i = 1; i < list.length; i++) {
          const previous = list[i - 1]!.leaf;
          expect(list[i]!.seenAt).toBeGreaterThanOrEqual(halfLife(previous) - 2_000);
          expect(list[i]!.seenAt).toBeLessThan(new Date(previous.validTo).getTime());
        }
      }
      expect(summary.ok).toBeGreaterThan(20);
      expect(summary.failed).toBe(0);
      expect(summary.longFailed).toBe(0);
    },
    (CERT_TTL_S + 300) * 1000,
  );

  it('a waypoint gets its certificate from the external CA, and L7 traffic through it works', async () => {
    const c = kube();
    const client = pods.get('client')!;
    const url = `http://echo.${NS}.svc.cluster.local`;
    await createEchoService(c, NS);
    await c.client.mergePatch(`/api/v1/namespaces/${NS}/services/echo`, {
      metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } },
    });
    await c.client.create(GATEWAY_PATH(NS), waypointGateway(NS));
    const waypoint = await readyWaypoint(c.client, c.layout, NS);
    log(`waypoint pod ${waypoint.name} on ${waypoint.node} at ${waypoint.ip}`);
    // istiod deployed it with the external CA as CA_ADDR (xDS stays with istiod) ...
    const deployment = await c.client.get<{
      spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } };
    }>(`/apis/apps/v1/namespaces/${NS}/deployments/waypoint`);
    const env = deployment.spec?.template?.spec?.containers?.[0]?.env ?? [];
    expect(env.find(e => e.name === 'CA_ADDR')?.value).toBe(`${CA_SERVICE_HOST}:${String(CA_PORT)}`);
    // ... and the external CA signed the waypoint's identity (our istiod has no CA server to ask).
    const waypointId = `spiffe://cluster.local/ns/${NS}/sa/waypoint`;
    await waitFor(
      "the waypoint's identity in the external CA's log",
      () =>
        Promise.resolve(
          readFileSync(upstreamLog, 'utf8').includes(`CSR successfully signed, sans [${waypointId}]`)
            ? true
            : undefined,
        ),
      { timeoutMs: 10_000, intervalMs: 250 },
    );

    // L7: client ztunnel -> waypoint -> echo ztunnel, each hop mTLS with externally issued certificates.
    await waitFor(
      'requests to echo counted by the waypoint',
      async () => {
        await httpCode(client, `${url}/`);
        return waypointRequests(await waypointMetrics(waypoint)).some(
          s => s.labels.destination_service_name === 'echo' && s.labels.response_code === '200',
        )
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    await denyAdminPost(c.client, NS, client, url);
    expect((await requestBatch(client, `${url}/`, 20)).codes.get(200)).toBe(20);
    expect((await requestBatch(client, `${url}/admin`, 10, { method: 'POST' })).codes.get(403)).toBe(10);
    // The echo side saw the waypoint's identity.
    await waitFor(
      'mTLS connections from the waypoint counted by the echo ztunnel',
      async () => ((await mtlsConnectionsTo(c, 'echo', waypointId)) > 0 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 300_000);
});
