// Cluster tier: migrating a running mesh from istiod's self-signed root to an external root
// without a flag day, on a 2-node local cluster of its own (name `camig`, slot 65; run after
// plugin-ca, which uses the same slot).
//
// The mesh starts on istiod's self-signed root. With short-lived workload certificates and traffic
// running, Secret `cacerts` appears with an intermediate under a new root and `root-cert.pem` =
// new root + the old self-signed root. istiod takes it without a restart; every bundle then holds
// both roots, so while the two workloads renew onto the new root one after the other, each keeps
// accepting the other. No connection fails.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import type { MeshPod } from '../mesh/workloads.ts';
import { CaScenario, type CertDump } from './ca-fixture.ts';
import { cacertsFiles, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { startRequestLoop, type LoopSummary } from './netns-python.ts';

const NS = 'camig-apps';
const scenario = new CaScenario('ca-migration', NS);
const { log, kube, heldCert, opensslVerify, mtlsToEcho, leaves } = scenario;
const ECHO_TCP_PORT = 9000;
// Renewal at half-life (60 s): the swap scenario sees each identity renewed on the new intermediate.
const CERT_TTL_S = 120;
const pods = new Map<string, MeshPod>();

let material: CaMaterial;

describe('migration from the self-signed root to an external root on a 2-node local cluster', () => {
  beforeAll(async () => {
    const dir = scenario.dir();
    material = await makeCaMaterial(dir, 1);
    const c = await scenario.start('camig', 65);
    const { client, echo } = await scenario.meshAndApps(c, {
      certTtlS: CERT_TTL_S,
      echoEnv: { TCP_PORT: String(ECHO_TCP_PORT) },
    });
    pods.set('echo', echo).set('client', client);
  }, 600_000);

  afterAll(async () => {
    await scenario.stop();
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
    for (const { sa, leaf } of await leaves({ client, echo })) {
      expect(leaf.verify(oldRoot.publicKey), sa).toBe(true);
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
