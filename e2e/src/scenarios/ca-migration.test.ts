// Cluster tier: migrating a running mesh from istiod's self-signed root to an external root
// without a flag day, on a 2-node local cluster of its own (name `camig`, slot 108).
//
// The mesh starts on istiod's self-signed root. With short-lived workload certificates and traffic
// running, Secret `cacerts` appears with an intermediate under a new root and `root-cert.pem` =
// new root + the old self-signed root. istiod takes it without a restart, in two stages: first it
// distributes the new root (the self-signed root keeps signing, every answer and every
// `istio-ca-root-cert` carry both roots), and only once every workload has renewed with both
// roots does the new intermediate sign. So no workload ever presents a certificate from the new
// root to a peer that does not trust it yet, and no connection fails.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { CaScenario, ztunnelWarnings, type CertDump } from './ca-fixture.ts';
import { cacertsFiles, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { jsonLines, podLog } from './cni-observe.ts';
import { startRequestLoop, type LoopSummary } from './netns-python.ts';

const NS = 'camig-apps';
const scenario = new CaScenario('ca-migration', NS);
const { log, kube, pod, heldCert, opensslVerify, mtlsToEcho, leaves } = scenario;
const ECHO_TCP_PORT = 9000;
// Short-lived certificates: with NotBefore backdated 120 s, ztunnel renews them about every second,
// so both identities renew many times while the migration runs.
const CERT_TTL_S = 120;

let material: CaMaterial;

/**
 * What the logs say about the migration: istiod's staging and switch lines, and each ztunnel's
 * warnings and errors (the first few), so a lost request shows its cause.
 */
async function migrationLogs(): Promise<string> {
  const c = kube();
  const istiods = await c.client.get<{ items: { metadata?: { name?: string } }[] }>(
    `/api/v1/namespaces/${MESH_NAMESPACE}/pods?labelSelector=app%3Distiod`,
  );
  const out: string[] = [];
  for (const istiod of istiods.items) {
    for (const line of jsonLines(await podLog(c.client, MESH_NAMESPACE, istiod.metadata?.name ?? ''))) {
      const msg = typeof line.msg === 'string' ? line.msg : '';
      if (msg.includes('distributing them first') || msg.includes('new roots have reached'))
        out.push(
          `istiod: ${msg.split(':')[0]!} ${JSON.stringify({ switchAt: line.switchAt, roots: line.roots })}`,
        );
    }
  }
  out.push(...(await ztunnelWarnings(c)));
  return out.join('; ');
}

const fingerprints = (x: CertDump): string[] =>
  x.rootCerts.map(r => new X509Certificate(r.pem).fingerprint256).sort();

describe('migration from the self-signed root to an external root on a 2-node local cluster', () => {
  beforeAll(async () => {
    const dir = scenario.dir();
    material = await makeCaMaterial(dir, 1);
    const c = await scenario.start('camig', 108);
    await scenario.meshAndApps(c, {
      certTtlS: CERT_TTL_S,
      echoEnv: { TCP_PORT: String(ECHO_TCP_PORT) },
    });
  }, 600_000);

  afterAll(async () => {
    await scenario.stop();
  }, 180_000);

  it('distributes the new root before it signs, under load, with no failed connection', async () => {
    const c = kube();
    const client = pod('client');
    const echo = pod('echo');
    const selfSigned = await c.client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${MESH_NAMESPACE}/secrets/istio-ca-secret`,
    );
    const oldRootPem = Buffer.from(selfSigned.data?.['ca-cert.pem'] ?? '', 'base64').toString('utf8');
    const oldRoot = new X509Certificate(oldRootPem);
    const newRoot = new X509Certificate(material.rootPem);
    const newIntermediate = new X509Certificate(material.intermediates[0]!.certPem);
    const onNew = (x: CertDump): boolean =>
      new X509Certificate(x.certChain[0]!.pem).verify(newIntermediate.publicKey);
    const trustsNew = (x: CertDump): boolean => fingerprints(x).includes(newRoot.fingerprint256);
    // Before: both workloads on the self-signed root, trusting only it.
    for (const { sa, leaf, cert } of await leaves({ client, echo })) {
      expect(leaf.verify(oldRoot.publicKey), sa).toBe(true);
      expect(fingerprints(cert), sa).toEqual([oldRoot.fingerprint256]);
    }
    const loop = await startRequestLoop(
      client.netns,
      { host: echo.ip, port: 8080, echoPort: ECHO_TCP_PORT },
      50,
    );
    let summary: LoopSummary | undefined;
    // Every observation of a certificate on the new root while its peer did not trust that root.
    const violations: string[] = [];
    let polls = 0;
    let distributedPolls = 0;
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
      // The renewals move both workloads to the new root once it has reached both; meanwhile no
      // certificate on the new root may be held while its peer does not trust that root.
      const moved = await waitFor(
        'both identities renewed under the new root',
        async () => {
          const e = await heldCert(echo.node, 'echo');
          const cl = await heldCert(client.node, 'client');
          if (e === undefined || cl === undefined) return undefined;
          polls++;
          if (trustsNew(e) && trustsNew(cl) && !onNew(e) && !onNew(cl)) distributedPolls++;
          for (const [self, peer, name] of [
            [e, cl, 'echo'],
            [cl, e, 'client'],
          ] as const) {
            if (onNew(self) && !trustsNew(peer))
              violations.push(
                `${name} on the new root while its peer trusts ${fingerprints(peer).length} root(s)`,
              );
          }
          return onNew(e) && onNew(cl) ? { echo: e, client: cl } : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 500 },
      );
      // Each holds both roots while the migration lasts.
      for (const x of [moved.echo, moved.client]) {
        expect(fingerprints(x)).toEqual([newRoot.fingerprint256, oldRoot.fingerprint256].sort());
        expect(await opensslVerify(x)).toMatch(/: OK$/);
      }
      const atMove = await mtlsToEcho();
      await waitFor(
        'twenty mTLS connections on the new root',
        async () => ((await mtlsToEcho()) >= atMove + 20 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(
      `self-signed -> external root under load: ${String(summary.ok)}/${String(summary.ok + summary.failed)} requests, long-lived ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}; certificate polls ${String(polls)}, with both roots distributed and none on the new root yet ${String(distributedPolls)}; ${summary.errors.join('; ')}`,
    );
    log(`logs: ${await migrationLogs()}`);
    expect(violations).toEqual([]);
    expect(summary.ok).toBeGreaterThan(20);
    expect(summary.failed).toBe(0);
    expect(summary.longFailed).toBe(0);
  }, 420_000);
});
