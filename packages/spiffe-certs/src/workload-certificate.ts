import type { X509Certificate } from 'node:crypto';
import { InvalidCertificateError } from './errors.ts';
import { parseCertificates } from './pem.ts';
import { spiffeIdFromCertificateDer } from './san.ts';
import type { SpiffeId } from './spiffe-id.ts';
import type { TlsCredentials } from './tls.ts';
import { TrustBundle } from './trust-bundle.ts';

/**
 * A workload's certificate, its key and the roots it trusts: what the certificate cache holds
 * per identity and what mTLS needs. Immutable.
 */
export class WorkloadCertificate {
  /** The identity in the leaf's URI SAN. */
  readonly identity: SpiffeId;
  readonly leaf: X509Certificate;
  /** Leaf PEM first, then intermediates (no roots): what a TLS endpoint sends. */
  readonly certChain: readonly string[];
  /** PKCS#8 PEM private key of the leaf. */
  readonly privateKeyPem: string;
  /** The roots to verify peers with. */
  readonly roots: TrustBundle;
  readonly notBefore: Date;
  readonly notAfter: Date;

  constructor(certChain: readonly string[], privateKeyPem: string, roots: TrustBundle) {
    const certs = parseCertificates(certChain);
    const leaf = certs[0];
    if (leaf === undefined) throw new InvalidCertificateError('a workload certificate needs a leaf');
    this.leaf = leaf;
    this.identity = spiffeIdFromCertificateDer(leaf.raw);
    this.certChain = Object.freeze(certs.map(c => c.toString()));
    this.privateKeyPem = privateKeyPem;
    this.roots = roots;
    this.notBefore = new Date(leaf.validFrom);
    this.notAfter = new Date(leaf.validTo);
    Object.freeze(this);
  }

  /**
   * From a CreateCertificate response (`cert_chain`: leaf, intermediates, and last the root
   * bundle) and the key the CSR was made with.
   */
  static fromCreateCertificateResponse(
    certChain: readonly string[],
    privateKeyPem: string,
  ): WorkloadCertificate {
    if (certChain.length < 2) {
      throw new InvalidCertificateError(
        `a CreateCertificate response holds the leaf and a root bundle, got ${certChain.length} element(s)`,
      );
    }
    const roots = TrustBundle.from(certChain[certChain.length - 1]!);
    return new WorkloadCertificate(certChain.slice(0, -1), privateKeyPem, roots);
  }

  /** When rotation should start: half-way through the lifetime (ztunnel's `refresh_at`). */
  get refreshAt(): Date {
    const nb = this.notBefore.getTime();
    return new Date(nb + (this.notAfter.getTime() - nb) / 2);
  }

  /** True when `nowMs` is inside the leaf's validity window. */
  isValidAt(nowMs: number): boolean {
    return nowMs >= this.notBefore.getTime() && nowMs <= this.notAfter.getTime();
  }

  /** Credentials for the node:tls helpers. */
  get tlsCredentials(): TlsCredentials {
    return { certChain: this.certChain, privateKey: this.privateKeyPem, roots: this.roots };
  }
}
