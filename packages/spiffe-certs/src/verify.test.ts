import { describe, expect, it } from 'vitest';
import {
  CertificateNotYetValidError,
  InvalidCertificateError,
  InvalidSanError,
  SpiffeId,
  TrustBundle,
  UntrustedChainError,
  readSubjectAltNames,
  spiffeIdFromCertificateDer,
  verifyPeerChain,
} from './index.ts';
import { createTestCa, issueRawCert, issueWorkloadCert } from './testing/index.ts';
import { X509Certificate } from 'node:crypto';

const alice = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/alice');

describe('verifyPeerChain', () => {
  it('accepts a chain from any root of a multi-root bundle and returns the identity', async () => {
    const [a, b] = await Promise.all([createTestCa(), createTestCa({ intermediate: true })]);
    const bundle = a.trustBundle.merge(b.trustBundle);
    expect(bundle.size).toBe(2);
    for (const ca of [a, b]) {
      const cert = await issueWorkloadCert(ca, alice);
      const result = verifyPeerChain(cert.certChain, {
        bundle,
        trustDomain: 'cluster.local',
        expectedIdentities: [alice],
      });
      expect(result.ok ? result.identity.uri : result.error.code).toBe(alice.uri);
    }
  });

  it('refuses a chain whose intermediate is missing', async () => {
    const ca = await createTestCa({ intermediate: true });
    const cert = await issueWorkloadCert(ca, alice);
    const result = verifyPeerChain([cert.certChain[0]!], { bundle: ca.trustBundle });
    expect(!result.ok && result.error).toBeInstanceOf(UntrustedChainError);
  });

  it('refuses a certificate that is not valid yet', async () => {
    const ca = await createTestCa();
    const cert = await issueWorkloadCert(ca, alice, { notBefore: new Date(Date.now() + 3600_000) });
    const result = verifyPeerChain(cert.certChain, { bundle: ca.trustBundle });
    expect(!result.ok && result.error).toBeInstanceOf(CertificateNotYetValidError);
  });

  it('checks validity against the injected clock', async () => {
    const ca = await createTestCa();
    const cert = await issueWorkloadCert(ca, alice, { ttlSeconds: 3600 });
    const later = () => Date.now() + 2 * 3600_000;
    const result = verifyPeerChain(cert.certChain, { bundle: ca.trustBundle, now: later });
    expect(result.ok ? 'ok' : result.error.code).toBe('SPIFFE_CERT_EXPIRED');
  });

  it('refuses a CA certificate presented as the leaf', async () => {
    const ca = await createTestCa();
    const result = verifyPeerChain([ca.trustBundle.pem], { bundle: ca.trustBundle });
    expect(!result.ok && result.error).toBeInstanceOf(InvalidCertificateError);
  });

  it.each([
    ['a percent-encoded slash', 'spiffe://cluster.local/ns/default/sa/alice%2F..'],
    ['an encoded NUL', 'spiffe://cluster.local/ns/default/sa/alice%00'],
    ['a raw NUL', 'spiffe://cluster.local/ns/default/sa/alice\u0000'],
    ['a DEL byte', 'spiffe://cluster.local/ns/default/sa/alice\u007f'],
    ['a non-SPIFFE URI', 'https://cluster.local/ns/default/sa/alice'],
  ])('refuses a SAN with %s, reading the exact DER bytes', async (_name, uri) => {
    const ca = await createTestCa();
    const cert = await issueRawCert(ca, uri);
    const der = new X509Certificate(cert.leafPem).raw;
    expect(readSubjectAltNames(der)?.uris[0]?.equals(Buffer.from(uri, 'latin1'))).toBe(true);
    expect(() => spiffeIdFromCertificateDer(der)).toThrow(InvalidSanError);
    const result = verifyPeerChain(cert.certChain, { bundle: ca.trustBundle, expectedIdentities: [alice] });
    expect(result.ok ? 'ok' : result.error.code).toBe('SPIFFE_INVALID_SAN');
  });

  it('returns SPIFFE_INVALID_CERT for garbage instead of throwing', async () => {
    const ca = await createTestCa();
    const truncated =
      '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAA\n-----END CERTIFICATE-----\n';
    for (const chain of [[truncated], 'no pem here', [Buffer.from([0x30, 0x82, 0xff])], []]) {
      const result = verifyPeerChain(chain, { bundle: ca.trustBundle });
      expect(result.ok ? 'ok' : result.error.code).toBe('SPIFFE_INVALID_CERT');
    }
    expect(() => TrustBundle.from(truncated)).toThrow(InvalidCertificateError);
  });
});
