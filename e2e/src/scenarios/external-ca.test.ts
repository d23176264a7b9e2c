// Cluster tier: an external CA server in place of istiod's CA, on a 2-node local cluster of its own
// (name `extca`, slot 66).
//
// Our istiod runs with ENABLE_CA_SERVER=false (xDS only). Both ztunnels get their workload
// certificates from CA_ADDRESS, which points at an implementation of Istio's CA gRPC API that is
// not ours: upstream istiod (the oracle build of tools/install-deps.d/istio-upstream.sh), run out
// of cluster on the fabric address, signing with its own plug-in intermediate. Both istiods'
// intermediates chain to one root, the one ztunnel and the workloads trust.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { ManagedProcess } from '../managed-process.ts';
import { installMesh, MESH_NAMESPACE } from '../mesh/install.ts';
import {
  mtlsConnections,
  parsePrometheus,
  ztunnelConfigDump,
  ztunnelMetrics,
  ztunnelPods,
} from '../mesh/observe.ts';
import { COMPATIBILITY_1_27_ENV, freeLoopbackPort } from '../upstream/istiod.ts';
import { ensureUpstreamIstio } from '../upstream/install.ts';
import { cacertsFiles, cacertsSecretData, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { isPodReady } from './cni-observe.ts';

const NS = 'extca-apps';
const CA_PORT = 15012;
const started = Date.now();
let cluster: Cluster | undefined;
let upstream: ManagedProcess | undefined;
let upstreamMonitoring = 0;
let dir = '';
let material: CaMaterial;

interface PodInfo {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}
const pods = new Map<string, PodInfo>();

interface CertDump {
  readonly identity: string;
  readonly state: string;
  readonly certChain: readonly { pem: string }[];
}

function log(line: string): void {
  console.log(`[external-ca] ${line}`);
}

function kube(): Cluster {
  if (cluster === undefined) throw new Error('the cluster did not start (see beforeAll)');
  return cluster;
}

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

async function rollout(
  path: string,
  want: (st: Record<string, number | undefined>) => boolean,
): Promise<void> {
  const c = kube();
  await waitFor(
    `the rollout of ${path}`,
    async () => {
      const obj = await c.client.get<{
        metadata?: { generation?: number };
        status?: Record<string, number | undefined>;
      }>(path);
      const st = obj.status ?? {};
      return st.observedGeneration === obj.metadata?.generation && want(st) ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

function podSpec(name: string, node: string, env: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      nodeName: node,
      serviceAccountName: name,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'ambient-mesh/echo:0.1.0',
          env: Object.entries(env).map(([k, v]) => ({ name: k, value: v })),
        },
      ],
    },
  };
}

async function enrolled(name: string): Promise<PodInfo> {
  const c = kube();
  return waitFor(
    `pod ${name} enrolled and Ready`,
    async () => {
      const p = await c.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${name}`);
      if (!isPodReady(p) || p.metadata?.annotations?.['ambient.istio.io/redirection'] !== 'enabled') {
        return undefined;
      }
      return {
        name,
        ip: p.status?.podIP ?? '',
        netns: podNetnsName(c.layout, p.metadata.uid ?? ''),
        node: p.spec?.nodeName ?? '',
      };
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

async function heldCert(node: string, sa: string): Promise<CertDump | undefined> {
  const c = kube();
  const z = (await ztunnelPods(c.client, c.layout)).find(x => x.node === node);
  if (z === undefined) return undefined;
  const certs = ((await ztunnelConfigDump(z))?.certificates ?? []) as CertDump[];
  return certs.find(x => x.identity.endsWith(`/ns/${NS}/sa/${sa}`) && x.state === 'Available');
}

async function curl(from: PodInfo, url: string): Promise<number> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      from.netns,
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '5',
    ].concat(['-H', 'Connection: close', url]),
    { allowFailure: true },
  );
  return Number(r.stdout.trim() || '0');
}

describe('an external CA server (CA_ADDRESS) in place of istiod CA, on a 2-node local cluster', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'external-ca-'));
    material = await makeCaMaterial(dir, 2);
    const istio = await ensureUpstreamIstio(l => {
      log(l);
    });
    cluster = await startCluster({
      name: 'extca',
      slot: 66,
      nodes: 2,
      progress: l => {
        log(`cluster: ${l}`);
      },
    });
    const c = cluster;
    // Our istiod signs only its own serving certificate, with intermediate 0 under the shared root.
    await c.client.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MESH_NAMESPACE } },
      { fieldManager: 'external-ca-test' },
    );
    await c.client.create(`/api/v1/namespaces/${MESH_NAMESPACE}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cacerts', namespace: MESH_NAMESPACE },
      data: cacertsSecretData(material, 0),
    });
    const status = await installMesh(c, {
      progress: l => {
        log(`mesh: ${l}`);
      },
    });
    expect(
      status.components.every(x => x.ready),
      JSON.stringify(status),
    ).toBe(true);

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
    const dsPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets/ztunnel`;
    await c.client.strategicPatch(dsPath, {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'istio-proxy',
                env: [
                  { name: 'CA_ADDRESS', value: `https://${caHost}:${String(CA_PORT)}` },
                  { name: 'ALT_CA_HOSTNAME', value: `istiod.${MESH_NAMESPACE}.svc` },
                ],
              },
            ],
          },
        },
      },
    });
    await rollout(
      dsPath,
      st => st.updatedNumberScheduled === c.nodes.length && st.numberReady === c.nodes.length,
    );
    await c.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    for (const sa of ['echo', 'client']) {
      await c.client.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: NS },
      });
    }
    await c.client.create(`/api/v1/namespaces/${NS}/pods`, podSpec('echo', 'node-1', {}));
    await c.client.create(`/api/v1/namespaces/${NS}/pods`, podSpec('client', 'node-0', { PORT: '9090' }));
    for (const name of ['echo', 'client']) pods.set(name, await enrolled(name));
    log(`setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(async () => {
    await upstream?.stop();
    await cluster?.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    log(`wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('both ztunnels get their certificates from the external CA, and the L4 scenario passes', async () => {
    const client = pods.get('client')!;
    const echo = pods.get('echo')!;
    const external = new X509Certificate(material.intermediates[1]!.certPem);
    const ours = new X509Certificate(material.intermediates[0]!.certPem);
    for (const [node, sa] of [
      [client.node, 'client'],
      [echo.node, 'echo'],
    ] as const) {
      const cert = await waitFor(`the ${sa} certificate on ${node}`, () => heldCert(node, sa), {
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      const leaf = new X509Certificate(cert.certChain[0]!.pem);
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
    for (let i = 0; i < 3; i++) expect(await curl(client, `http://${echo.ip}:8080/`)).toBe(200);
    await waitFor(
      'the destination ztunnel to count the mTLS connections',
      async () => {
        let n = 0;
        for (const z of await ztunnelPods(kube().client, kube().layout)) {
          for (const s of mtlsConnections(await ztunnelMetrics(z))) {
            if (
              s.labels.reporter === 'destination' &&
              s.labels.destination_workload === 'echo' &&
              s.labels.source_principal === `spiffe://cluster.local/ns/${NS}/sa/client`
            ) {
              n += s.value;
            }
          }
        }
        return n >= 3 ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 180_000);
});
