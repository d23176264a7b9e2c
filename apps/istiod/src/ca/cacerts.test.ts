import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { createWorkloadCsr, SpiffeId, type PluggedCaCerts } from '@ambient-mesh/spiffe-certs';
import { createTestPluggedCerts } from '@ambient-mesh/spiffe-certs/testing';
import { silentLogger } from '@ambient-mesh/runtime';
import { CacertsErrorCode } from '../errors.ts';
import { CaSources } from './ca-bootstrap.ts';
import { cacertsFingerprint, validateCacerts } from './cacerts.ts';
import { CacertsWatch } from './cacerts-watch.ts';
import { MeshCaHolder } from './mesh-ca-holder.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const id = SpiffeId.parse('spiffe://cluster.local/ns/apps/sa/web');

function files(p: PluggedCaCerts): Record<string, string> {
  return {
    'ca-cert.pem': p.caCertPem,
    'ca-key.pem': p.caKeyPem,
    'root-cert.pem': p.rootCertPem,
    'cert-chain.pem': p.certChainPem ?? '',
  };
}

function secret(data: Record<string, string>, name = 'cacerts'): object {
  return {
    metadata: { name, namespace: 'istio-system' },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

describe('validateCacerts', () => {
  for (const keyAlgorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
    it(`signs workload certificates with the ${keyAlgorithm} intermediate and the full chain`, async () => {
      const plugged = await createTestPluggedCerts({ keyAlgorithm });
      const result = await validateCacerts(files(plugged));
      if (!result.ok) throw result.error;
      const csr = await createWorkloadCsr(id);
      const issued = await result.ca.sign({ csrPem: csr.csrPem, identity: id });
      // Leaf, then the intermediate, then the root bundle.
      expect(issued.certChain).toHaveLength(3);
      const leaf = new X509Certificate(issued.certChain[0]!);
      const intermediate = new X509Certificate(issued.certChain[1]!);
      const root = new X509Certificate(issued.certChain[2]!);
      expect(intermediate.fingerprint256).toBe(new X509Certificate(plugged.caCertPem).fingerprint256);
      expect(leaf.verify(intermediate.publicKey)).toBe(true);
      expect(intermediate.verify(root.publicKey)).toBe(true);
      expect(root.fingerprint256).toBe(new X509Certificate(plugged.rootCertPem).fingerprint256);
    });
  }

  it('refuses a key that is not the certificate key with ISTIOD_CACERTS_KEY_MISMATCH', async () => {
    const a = await createTestPluggedCerts();
    const b = await createTestPluggedCerts();
    const result = await validateCacerts({ ...files(a), 'ca-key.pem': b.caKeyPem });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(CacertsErrorCode.KEY_MISMATCH);
    expect(result.error.message).toMatch(/ca-key.pem is not the private key of ca-cert.pem/);
  });

  it('refuses an expired intermediate with ISTIOD_CACERTS_EXPIRED', async () => {
    const old = await createTestPluggedCerts({ now: () => Date.now() - 11 * YEAR_MS });
    const result = await validateCacerts(files(old));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe(CacertsErrorCode.EXPIRED);
  });

  it('names the missing files and refuses a chain to a foreign root', async () => {
    const a = await createTestPluggedCerts();
    const b = await createTestPluggedCerts();
    const incomplete = await validateCacerts({ 'ca-cert.pem': a.caCertPem });
    expect(incomplete.ok ? undefined : incomplete.error.code).toBe(CacertsErrorCode.INCOMPLETE);
    expect(incomplete.ok ? '' : incomplete.error.message).toMatch(/ca-key.pem, root-cert.pem/);
    const foreign = await validateCacerts({
      ...files(a),
      'root-cert.pem': b.rootCertPem,
      'cert-chain.pem': '',
    });
    expect(foreign.ok ? undefined : foreign.error.code).toBe(CacertsErrorCode.INVALID);
  });

  it('accepts a root-cert.pem with two roots and publishes both (migration)', async () => {
    const current = await createTestPluggedCerts();
    const next = await createTestPluggedCerts({ keyAlgorithm: 'rsa-2048' });
    const result = await validateCacerts({
      ...files(next),
      'root-cert.pem': next.rootCertPem + current.rootCertPem,
    });
    if (!result.ok) throw result.error;
    expect(result.ca.trustBundle.size).toBe(2);
  });
});

describe('CacertsWatch', () => {
  async function setup(): Promise<{ holder: MeshCaHolder; watch: CacertsWatch; first: PluggedCaCerts }> {
    const first = await createTestPluggedCerts();
    const initial = await validateCacerts(files(first));
    if (!initial.ok) throw initial.error;
    const holder = new MeshCaHolder({
      ca: initial.ca,
      rootCertPem: initial.ca.trustBundle.pem,
      source: CaSources.PLUGGED_SECRET,
    });
    const watch = new CacertsWatch({
      holder,
      namespace: 'istio-system',
      logger: silentLogger(),
      caOptions: {},
      initialFingerprint: cacertsFingerprint(files(first)),
    });
    return { holder, watch, first };
  }

  it('replaces the CA when the Secret gets a new intermediate, and ignores a resync', async () => {
    const { holder, watch, first } = await setup();
    expect(await watch.upsert(secret(files(first)))).toEqual({ kind: 'unchanged' });
    const changes: string[] = [];
    holder.onChange((next, previous) => {
      changes.push(
        `${previous.ca.signingCertificate.serialNumber}->${next.ca.signingCertificate.serialNumber}`,
      );
    });
    const second = await createTestPluggedCerts();
    expect(await watch.upsert(secret(files(second)))).toEqual({ kind: 'replaced' });
    expect(holder.current.ca.signingCertificate.fingerprint256).toBe(
      new X509Certificate(second.caCertPem).fingerprint256,
    );
    expect(changes).toHaveLength(1);
  });

  it('keeps the previous CA on a bad update or a deleted Secret', async () => {
    const { holder, watch, first } = await setup();
    const before = holder.current;
    const other = await createTestPluggedCerts();
    const mismatch = await watch.upsert(secret({ ...files(first), 'ca-key.pem': other.caKeyPem }));
    expect(mismatch).toMatchObject({ kind: 'refused', code: CacertsErrorCode.KEY_MISMATCH });
    const expired = await createTestPluggedCerts({ now: () => Date.now() - 11 * YEAR_MS });
    expect(await watch.upsert(secret(files(expired)))).toMatchObject({
      kind: 'refused',
      code: CacertsErrorCode.EXPIRED,
    });
    expect(await watch.delete()).toEqual({ kind: 'kept-after-delete' });
    expect(holder.current).toBe(before);
    const csr = await createWorkloadCsr(id);
    const issued = await holder.sign({ csrPem: csr.csrPem, identity: id });
    expect(new X509Certificate(issued.leafPem).verify(new X509Certificate(first.caCertPem).publicKey)).toBe(
      true,
    );
  });

  it('follows only Secret cacerts of its namespace', async () => {
    const { watch } = await setup();
    expect(watch.matches(secret({}) as never)).toBe(true);
    expect(watch.matches(secret({}, 'istio-ca-secret') as never)).toBe(false);
  });
});
