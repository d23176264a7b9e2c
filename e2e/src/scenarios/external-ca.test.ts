// Cluster tier: an external CA server in place of istiod's CA, on a 2-node local cluster of its own
// (name `extca`, slot 66).
//
// Our istiod runs with ENABLE_CA_SERVER=false (xDS only). Both ztunnels get their workload
// certificates from CA_ADDRESS, which points at an implementation of Istio's CA gRPC API that is
// not ours: upstream istiod (the oracle build of tools/install-deps.d/istio-upstream.sh), run out
// of cluster on the fabric address, signing with its own plug-in intermediate. Both istiods'
// intermediates chain to one root, the one ztunnel and the workloads trust.
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { ManagedProcess } from '../managed-process.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { parsePrometheus } from '../mesh/observe.ts';
import { httpCode, setZtunnelEnv, waitRollout, type MeshPod } from '../mesh/workloads.ts';
import { COMPATIBILITY_1_27_ENV, freeLoopbackPort } from '../upstream/istiod.ts';
import { ensureUpstreamIstio } from '../upstream/install.ts';
import { cacertsFiles, cacertsSecretData, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { CaScenario, clientAndEcho, installMeshReady, plugCacerts } from './ca-fixture.ts';

const NS = 'extca-apps';
const scenario = new CaScenario('external-ca', NS);
const { log, kube, mtlsToEcho, leaves } = scenario;
const CA_PORT = 15012;
let upstream: ManagedProcess | undefined;
let upstreamMonitoring = 0;
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
    const c = await scenario.start('extca', 66);
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
    upstream = new ManagedProcess({
      name: 'upstream-istiod-ca',
      logFile: join(workDir, 'istiod.log'),
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

    // Our istiod without its CA server; ztunnel's CA client on the external CA.
    const istiodPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/deployments/istiod`;
    await c.client.strategicPatch(istiodPath, {
      spec: {
        template: {
          spec: { containers: [{ name: 'discovery', env: [{ name: 'ENABLE_CA_SERVER', value: 'false' }] }] },
        },
      },
    });
    await rollout(istiodPath, st => st.updatedReplicas === 1 && st.readyReplicas === 1 && st.replicas === 1);
    await setZtunnelEnv(c, {
      CA_ADDRESS: `https://${caHost}:${String(CA_PORT)}`,
      ALT_CA_HOSTNAME: `istiod.${MESH_NAMESPACE}.svc`,
    });
    const { client, echo } = await clientAndEcho(c, NS, { timeoutMs: 120_000 });
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
});
