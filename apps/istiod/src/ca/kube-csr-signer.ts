/**
 * The Kubernetes CSR path (`EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API`, `K8S_SIGNER`): istiod as a
 * registration authority, as upstream.
 *
 * The CA service has already authenticated the caller and decided the identity. This signer
 * checks that the workload CSR asks for exactly that identity (a single URI SAN, nothing else,
 * since the external signer copies the CSR's SANs), creates a `certificates.k8s.io/v1`
 * CertificateSigningRequest for the signer, approves it, waits for the certificate, checks it
 * (identity, key, chain to the configured roots) and deletes the request.
 */
import type { KeyObject } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import {
  parseCertificates,
  parseWorkloadCsr,
  SpiffeId,
  TrustBundle,
  verifyPeerChain,
  type IssuedCertificate,
  type SignRequest,
} from '@ambient-mesh/spiffe-certs';
import { CertificateRequestError, ExternalSignerError } from '../errors.ts';

export const CSR_API_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
/** Usages upstream's RA asks for. */
export const WORKLOAD_CSR_USAGES = [
  'digital signature',
  'key encipherment',
  'server auth',
  'client auth',
] as const;
/** Kubernetes' minimum `expirationSeconds`. */
const MIN_EXPIRATION_SECONDS = 600;

export interface CsrSpec {
  readonly generateName: string;
  readonly requestPem: string;
  readonly signerName: string;
  readonly expirationSeconds: number;
  readonly usages: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export type CsrOutcome =
  { readonly ok: true; readonly certificatePem: string } | { readonly ok: false; readonly reason: string };

/** The CertificateSigningRequest calls the signer needs (the API server in production). */
export interface CsrApi {
  /** Creates the request; resolves with its name. */
  create(spec: CsrSpec): Promise<string>;
  /** Adds the `Approved` condition (the approval subresource). */
  approve(name: string, reason: string, message: string): Promise<void>;
  /** Resolves when `status.certificate` is set, or the request is Denied/Failed, or at the deadline. */
  waitForCertificate(name: string, timeoutMs: number): Promise<CsrOutcome>;
  delete(name: string): Promise<void>;
}

export interface KubeCsrSignerOptions {
  readonly api: CsrApi;
  /** `K8S_SIGNER`, e.g. `clusterissuers.cert-manager.io/istio-ca`. */
  readonly signerName: string;
  /** The roots the signer's certificates chain to (published and returned as the last element). */
  readonly rootsPem: string;
  readonly defaultTtlSeconds: number;
  readonly timeoutMs?: number;
  readonly logger: Logger;
}

export class KubeCsrSigner {
  readonly roots: TrustBundle;
  readonly #opts: KubeCsrSignerOptions;

  constructor(opts: KubeCsrSignerOptions) {
    this.#opts = opts;
    this.roots = TrustBundle.from(opts.rootsPem);
  }

  async sign(request: SignRequest): Promise<IssuedCertificate> {
    const identity = SpiffeId.parse(request.identity.uri);
    const csr = await parseWorkloadCsr(request.csrPem);
    if (
      csr.requestedUris.length !== 1 ||
      csr.requestedUris[0] !== identity.uri ||
      csr.requestedOtherNames.length > 0
    ) {
      const asked = [...csr.requestedUris, ...csr.requestedOtherNames].join(', ') || 'no SAN';
      throw new CertificateRequestError(
        `the CSR must ask for exactly ${identity.uri} (the external signer copies its SANs), it asks for ${asked}`,
      );
    }
    const ttl =
      request.ttlSeconds === undefined || request.ttlSeconds <= 0
        ? this.#opts.defaultTtlSeconds
        : request.ttlSeconds;
    const { api, logger } = this.#opts;
    let name: string;
    try {
      name = await api.create({
        generateName: 'csr-workload-',
        requestPem: request.csrPem,
        signerName: this.#opts.signerName,
        expirationSeconds: Math.max(MIN_EXPIRATION_SECONDS, Math.floor(ttl)),
        usages: WORKLOAD_CSR_USAGES,
        labels: { 'security.istio.io/csr-for': identity.namespace },
      });
    } catch (err) {
      throw new ExternalSignerError(`cannot create a CertificateSigningRequest: ${errorMessage(err)}`, err);
    }
    try {
      await api.approve(name, 'IstiodApproved', `istiod authenticated ${identity.uri}`);
      const outcome = await api.waitForCertificate(name, this.#opts.timeoutMs ?? 30_000);
      if (!outcome.ok) {
        throw new ExternalSignerError(
          `CertificateSigningRequest ${name} for signer ${this.#opts.signerName}: ${outcome.reason}`,
        );
      }
      const issued = this.#check(outcome.certificatePem, identity, csr.publicKey);
      logger.debug(
        { csr: name, identity: identity.uri, serial: issued.serialNumber },
        'external signer issued a certificate',
      );
      return issued;
    } catch (err) {
      if (err instanceof ExternalSignerError) throw err;
      throw new ExternalSignerError(`CertificateSigningRequest ${name}: ${errorMessage(err)}`, err);
    } finally {
      api.delete(name).catch((err: unknown) => {
        logger.warn({ csr: name, err: errorMessage(err) }, 'cannot delete the CertificateSigningRequest');
      });
    }
  }

  #check(certificatePem: string, identity: SpiffeId, publicKey: KeyObject): IssuedCertificate {
    const certs = parseCertificates(certificatePem);
    // Signers may append the root; the response carries the roots once, as its last element.
    const chain = certs.filter(c => !this.roots.contains(c));
    const leaf = chain[0];
    if (leaf === undefined) throw new ExternalSignerError('the signer returned no certificate');
    const verified = verifyPeerChain(
      chain.map(c => c.toString()),
      { bundle: this.roots, trustDomain: identity.trustDomain, expectedIdentities: [identity] },
    );
    if (!verified.ok) {
      throw new ExternalSignerError(
        `the signed certificate is not usable: ${verified.error.message}`,
        verified.error,
      );
    }
    const leafKey = leaf.publicKey.export({ type: 'spki', format: 'der' });
    if (!leafKey.equals(publicKey.export({ type: 'spki', format: 'der' }))) {
      throw new ExternalSignerError('the signed certificate does not carry the CSR public key');
    }
    const leafPem = leaf.toString();
    const intermediatesPem = chain.slice(1).map(c => c.toString());
    const rootBundlePem = this.roots.pem;
    return {
      identity,
      certChain: [leafPem, ...intermediatesPem, rootBundlePem],
      leafPem,
      intermediatesPem,
      rootBundlePem,
      serialNumber: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
  }
}

/** A CertificateSigningRequest object as the API server returns it (the fields read). */
export interface CsrObject {
  readonly metadata?: { readonly name?: string };
  readonly status?: {
    readonly certificate?: string;
    readonly conditions?: readonly {
      readonly type?: string;
      readonly status?: string;
      readonly message?: string;
      readonly reason?: string;
    }[];
  };
}

/** The outcome a CSR object shows so far: issued, refused, or still pending (`undefined`). */
export function csrOutcome(obj: CsrObject): CsrOutcome | undefined {
  for (const c of obj.status?.conditions ?? []) {
    if ((c.type === 'Denied' || c.type === 'Failed') && c.status === 'True') {
      return { ok: false, reason: `${c.type}: ${c.reason ?? ''} ${c.message ?? ''}`.trim() };
    }
  }
  const cert = obj.status?.certificate;
  if (cert !== undefined && cert !== '')
    return { ok: true, certificatePem: Buffer.from(cert, 'base64').toString('utf8') };
  return undefined;
}
