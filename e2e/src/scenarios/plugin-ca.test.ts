// Cluster tier: the plug-in CA (Secret `cacerts`, upstream's file names) on a 2-node local cluster
// of its own (name `plugca`, slot 65).
//
// An RSA root and two ECDSA intermediates under it are made with openssl. The Secret holds the
// first intermediate before the mesh is installed, so istiod starts on it; workload certificates
// taken from ztunnel's config dump must chain to the plugged root through it (`openssl verify`).
// Then, with short-lived workload certificates and traffic running, the Secret gets the second
// intermediate: istiod swaps it without a restart, the next renewals are signed by it, and no
// connection fails.
import { X509Certificate } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { CaScenario, plugCacerts, type CertDump } from './ca-fixture.ts';
import { cacertsSecretData, makeCaMaterial, type CaMaterial } from './ca-material.ts';
import { startRequestLoop, type LoopSummary } from './netns-python.ts';

const NS = 'plugca-apps';
const scenario = new CaScenario('plugin-ca', NS);
const { log, kube, pod, heldCert, opensslVerify, mtlsToEcho } = scenario;
const ECHO_TCP_PORT = 9000;
// Renewal at half-life (60 s): the swap scenario sees each identity renewed on the new intermediate.
const CERT_TTL_S = 120;

let material: CaMaterial;

const cacertsData = (i: number): Record<string, string> => cacertsSecretData(material, i);

const issuedBy = (cert: CertDump | undefined, i: number): boolean =>
  cert !== undefined &&
  new X509Certificate(cert.certChain[0]?.pem ?? '').verify(
    new X509Certificate(material.intermediates[i]!.certPem).publicKey,
  );

describe('plug-in CA (Secret cacerts) on a 2-node local cluster', () => {
  beforeAll(async () => {
    const dir = scenario.dir();
    material = await makeCaMaterial(dir, 2);
    const c = await scenario.start('plugca', 65);
    // The Secret exists before istiod starts: istiod signs with the first intermediate from the start.
    await plugCacerts(c, cacertsData(0), 'plugin-ca-test');
    await scenario.meshAndApps(c, {
      certTtlS: CERT_TTL_S,
      echoEnv: { TCP_PORT: String(ECHO_TCP_PORT) },
    });
  }, 600_000);

  afterAll(async () => {
    await scenario.stop();
  }, 180_000);

  it('issues workload certificates that chain to the plugged root through the intermediate (openssl verify)', async () => {
    const c = kube();
    const echo = await waitFor(
      'the echo certificate in the node-1 ztunnel',
      () => heldCert('node-1', 'echo'),
      {
        timeoutMs: 60_000,
        intervalMs: 500,
      },
    );
    expect(echo.certChain).toHaveLength(2);
    expect(new X509Certificate(echo.certChain[1]!.pem).fingerprint256).toBe(
      new X509Certificate(material.intermediates[0]!.certPem).fingerprint256,
    );
    expect(echo.rootCerts.map(r => new X509Certificate(r.pem).fingerprint256)).toEqual([
      new X509Certificate(material.rootPem).fingerprint256,
    ]);
    expect(await opensslVerify(echo)).toMatch(/: OK$/);
    // The bundle published to the namespace is the plugged root.
    const cm = await waitFor(
      'istio-ca-root-cert in the app namespace',
      () =>
        c.client.find<{ data?: Record<string, string> }>(
          `/api/v1/namespaces/${NS}/configmaps/istio-ca-root-cert`,
        ),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(new X509Certificate(cm.data?.['root-cert.pem'] ?? '').fingerprint256).toBe(
      new X509Certificate(material.rootPem).fingerprint256,
    );
  }, 120_000);

  it('replaces the intermediate under load without a restart and with no failed connection', async () => {
    const c = kube();
    const client = pod('client');
    const echo = pod('echo');
    const istiodBefore = await c.client.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
      labelSelector: 'app=istiod',
    });
    const loop = await startRequestLoop(
      client.netns,
      { host: echo.ip, port: 8080, echoPort: ECHO_TCP_PORT },
      50,
    );
    let summary: LoopSummary | undefined;
    try {
      await c.client.mergePatch(`/api/v1/namespaces/${MESH_NAMESPACE}/secrets/cacerts`, {
        data: cacertsData(1),
      });
      // The next renewal of both identities (half-life: 60 s) is signed by the new intermediate.
      const renewed = await waitFor(
        'both identities renewed on the second intermediate',
        async () => {
          const e = await heldCert(echo.node, 'echo');
          const cl = await heldCert(client.node, 'client');
          return issuedBy(e, 1) && issuedBy(cl, 1) ? { echo: e!, client: cl! } : undefined;
        },
        { timeoutMs: (CERT_TTL_S + 30) * 1000, intervalMs: 1000 },
      );
      expect(await opensslVerify(renewed.echo)).toMatch(/: OK$/);
      expect(await opensslVerify(renewed.client)).toMatch(/: OK$/);
      // Keep the load on until twenty more mTLS connections ran on the renewed certificates.
      const atRenewal = await mtlsToEcho();
      await waitFor(
        'twenty mTLS connections after the renewal',
        async () => ((await mtlsToEcho()) >= atRenewal + 20 ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    } finally {
      summary = await loop.stop();
    }
    log(
      `intermediate swap under load: ${String(summary.ok)}/${String(summary.ok + summary.failed)} requests, long-lived ${String(summary.longOk)}/${String(summary.longOk + summary.longFailed)}; ${summary.errors.join('; ')}`,
    );
    expect(summary.ok).toBeGreaterThan(20);
    expect(summary.failed).toBe(0);
    expect(summary.longFailed).toBe(0);
    // istiod was not restarted: the same pod (and no restart of its container).
    const istiodAfter = await c.client.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
      labelSelector: 'app=istiod',
    });
    expect(istiodAfter.items.map(p => p.metadata?.uid)).toEqual(istiodBefore.items.map(p => p.metadata?.uid));
    expect(istiodAfter.items.every(p => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) === 0)).toBe(
      true,
    );
  }, 300_000);
});
