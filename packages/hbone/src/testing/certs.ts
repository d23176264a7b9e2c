/**
 * Test PKI for HBONE tests: a CA from spiffe-certs' testing entry and workload identities in the
 * shape the client and server take. Not part of the package's public API.
 */
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import type { HboneIdentity } from '../identity.ts';

export interface TestPki {
  readonly ca: CertificateAuthority;
  readonly trustDomain: string;
  /** A workload identity `spiffe://<td>/ns/<ns>/sa/<sa>` signed by this CA. */
  identity(sa: string, options?: IdentityOptions): Promise<HboneIdentity & { readonly id: string }>;
}

export interface IdentityOptions {
  readonly namespace?: string;
  /** Mint a certificate that expired an hour ago. */
  readonly expired?: boolean;
  /** A URI SAN other than the default SPIFFE ID (e.g. another trust domain); it becomes the identity's `id`. */
  readonly uri?: string;
}

export async function createTestPki(trustDomain = 'cluster.local'): Promise<TestPki> {
  const ca = await createTestCa({ trustDomain });
  return {
    ca,
    trustDomain,
    async identity(sa, options = {}) {
      const id = options.uri ?? `spiffe://${trustDomain}/ns/${options.namespace ?? 'default'}/sa/${sa}`;
      const creds = await issueRawCert(
        ca,
        id,
        options.expired === true ? { notBefore: new Date(Date.now() - 3 * 3600_000), ttlSeconds: 3600 } : {},
      );
      return { id, certChain: creds.certChain, privateKey: creds.privateKeyPem, roots: creds.roots };
    },
  };
}

/** PEM text of an identity, for tools that read files. */
export function identityPem(identity: HboneIdentity): { cert: string; key: string; roots: string } {
  const cert = typeof identity.certChain === 'string' ? identity.certChain : identity.certChain.join('');
  const key = typeof identity.privateKey === 'string' ? identity.privateKey : '';
  const roots =
    typeof identity.roots === 'string'
      ? identity.roots
      : 'pem' in identity.roots
        ? identity.roots.pem
        : identity.roots.join('');
  return { cert, key, roots };
}
