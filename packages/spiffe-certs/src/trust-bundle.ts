import type { X509Certificate } from 'node:crypto';
import { InvalidCertificateError } from './errors.ts';
import { parseCertificates, type CertificateInput } from './pem.ts';

/**
 * A set of trusted root certificates (several during a root rotation or across meshes).
 * Immutable: `merge` returns a new bundle. Duplicates (same SHA-256 fingerprint) are dropped.
 */
export class TrustBundle {
  readonly roots: readonly X509Certificate[];
  /** All roots as concatenated PEM, the last element of a CreateCertificate response. */
  readonly pem: string;

  private constructor(roots: readonly X509Certificate[]) {
    const seen = new Set<string>();
    const unique: X509Certificate[] = [];
    for (const root of roots) {
      if (seen.has(root.fingerprint256)) continue;
      seen.add(root.fingerprint256);
      unique.push(root);
    }
    if (unique.length === 0) throw new InvalidCertificateError('a trust bundle needs at least one root');
    this.roots = Object.freeze(unique);
    this.pem = unique.map(r => r.toString()).join('');
    Object.freeze(this);
  }

  /**
   * Builds a bundle from PEM text (one or several concatenated roots), a list of PEM strings,
   * DER buffers or parsed certificates. Every root must be a CA certificate.
   */
  static from(roots: string | readonly CertificateInput[]): TrustBundle {
    const certs = parseCertificates(roots);
    for (const cert of certs) {
      if (!cert.ca)
        throw new InvalidCertificateError(`trust bundle entry ${cert.subject} is not a CA certificate`);
    }
    return new TrustBundle(certs);
  }

  /** This bundle plus the roots of `other`. */
  merge(other: TrustBundle | string | readonly CertificateInput[]): TrustBundle {
    const extra = other instanceof TrustBundle ? other.roots : TrustBundle.from(other).roots;
    return new TrustBundle([...this.roots, ...extra]);
  }

  get size(): number {
    return this.roots.length;
  }

  /** The root that issued and signed `cert`, if any. */
  findIssuer(cert: X509Certificate): X509Certificate | undefined {
    return this.roots.find(root => cert.checkIssued(root) && cert.verify(root.publicKey));
  }

  /** True when `cert` is byte-identical to one of the roots. */
  contains(cert: X509Certificate): boolean {
    return this.roots.some(root => root.fingerprint256 === cert.fingerprint256);
  }
}
