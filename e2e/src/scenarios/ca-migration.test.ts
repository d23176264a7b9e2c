// Cluster tier: migrating a running mesh from istiod's self-signed root to an external root
// without a flag day, on a 2-node local cluster of its own (name `camig`, slot 65; run after
// plugin-ca, which uses the same slot).
//
// The mesh starts on istiod's self-signed root. With short-lived workload certificates and traffic
// running, Secret `cacerts` appears with an intermediate under a new root and `root-cert.pem` =
// new root + the old self-signed root. istiod takes it without a restart; every bundle then holds
// both roots, so while the two workloads renew onto the new root one after the other, each keeps
// accepting the other. No connection fails.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { installMesh, MESH_NAMESPACE } from '../mesh/install.ts';
import { mtlsConnections, ztunnelConfigDump, ztunnelMetrics, ztunnelPods } from '../mesh/observe.ts';
import { isPodReady } from './cni-observe.ts';
import { cacertsFiles, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { startRequestLoop, type LoopSummary } from './netns-python.ts';

const NS = 'camig-apps';
const ECHO_TCP_PORT = 9000;
// Renewal at half-life (60 s): the swap scenario sees each identity renewed on the new intermediate.
const CERT_TTL_S = 120;
const started = Date.now();
let cluster: Cluster | undefined;
let dir = '';

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
  readonly certChain: readonly { pem: string; serialNumber: string }[];
  readonly rootCerts: readonly { pem: string }[];
}

let material: CaMaterial;

function log(line: string): void {
  console.log(`[ca-migration] ${line}`);
}

function kube(): Cluster {
  if (cluster === undefined) throw new Error('the cluster did not start (see beforeAll)');
  return cluster;
}

function podSpec(name: string, node: string, sa: string, env: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      nodeName: node,
      serviceAccountName: sa,
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
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/** The Available certificate of `sa` held by the ztunnel of `node`. */
async function heldCert(node: string, sa: string): Promise<CertDump | undefined> {
  const c = kube();
  const z = (await ztunnelPods(c.client, c.layout)).find(x => x.node === node);
  if (z === undefined) return undefined;
  const certs = ((await ztunnelConfigDump(z))?.certificates ?? []) as CertDump[];
  return certs.find(x => x.identity.endsWith(`/ns/${NS}/sa/${sa}`) && x.state === 'Available');
}

/** `openssl verify` of the dumped leaf against the plugged root, with the dumped intermediates. */
async function opensslVerify(cert: CertDump): Promise<string> {
  const leaf = join(dir, 'leaf.pem');
  const untrusted = join(dir, 'untrusted.pem');
  writeFileSync(leaf, cert.certChain[0]?.pem ?? '');
  writeFileSync(
    untrusted,
    cert.certChain
      .slice(1)
      .map(x => x.pem)
      .join(''),
  );
  const r = await runCommand(
    [
      'openssl',
      'verify',
      '-CAfile',
      join(dir, 'root-cert.pem'),
      '-untrusted',
      untrusted,
      '-purpose',
      'any',
      leaf,
    ],
    { allowFailure: true },
  );
  return (r.stdout + r.stderr).trim();
}

/** mTLS connections from the client to echo, as the destination ztunnels count them. */
async function mtlsToEcho(): Promise<number> {
  const c = kube();
  let n = 0;
  for (const z of await ztunnelPods(c.client, c.layout)) {
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
  return n;
}

describe('migration from the self-signed root to an external root on a 2-node local cluster', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ca-migration-'));
    material = await makeCaMaterial(dir, 1);
    cluster = await startCluster({
      name: 'camig',
      slot: 65,
      nodes: 2,
      progress: l => {
        log(`cluster: ${l}`);
      },
    });
    const c = cluster;
    const status = await installMesh(c, {
      progress: l => {
        log(`mesh: ${l}`);
      },
    });
    expect(
      status.components.every(x => x.ready),
      JSON.stringify(status),
    ).toBe(true);
    const dsPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets/ztunnel`;
    await c.client.strategicPatch(dsPath, {
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'istio-proxy', env: [{ name: 'SECRET_TTL', value: `${String(CERT_TTL_S)}s` }] },
            ],
          },
        },
      },
    });
    await waitFor(
      'the ztunnel rollout with SECRET_TTL',
      async () => {
        const ds = await c.client.get<{
          metadata?: { generation?: number };
          status?: { observedGeneration?: number; updatedNumberScheduled?: number; numberReady?: number };
        }>(dsPath);
        const st = ds.status;
        return st?.observedGeneration === ds.metadata?.generation &&
          st?.updatedNumberScheduled === c.nodes.length &&
          st.numberReady === c.nodes.length
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
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
    await c.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      podSpec('echo', 'node-1', 'echo', { TCP_PORT: String(ECHO_TCP_PORT) }),
    );
    await c.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      podSpec('client', 'node-0', 'client', { PORT: '9090' }),
    );
    for (const name of ['echo', 'client']) pods.set(name, await enrolled(name));
    log(`setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    log(`wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('moves to a new root with both roots trusted meanwhile, under load, with no failed connection', async () => {
    const c = kube();
    const client = pods.get('client')!;
    const echo = pods.get('echo')!;
    const selfSigned = await c.client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${MESH_NAMESPACE}/secrets/istio-ca-secret`,
    );
    const oldRootPem = Buffer.from(selfSigned.data?.['ca-cert.pem'] ?? '', 'base64').toString('utf8');
    const oldRoot = new X509Certificate(oldRootPem);
    const newRoot = new X509Certificate(material.rootPem);
    // Before: both workloads on the self-signed root.
    for (const [node, sa] of [
      [client.node, 'client'],
      [echo.node, 'echo'],
    ] as const) {
      const cert = await waitFor(`the ${sa} certificate`, () => heldCert(node, sa), {
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      expect(new X509Certificate(cert.certChain[0]!.pem).verify(oldRoot.publicKey)).toBe(true);
    }
    const loop = await startRequestLoop(
      client.netns,
      { host: echo.ip, port: 8080, echoPort: ECHO_TCP_PORT },
      50,
    );
    let summary: LoopSummary | undefined;
    try {
      const files = cacertsFiles(material, 0);
      await c.client.create(`/api/v1/namespaces/${MESH_NAMESPACE}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'cacerts', namespace: MESH_NAMESPACE },
        data: Object.fromEntries(
          Object.entries({ ...files, 'root-cert.pem': material.rootPem + oldRootPem }).map(([k, v]) => [
            k,
            Buffer.from(v).toString('base64'),
          ]),
        ),
      });
      // Every namespace's bundle gets both roots.
      await waitFor(
        'istio-ca-root-cert with both roots',
        async () => {
          const cm = await c.client.find<{ data?: Record<string, string> }>(
            `/api/v1/namespaces/${NS}/configmaps/istio-ca-root-cert`,
          );
          const pem = cm?.data?.['root-cert.pem'] ?? '';
          const roots = pem.split('-----END CERTIFICATE-----').filter(x => x.includes('BEGIN')).length;
          return roots === 2 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      // The renewals (half-life: 60 s) move both workloads to the new root, one after the other.
      const moved = await waitFor(
        'both identities renewed under the new root',
        async () => {
          const e = await heldCert(echo.node, 'echo');
          const cl = await heldCert(client.node, 'client');
          if (e === undefined || cl === undefined) return undefined;
          const onNew = (x: CertDump): boolean =>
            new X509Certificate(x.certChain[0]!.pem).verify(
              new X509Certificate(material.intermediates[0]!.certPem).publicKey,
            );
          return onNew(e) && onNew(cl) ? { echo: e, client: cl } : undefined;
        },
        { timeoutMs: (CERT_TTL_S + 30) * 1000, intervalMs: 1000 },
      );
      // Each holds both roots while the migration lasts.
      for (const x of [moved.echo, moved.client]) {
        expect(x.rootCerts.map(r => new X509Certificate(r.pem).fingerprint256).sort()).toEqual(
          [newRoot.fingerprint256, oldRoot.fingerprint256].sort(),
        );
        expect(await opensslVerify(x)).toMatch(/: OK$/);
      }
      const atMove = await mtlsToEcho();
      await waitFor(
        'twenty mTLS connections on the new root',
        async () => ((await mtlsToEcho()) >= atMove + 20 ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(
      `self-signed -> external root under load: ${String(summary.ok)}/${String(summary.ok + summary.failed)} requests, long-lived ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}; ${summary.errors.join('; ')}`,
    );
    expect(summary.ok).toBeGreaterThan(20);
    expect(summary.failed).toBe(0);
    expect(summary.longFailed).toBe(0);
  }, 300_000);
});
