import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { CertificateManager, certificateDump } from './certificate-manager.ts';
import type { CertificateHealth } from './certificate-manager.ts';
import { SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';
import { createLocalFetcher, createTestCa, issueRawCert } from './testing/index.ts';

const A = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/a');
const B = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/b');

function serial(certificate: WorkloadCertificate | undefined): string | undefined {
  const leaf = certificate?.certChain[0];
  return leaf === undefined ? undefined : new X509Certificate(leaf).serialNumber;
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

describe('CertificateManager', () => {
  it('keeps exactly the wanted identities and dumps the certificate in use', async () => {
    const ca = await createTestCa();
    const manager = new CertificateManager({ fetch: createLocalFetcher(ca), logger: silentLogger() });
    try {
      manager.want([A, B]);
      await until('both certificates', () => manager.dump().every(d => d.state === 'Available'));
      expect(
        manager
          .dump()
          .map(d => d.identity)
          .sort(),
      ).toEqual([A.uri, B.uri]);
      const dumpA = manager.dump().find(d => d.identity === A.uri);
      expect(dumpA?.certChain[0]?.serialNumber).toBe(serial(manager.peek(A)));
      expect(dumpA?.rootCerts).toHaveLength(1);
      manager.want([B]);
      expect(manager.dump().map(d => d.identity)).toEqual([B.uri]);
      expect(manager.peek(A)).toBeUndefined();
    } finally {
      manager.close();
    }
  });

  it('tells the listeners of one identity about each renewal', async () => {
    const ca = await createTestCa();
    // A few seconds of lifetime: renewed every second (the cache's minimum delay).
    const manager = new CertificateManager({
      fetch: createLocalFetcher(ca, { ttlSeconds: 3 }),
      logger: silentLogger(),
    });
    const seen: WorkloadCertificate[] = [];
    const other: WorkloadCertificate[] = [];
    const off = manager.onCertificate(A, c => seen.push(c));
    manager.onCertificate(B, c => other.push(c));
    try {
      manager.want([A]);
      const first = await manager.get(A.uri);
      await until('two renewals', () => seen.length >= 3);
      expect(seen[0]).toBe(first);
      expect(new Set(seen.map(c => serial(c))).size).toBe(seen.length);
      expect(other).toEqual([]);
      off();
      const count = seen.length;
      await until('another renewal', () => manager.peek(A) !== seen.at(-1));
      expect(seen).toHaveLength(count);
    } finally {
      manager.close();
    }
  });

  it('reports identities whose fetch fails, with or without a certificate', async () => {
    const healths: CertificateHealth[] = [];
    const manager = new CertificateManager({
      fetch: () => Promise.reject(new Error('CA down')),
      logger: silentLogger(),
      backoff: { initialMs: 60_000 },
      observer: { health: h => healths.push(h) },
    });
    try {
      await expect(manager.get(A)).rejects.toMatchObject({ code: 'SPIFFE_CERT_UNAVAILABLE' });
      expect(manager.health).toMatchObject({ failingWithCertificate: 0, failingWithoutCertificate: 1 });
      expect(manager.health.lastError).toContain('CA down');
      expect(healths.at(-1)?.failingWithoutCertificate).toBe(1);
      manager.want([]);
      expect(manager.health.failingWithoutCertificate).toBe(0);
    } finally {
      manager.close();
    }
  });

  it('dumps a certificate held outside a manager', async () => {
    const ca = await createTestCa();
    const raw = await issueRawCert(ca, A.uri);
    const dump = certificateDump(A.uri, raw.certChain.join('\n'), raw.roots);
    expect(dump).toMatchObject({ identity: A.uri, state: 'Available' });
    expect(dump.certChain).toHaveLength(raw.certChain.length);
    expect(dump.rootCerts).toHaveLength(1);
  });
});
