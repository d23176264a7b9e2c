import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { silentLogger } from '@ambient-mesh/runtime';
import {
  createWorkloadCsr,
  parseWorkloadCsr,
  SpiffeId,
  type CertificateAuthority,
} from '@ambient-mesh/spiffe-certs';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import {
  csrOutcome,
  KubeCsrSigner,
  WORKLOAD_CSR_USAGES,
  type CsrApi,
  type CsrSpec,
} from './kube-csr-signer.ts';

const web = SpiffeId.parse('spiffe://cluster.local/ns/apps/sa/web');

/** A CSR API whose "signer" is a test CA, like cert-manager's CA issuer: leaf, then the CA chain. */
function fakeApi(ca: CertificateAuthority, behaviour: 'sign' | 'deny' | 'silent' = 'sign') {
  const created: CsrSpec[] = [];
  const approved: string[] = [];
  const deleted: string[] = [];
  const api: CsrApi = {
    create: spec => {
      created.push(spec);
      return Promise.resolve(`csr-workload-${created.length}`);
    },
    approve: name => {
      approved.push(name);
      return Promise.resolve();
    },
    waitForCertificate: async name => {
      if (behaviour === 'deny') return { ok: false, reason: 'Denied: PolicyDenied not allowed' };
      if (behaviour === 'silent')
        return { ok: false, reason: 'no certificate within 1s; is the signer running?' };
      const spec = created[Number(name.split('-').at(-1)) - 1]!;
      const csr = await parseWorkloadCsr(spec.requestPem);
      const issued = await ca.sign({
        csrPem: spec.requestPem,
        identity: SpiffeId.parse(csr.requestedUris[0]!),
      });
      return {
        ok: true,
        certificatePem: [issued.leafPem, ...issued.intermediatesPem, issued.rootBundlePem].join(''),
      };
    },
    delete: name => {
      deleted.push(name);
      return Promise.resolve();
    },
  };
  return { api, created, approved, deleted };
}

describe('KubeCsrSigner (EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API)', () => {
  it('has the workload CSR signed by the named signer, approved by istiod, and returns the full chain', async () => {
    const ca = await createTestCa({ intermediate: true });
    const fake = fakeApi(ca);
    const signer = new KubeCsrSigner({
      api: fake.api,
      signerName: 'clusterissuers.cert-manager.io/istio-ca',
      rootsPem: ca.trustBundle.pem,
      defaultTtlSeconds: 3600,
      logger: silentLogger(),
    });
    const csr = await createWorkloadCsr(web);
    const issued = await signer.sign({ csrPem: csr.csrPem, identity: web, ttlSeconds: 60 });
    expect(fake.created[0]).toMatchObject({
      signerName: 'clusterissuers.cert-manager.io/istio-ca',
      expirationSeconds: 600, // Kubernetes' minimum
      usages: WORKLOAD_CSR_USAGES,
    });
    expect(fake.approved).toEqual(['csr-workload-1']);
    expect(fake.deleted).toEqual(['csr-workload-1']);
    expect(issued.certChain).toHaveLength(3);
    expect(new X509Certificate(issued.leafPem).subjectAltName).toBe(`URI:${web.uri}`);
    expect(issued.certChain[1]).toBe(ca.intermediatesPem[0]);
    expect(issued.certChain[2]).toBe(ca.trustBundle.pem);
  });

  it('refuses a CSR that asks for another identity before creating anything', async () => {
    const ca = await createTestCa();
    const fake = fakeApi(ca);
    const signer = new KubeCsrSigner({
      api: fake.api,
      signerName: 'example.com/signer',
      rootsPem: ca.trustBundle.pem,
      defaultTtlSeconds: 3600,
      logger: silentLogger(),
    });
    const csr = await createWorkloadCsr(SpiffeId.parse('spiffe://cluster.local/ns/apps/sa/admin'));
    await expect(signer.sign({ csrPem: csr.csrPem, identity: web })).rejects.toMatchObject({
      code: 'ISTIOD_CERT_REQUEST_FAILED',
    });
    expect(fake.created).toEqual([]);
  });

  it('fails with ISTIOD_EXTERNAL_SIGNER_FAILED when the signer denies, stays silent, or chains elsewhere', async () => {
    const ca = await createTestCa();
    const other = await createTestCa();
    const csr = await createWorkloadCsr(web);
    for (const [signingCa, behaviour, message] of [
      [ca, 'deny', /Denied/],
      [ca, 'silent', /is the signer running/],
      [other, 'sign', /not usable/],
    ] as const) {
      const fake = fakeApi(signingCa, behaviour);
      const signer = new KubeCsrSigner({
        api: fake.api,
        signerName: 'example.com/signer',
        rootsPem: ca.trustBundle.pem,
        defaultTtlSeconds: 3600,
        logger: silentLogger(),
      });
      await expect(signer.sign({ csrPem: csr.csrPem, identity: web })).rejects.toMatchObject({
        code: 'ISTIOD_EXTERNAL_SIGNER_FAILED',
        message,
      });
      expect(fake.deleted).toEqual(['csr-workload-1']);
    }
  });

  it('reads the outcome of a CertificateSigningRequest object', () => {
    expect(csrOutcome({ status: {} })).toBeUndefined();
    expect(
      csrOutcome({
        status: { conditions: [{ type: 'Failed', status: 'True', reason: 'SignerError', message: 'x' }] },
      }),
    ).toEqual({ ok: false, reason: 'Failed: SignerError x' });
    expect(csrOutcome({ status: { certificate: Buffer.from('PEM').toString('base64') } })).toEqual({
      ok: true,
      certificatePem: 'PEM',
    });
  });
});
