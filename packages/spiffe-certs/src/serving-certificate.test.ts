import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CaConfigError,
  CertificateAuthority,
  InvalidServingRequestError,
  SpiffeId,
  createWorkloadCsr,
  verifyPeerChain,
} from './index.ts';
import { createTestCa, createTestPluggedCerts } from './testing/index.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const alice = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/alice');
const ISTIOD_NAMES = ['istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local'];

/** Completes a TLS 1.3 handshake on loopback and resolves the name the client verified. */
async function handshake(
  serving: { readonly keyPem: string; readonly certChainPem: string },
  rootBundlePem: string,
  servername: string,
): Promise<string> {
  const server = createServer({ key: serving.keyPem, cert: serving.certChainPem, minVersion: 'TLSv1.3' }, s =>
    s.end(),
  );
  cleanups.push(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const socket = connect({ host: '127.0.0.1', port, servername, ca: rootBundlePem });
  cleanups.push(() => socket.destroy());
  await once(socket, 'secureConnect');
  expect(socket.authorized).toBe(true);
  return servername;
}

describe('CertificateAuthority.exportCaCerts', () => {
  it('exports an extractable self-signed root in the cacerts layout that loads back as the same CA', async () => {
    const ca = await CertificateAuthority.createSelfSigned({
      keyAlgorithm: 'ecdsa-p256',
      trustDomain: 'example.org',
      extractable: true,
    });
    const files = ca.exportCaCerts();
    expect(files['ca-cert.pem']).toBe(ca.signingCertificate.toString());
    expect(files['root-cert.pem']).toBe(files['ca-cert.pem']);
    expect(files['cert-chain.pem']).toBe('');
    const publicOfKey = createPublicKey(createPrivateKey(files['ca-key.pem']));
    expect(publicOfKey.export({ type: 'spki', format: 'der' })).toEqual(
      ca.signingCertificate.publicKey.export({ type: 'spki', format: 'der' }),
    );

    // A CA reloaded from the export signs leaves the original root verifies.
    const reloaded = await CertificateAuthority.fromPluggedCerts({
      caCertPem: files['ca-cert.pem'],
      caKeyPem: files['ca-key.pem'],
      rootCertPem: files['root-cert.pem'],
    });
    const csr = await createWorkloadCsr(alice);
    const issued = await reloaded.sign({ csrPem: csr.csrPem, identity: alice });
    const result = verifyPeerChain(issued.certChain.slice(0, -1), { bundle: ca.trustBundle });
    expect(result.ok).toBe(true);
  });

  it('exports the RSA root Istio uses by default', async () => {
    const ca = await CertificateAuthority.createSelfSigned({ extractable: true });
    const key = createPrivateKey(ca.exportCaCerts()['ca-key.pem']);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('refuses to export a self-signed root created without extractable', async () => {
    const ca = await createTestCa();
    expect(() => ca.exportCaCerts()).toThrow(CaConfigError);
    expect(() => ca.exportCaCerts()).toThrow(/extractable: true/);
  });

  it('returns the plug-in material a CA was loaded from', async () => {
    const certs = await createTestPluggedCerts();
    const ca = await CertificateAuthority.fromPluggedCerts(certs);
    expect(ca.exportCaCerts()).toEqual({
      'ca-cert.pem': certs.caCertPem,
      'ca-key.pem': certs.caKeyPem,
      'root-cert.pem': certs.rootCertPem,
      'cert-chain.pem': certs.certChainPem,
    });
  });
});

describe('CertificateAuthority.signServingCertificate', () => {
  it('signs a DNS/IP-SAN server certificate that a TLS 1.3 client verifies by host name', async () => {
    const ca = await createTestCa();
    const serving = await ca.signServingCertificate({
      dnsNames: [...ISTIOD_NAMES, ISTIOD_NAMES[0]!],
      ipAddresses: ['127.0.0.1'],
      ttlSeconds: 3600,
    });
    expect(serving.dnsNames).toEqual(ISTIOD_NAMES);
    const leaf = new X509Certificate(serving.certPem);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toBe(
      'DNS:istiod.istio-system.svc, DNS:istiod.istio-system.svc.cluster.local, IP Address:127.0.0.1',
    );
    expect(leaf.checkIssued(ca.signingCertificate)).toBe(true);
    expect(leaf.verify(ca.signingCertificate.publicKey)).toBe(true);
    expect(serving.notAfter.getTime() - serving.notBefore.getTime()).toBe((3600 + 120) * 1000);
    expect(createPrivateKey(serving.keyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(await handshake(serving, serving.rootBundlePem, 'istiod.istio-system.svc')).toBe(
      'istiod.istio-system.svc',
    );
  });

  it('puts the intermediates after the leaf when the CA is a plug-in intermediate', async () => {
    const ca = await createTestCa({ intermediate: true });
    const serving = await ca.signServingCertificate({
      dnsNames: ['istiod.istio-system.svc'],
      ttlSeconds: 60,
    });
    expect(serving.certChainPem).toBe(serving.certPem + ca.intermediatesPem.join(''));
    await handshake(serving, serving.rootBundlePem, 'istiod.istio-system.svc');
  });

  it('never outlives the signing certificate', async () => {
    const ca = await CertificateAuthority.createSelfSigned({
      keyAlgorithm: 'ecdsa-p256',
      rootTtlSeconds: 600,
    });
    const serving = await ca.signServingCertificate({ dnsNames: ['istiod'], ttlSeconds: 365 * 24 * 3600 });
    expect(serving.notAfter.getTime()).toBe(new Date(ca.signingCertificate.validTo).getTime());
  });

  it.each([
    ['no names', { dnsNames: [], ttlSeconds: 60 }, /no DNS name/],
    ['a bad DNS name', { dnsNames: ['istiod..svc'], ttlSeconds: 60 }, /"istiod\.\.svc" is not a DNS name/],
    ['a name with a space', { dnsNames: ['a b'], ttlSeconds: 60 }, /is not a DNS name/],
    ['a bad IP', { dnsNames: ['istiod'], ipAddresses: ['10.0.0.300'], ttlSeconds: 60 }, /not an IP/],
    ['a zero TTL', { dnsNames: ['istiod'], ttlSeconds: 0 }, /not positive/],
    ['a NaN TTL', { dnsNames: ['istiod'], ttlSeconds: Number.NaN }, /not positive/],
  ])('rejects %s with SPIFFE_INVALID_SERVING_REQUEST', async (_what, request, message) => {
    const ca = await createTestCa();
    const err: unknown = await ca.signServingCertificate(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidServingRequestError);
    expect((err as InvalidServingRequestError).code).toBe('SPIFFE_INVALID_SERVING_REQUEST');
    expect((err as Error).message).toMatch(message);
  });

  it('accepts a wildcard first label', async () => {
    const ca = await createTestCa();
    const serving = await ca.signServingCertificate({ dnsNames: ['*.istio-system.svc'], ttlSeconds: 60 });
    expect(new X509Certificate(serving.certPem).subjectAltName).toBe('DNS:*.istio-system.svc');
  });
});
