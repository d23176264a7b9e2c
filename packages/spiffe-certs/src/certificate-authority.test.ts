import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CA_DEFAULTS,
  CaConfigError,
  CertificateAuthority,
  InvalidCsrError,
  SpiffeId,
  TtlTooLongError,
  createWorkloadCsr,
  readSubjectAltNames,
  splitPemCertificates,
  verifyPeerChain,
} from './index.ts';
import { createTestCa, createTestPluggedCerts } from './testing/index.ts';
import { x509 } from './x509-provider.ts';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spiffe-ca-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const alice = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/alice');

describe('CertificateAuthority.sign', () => {
  it('issues a leaf that openssl verifies through the intermediate, with the extensions of docs/protocols.md#certificates', async () => {
    const ca = await createTestCa({ intermediate: true });
    // The CSR asks for another identity; the CA must ignore it.
    const csr = await createWorkloadCsr(SpiffeId.parse('spiffe://cluster.local/ns/kube-system/sa/admin'));
    const issued = await ca.sign({ csrPem: csr.csrPem, identity: alice });

    expect(issued.certChain).toHaveLength(3);
    expect(issued.certChain[0]).toBe(issued.leafPem);
    expect(issued.certChain.at(-1)).toBe(ca.trustBundle.pem);
    for (const element of issued.certChain) expect(element.endsWith('\n')).toBe(true);

    const dir = await tempDir();
    await writeFile(join(dir, 'root.pem'), issued.rootBundlePem);
    await writeFile(join(dir, 'chain.pem'), issued.intermediatesPem.join(''));
    await writeFile(join(dir, 'leaf.pem'), issued.leafPem);
    const verify = await run(
      'openssl',
      ['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'leaf.pem'],
      {
        cwd: dir,
      },
    );
    expect(verify.stdout.trim()).toBe('leaf.pem: OK');

    const text = await run('openssl', [
      'x509',
      '-in',
      join(dir, 'leaf.pem'),
      '-noout',
      '-ext',
      'subjectAltName,keyUsage,extendedKeyUsage,basicConstraints',
    ]);
    expect(text.stdout).toContain(
      'X509v3 Subject Alternative Name: critical\n    URI:spiffe://cluster.local/ns/default/sa/alice\n',
    );
    expect(text.stdout).toContain('X509v3 Key Usage: critical\n    Digital Signature, Key Encipherment\n');
    expect(text.stdout).toContain(
      'X509v3 Extended Key Usage: \n    TLS Web Server Authentication, TLS Web Client Authentication\n',
    );
    expect(text.stdout).toContain('X509v3 Basic Constraints: critical\n    CA:FALSE\n');

    const leaf = new X509Certificate(issued.leafPem);
    expect(leaf.subject).toBeUndefined();
    expect(readSubjectAltNames(leaf.raw)?.uris.map(u => u.toString('latin1'))).toEqual([alice.uri]);
  });

  it('defaults to a self-signed RSA 2048 root, and its leaves verify with openssl', async () => {
    const ca = await CertificateAuthority.createSelfSigned({ trustDomain: 'example.org' });
    expect(ca.signingCertificate.publicKey.asymmetricKeyType).toBe('rsa');
    expect(ca.signingCertificate.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(ca.signingCertificate.subject).toBe('O=example.org');
    expect(ca.signingCertificate.ca).toBe(true);
    const csr = await createWorkloadCsr(alice);
    const issued = await ca.sign({ csrPem: csr.csrPem, identity: alice });
    expect(issued.certChain).toHaveLength(2);
    const dir = await tempDir();
    await writeFile(join(dir, 'root.pem'), issued.rootBundlePem);
    await writeFile(join(dir, 'leaf.pem'), issued.leafPem);
    const verify = await run('openssl', ['verify', '-CAfile', 'root.pem', 'leaf.pem'], { cwd: dir });
    expect(verify.stdout.trim()).toBe('leaf.pem: OK');
  });

  it('backdates NotBefore by 2 minutes and defaults the TTL to 24 h when the request asks for 0', async () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const ca = await createTestCa({ now: () => now });
    const csr = await createWorkloadCsr(alice);
    const issued = await ca.sign({ csrPem: csr.csrPem, identity: alice, ttlSeconds: 0 });
    expect(issued.notBefore.getTime()).toBe(now - 120_000);
    expect(issued.notAfter.getTime()).toBe(now + CA_DEFAULTS.workloadCertTtlSeconds * 1000);
    const leaf = new X509Certificate(issued.leafPem);
    expect(new Date(leaf.validFrom).getTime()).toBe(now - 120_000);
    const week = await ca.sign({ csrPem: csr.csrPem, identity: alice, ttlSeconds: 7 * 86_400 });
    expect(week.notAfter.getTime()).toBe(now + 7 * 86_400_000);
  });

  it('refuses a TTL over 90 days with SPIFFE_TTL_TOO_LONG', async () => {
    const ca = await createTestCa();
    const csr = await createWorkloadCsr(alice);
    const ninetyDays = 90 * 86_400;
    await expect(
      ca.sign({ csrPem: csr.csrPem, identity: alice, ttlSeconds: ninetyDays }),
    ).resolves.toBeDefined();
    const refused = ca.sign({ csrPem: csr.csrPem, identity: alice, ttlSeconds: ninetyDays + 1 });
    await expect(refused).rejects.toBeInstanceOf(TtlTooLongError);
    await expect(refused).rejects.toMatchObject({ code: 'SPIFFE_TTL_TOO_LONG', maxSeconds: ninetyDays });
  });

  it('refuses a CSR whose signature does not verify, or that is not a CSR', async () => {
    const ca = await createTestCa();
    const csr = await createWorkloadCsr(alice);
    const der = Buffer.from(csr.csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff; // inside the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(ca.sign({ csrPem: tampered, identity: alice })).rejects.toBeInstanceOf(InvalidCsrError);
    await expect(ca.sign({ csrPem: 'not a csr', identity: alice })).rejects.toMatchObject({
      code: 'SPIFFE_INVALID_CSR',
    });
  });

  it('creates the CSR as ztunnel does: empty subject, one critical URI SAN, ECDSA P-256', async () => {
    const csr = await createWorkloadCsr(alice);
    const parsed = new x509.Pkcs10CertificateRequest(csr.csrPem);
    expect(parsed.subject).toBe('');
    const san = new x509.SubjectAlternativeNameExtension(parsed.getExtension('2.5.29.17')!.rawData);
    expect(san.critical).toBe(true);
    expect(san.names.items.map(n => [n.type, n.value])).toEqual([['url', alice.uri]]);
    expect(parsed.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(csr.privateKeyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
  });
});

describe('plug-in CA (cacerts)', () => {
  it('loads the cacerts directory and publishes several roots in the last element', async () => {
    const plugged = await createTestPluggedCerts({ keyAlgorithm: 'rsa-2048' });
    const otherRoot = await createTestCa();
    const dir = await tempDir();
    await writeFile(join(dir, 'ca-cert.pem'), plugged.caCertPem);
    await writeFile(join(dir, 'ca-key.pem'), plugged.caKeyPem);
    await writeFile(join(dir, 'root-cert.pem'), plugged.rootCertPem);
    await writeFile(join(dir, 'cert-chain.pem'), plugged.certChainPem!);
    const ca = await CertificateAuthority.fromCacertsDirectory(dir, {
      additionalRoots: otherRoot.trustBundle.pem,
    });

    const csr = await createWorkloadCsr(alice);
    const issued = await ca.sign({ csrPem: csr.csrPem, identity: alice });
    expect(issued.intermediatesPem).toEqual([plugged.caCertPem]);
    expect(splitPemCertificates(issued.certChain.at(-1)!)).toHaveLength(2);

    const result = verifyPeerChain(issued.certChain.slice(0, -1), { bundle: ca.trustBundle });
    expect(result.ok ? result.identity.uri : result.error).toBe(alice.uri);
  });

  it('refuses a key that does not match ca-cert.pem with SPIFFE_CA_CONFIG', async () => {
    const a = await createTestPluggedCerts();
    const b = await createTestPluggedCerts();
    await expect(
      CertificateAuthority.fromPluggedCerts({ ...a, caKeyPem: b.caKeyPem }),
    ).rejects.toBeInstanceOf(CaConfigError);
  });

  it('refuses a signing certificate that does not chain to root-cert.pem', async () => {
    const a = await createTestPluggedCerts();
    const b = await createTestPluggedCerts();
    await expect(
      CertificateAuthority.fromPluggedCerts({ ...a, rootCertPem: b.rootCertPem, certChainPem: a.caCertPem }),
    ).rejects.toMatchObject({ code: 'SPIFFE_CA_CONFIG' });
  });

  it('reports a missing required file with its name', async () => {
    const dir = await tempDir();
    await expect(CertificateAuthority.fromCacertsDirectory(dir)).rejects.toThrow(
      /ca-cert\.pem|ca-key\.pem|root-cert\.pem/,
    );
  });
});
