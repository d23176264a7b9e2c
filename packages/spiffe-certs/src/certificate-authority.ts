import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { systemClock } from './clock.ts';
import { parseWorkloadCsr } from './csr.ts';
import { CaConfigError, InvalidServingRequestError, TtlTooLongError } from './errors.ts';
import { parseCertificates } from './pem.ts';
import { SpiffeId, DEFAULT_TRUST_DOMAIN } from './spiffe-id.ts';
import { TrustBundle } from './trust-bundle.ts';
import { buildTrustedPath } from './verify.ts';
import {
  createExportableSelfSignedRoot,
  createSelfSignedRoot,
  loadSigner,
  signLeaf,
  signServingLeaf,
  wholeSeconds,
  type Signer,
} from './certificate-signer.ts';
import type { CaKeyAlgorithm } from './ca-key-algorithm.ts';
import { registerSigner, signerOf } from './signer-registry.ts';

/** Istio's defaults for workload certificates and the self-signed root (docs/protocols.md#certificates). */
export const CA_DEFAULTS = {
  /** `DEFAULT_WORKLOAD_CERT_TTL`: used when a request asks for 0 or less. */
  workloadCertTtlSeconds: 24 * 60 * 60,
  /** `MAX_WORKLOAD_CERT_TTL`: longer requests fail with `SPIFFE_TTL_TOO_LONG`. */
  maxWorkloadCertTtlSeconds: 90 * 24 * 60 * 60,
  /** NotBefore is backdated this much to absorb clock skew. */
  backdateSeconds: 120,
  /** Self-signed root lifetime: 10 years. */
  selfSignedRootTtlSeconds: 3650 * 24 * 60 * 60,
  /** Self-signed root key: RSA 2048 like `CITADEL_SELF_SIGNED_CA_RSA_KEY_SIZE`. */
  selfSignedKeyAlgorithm: 'rsa-2048' as CaKeyAlgorithm,
} as const;

/** File names of Istio's plug-in CA layout (the `cacerts` secret). */
export const CACERTS_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;

export interface CaOptions {
  /** Time source, in ms since the epoch. */
  readonly now?: () => number;
  readonly defaultTtlSeconds?: number;
  readonly maxTtlSeconds?: number;
  /** Extra roots to publish in the bundle (e.g. the previous root during a root rotation). */
  readonly additionalRoots?: string | readonly string[];
}

export interface SelfSignedCaOptions extends CaOptions {
  /** Written into the root's subject organization, as Istio does. Default `cluster.local`. */
  readonly trustDomain?: string;
  /** Default `rsa-2048` (Istio's); `ecdsa-p256` is much faster to create and sign with. */
  readonly keyAlgorithm?: CaKeyAlgorithm;
  readonly rootTtlSeconds?: number;
  /**
   * Keep the root's private key exportable, so {@link CertificateAuthority.exportCaCerts} can
   * return it (to persist the root, as istiod does in Secret `istio-ca-secret`). Default false.
   */
  readonly extractable?: boolean;
}

/** The contents of Istio's `cacerts` files, keyed by file name (the data of a `cacerts`-style Secret). */
export interface CacertsData {
  readonly 'ca-cert.pem': string;
  readonly 'ca-key.pem': string;
  readonly 'root-cert.pem': string;
  /** Empty when the signing certificate is the root. */
  readonly 'cert-chain.pem': string;
}

export interface ServingCertificateRequest {
  /** DNS SANs, e.g. `istiod.istio-system.svc`; a leading `*.` label is allowed. */
  readonly dnsNames: readonly string[];
  /** IP SANs in text form. */
  readonly ipAddresses?: readonly string[];
  /** Lifetime; capped at the signing certificate's NotAfter. Must be positive. */
  readonly ttlSeconds: number;
}

export interface ServingCertificate {
  /** The leaf certificate (PEM). */
  readonly certPem: string;
  /** The leaf's fresh ECDSA P-256 private key (PKCS#8 PEM). */
  readonly keyPem: string;
  /** What a TLS server presents: the leaf, then each intermediate. */
  readonly certChainPem: string;
  /** The roots a client should trust. */
  readonly rootBundlePem: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function validDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  const rest = labels[0] === '*' && labels.length > 1 ? labels.slice(1) : labels;
  return rest.every(label => DNS_LABEL.test(label));
}

/** The PEM contents of Istio's `cacerts` files. `certChainPem` may be omitted. */
export interface PluggedCaCerts {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly rootCertPem: string;
  readonly certChainPem?: string;
}

export interface SignRequest {
  /** The requester's PEM CSR: only its public key (and its self-signature) is used. */
  readonly csrPem: string;
  /** The authenticated identity decided by the caller; the only SAN of the certificate. */
  readonly identity: SpiffeId;
  /** Requested lifetime; 0, negative or absent means the default (24 h). */
  readonly ttlSeconds?: number;
}

export interface IssuedCertificate {
  readonly identity: SpiffeId;
  /**
   * Shaped like `IstioCertificateResponse.cert_chain`: the leaf, then each intermediate, then
   * the root bundle (one element that may hold several roots). Every element ends in `\n`.
   */
  readonly certChain: readonly string[];
  readonly leafPem: string;
  readonly intermediatesPem: readonly string[];
  readonly rootBundlePem: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Signs workload certificates for identities its caller has authenticated.
 *
 * The CA never trusts what a CSR asks for: the SAN is rebuilt from `SignRequest.identity`,
 * the subject is empty, and only the CSR's public key is kept (after its self-signature is
 * checked). Whether a caller may obtain an identity (token review, node authorization for
 * impersonation) is the caller's decision, made before calling {@link sign}.
 */
export class CertificateAuthority {
  /** The roots published to workloads (the last element of every response). */
  readonly trustBundle: TrustBundle;
  /** The certificate that signs workload certificates (the root itself when self-signed). */
  readonly signingCertificate: X509Certificate;
  /** Intermediates between the signing certificate and the root, signing certificate first. */
  readonly intermediatesPem: readonly string[];
  readonly #now: () => number;
  readonly #defaultTtlSeconds: number;
  readonly #maxTtlSeconds: number;
  readonly #exportable: CacertsData | undefined;

  private constructor(
    signer: Signer,
    bundle: TrustBundle,
    intermediatesPem: readonly string[],
    options: CaOptions,
    exportable?: CacertsData,
  ) {
    registerSigner(this, signer);
    this.#exportable = exportable;
    this.signingCertificate = signer.nodeCert;
    this.trustBundle = options.additionalRoots === undefined ? bundle : bundle.merge(options.additionalRoots);
    this.intermediatesPem = Object.freeze([...intermediatesPem]);
    this.#now = options.now ?? (() => systemClock.now());
    this.#defaultTtlSeconds = options.defaultTtlSeconds ?? CA_DEFAULTS.workloadCertTtlSeconds;
    this.#maxTtlSeconds = options.maxTtlSeconds ?? CA_DEFAULTS.maxWorkloadCertTtlSeconds;
  }

  /** A CA with a freshly generated self-signed root (what istiod does without `cacerts`). */
  static async createSelfSigned(options: SelfSignedCaOptions = {}): Promise<CertificateAuthority> {
    const now = (options.now ?? systemClock.now)();
    const rootOptions = {
      keyAlgorithm: options.keyAlgorithm ?? CA_DEFAULTS.selfSignedKeyAlgorithm,
      organization: options.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      notBefore: wholeSeconds(now - CA_DEFAULTS.backdateSeconds * 1000),
      notAfter: wholeSeconds(now + (options.rootTtlSeconds ?? CA_DEFAULTS.selfSignedRootTtlSeconds) * 1000),
    };
    if (options.extractable !== true) {
      const signer = await createSelfSignedRoot(rootOptions);
      return new CertificateAuthority(signer, TrustBundle.from([signer.nodeCert]), [], options);
    }
    const { signer, privateKeyPem } = await createExportableSelfSignedRoot(rootOptions);
    const certPem = signer.nodeCert.toString();
    return new CertificateAuthority(signer, TrustBundle.from([signer.nodeCert]), [], options, {
      'ca-cert.pem': certPem,
      'ca-key.pem': privateKeyPem,
      'root-cert.pem': certPem,
      'cert-chain.pem': '',
    });
  }

  /**
   * A CA from plug-in key material in Istio's `cacerts` layout. The signing certificate must
   * chain (through `cert-chain.pem`) to a root of `root-cert.pem`. Throws {@link CaConfigError}.
   */
  static async fromPluggedCerts(
    certs: PluggedCaCerts,
    options: CaOptions = {},
  ): Promise<CertificateAuthority> {
    const signer = await loadSigner(certs.caCertPem, certs.caKeyPem);
    let bundle: TrustBundle;
    let chain: X509Certificate[];
    try {
      bundle = TrustBundle.from(certs.rootCertPem);
      chain =
        certs.certChainPem === undefined || certs.certChainPem.trim() === ''
          ? []
          : parseCertificates(certs.certChainPem);
    } catch (err) {
      throw new CaConfigError('root-cert.pem or cert-chain.pem does not hold valid certificates', err);
    }
    const signing = signer.nodeCert;
    let path: X509Certificate[];
    try {
      path = buildTrustedPath(signing, chain, bundle);
    } catch (err) {
      throw new CaConfigError(
        'ca-cert.pem does not chain to a root of root-cert.pem through cert-chain.pem',
        err,
      );
    }
    // Everything on the path except the root goes between the leaf and the bundle.
    const intermediates = path.filter(cert => !bundle.contains(cert)).map(cert => cert.toString());
    return new CertificateAuthority(signer, bundle, intermediates, options, {
      'ca-cert.pem': certs.caCertPem,
      'ca-key.pem': certs.caKeyPem,
      'root-cert.pem': certs.rootCertPem,
      'cert-chain.pem': certs.certChainPem ?? '',
    });
  }

  /** {@link fromPluggedCerts} reading the files of a `cacerts` directory. */
  static async fromCacertsDirectory(
    directory: string,
    options: CaOptions = {},
  ): Promise<CertificateAuthority> {
    const read = async (name: string, required: boolean): Promise<string | undefined> => {
      try {
        return await readFile(join(directory, name), 'utf8');
      } catch (err) {
        if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new CaConfigError(`cannot read ${name} in the cacerts directory ${directory}`, err);
      }
    };
    const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([
      read(CACERTS_FILES.caCert, true),
      read(CACERTS_FILES.caKey, true),
      read(CACERTS_FILES.rootCert, true),
      read(CACERTS_FILES.certChain, false),
    ]);
    return CertificateAuthority.fromPluggedCerts(
      certChainPem === undefined
        ? { caCertPem: caCertPem!, caKeyPem: caKeyPem!, rootCertPem: rootCertPem! }
        : { caCertPem: caCertPem!, caKeyPem: caKeyPem!, rootCertPem: rootCertPem!, certChainPem },
      options,
    );
  }

  /**
   * Signs a certificate for `request.identity`. Rejects with `SPIFFE_TTL_TOO_LONG`,
   * or `SPIFFE_INVALID_CSR`.
   */
  async sign(request: SignRequest): Promise<IssuedCertificate> {
    // Re-parse: cheap, and a value that is not a strictly valid identity never reaches a SAN.
    const identity = SpiffeId.parse(request.identity.uri);
    const ttlSeconds = this.#ttlFor(request.ttlSeconds);
    const csr = await parseWorkloadCsr(request.csrPem);
    const now = this.#now();
    const signerNotAfter = new Date(this.signingCertificate.validTo).getTime();
    const notBefore = wholeSeconds(now - CA_DEFAULTS.backdateSeconds * 1000);
    // Never outlive the signing certificate: such a leaf could not be verified anyway.
    const notAfter = wholeSeconds(Math.min(now + ttlSeconds * 1000, signerNotAfter));
    const leaf = await signLeaf(signerOf(this), {
      uri: identity.uri,
      publicKey: csr.publicKey,
      notBefore,
      notAfter,
    });
    const leafPem = leaf.toString();
    const rootBundlePem = this.trustBundle.pem;
    return {
      identity,
      certChain: [leafPem, ...this.intermediatesPem, rootBundlePem],
      leafPem,
      intermediatesPem: this.intermediatesPem,
      rootBundlePem,
      serialNumber: leaf.serialNumber,
      notBefore,
      notAfter,
    };
  }

  /**
   * The CA's key material in the `cacerts` layout: what {@link fromPluggedCerts} was given, or
   * for {@link createSelfSigned} with `extractable: true` the root as both `ca-cert.pem` and
   * `root-cert.pem` with its PKCS#8 key (`additionalRoots` are not included). Loading the result
   * with {@link fromPluggedCerts} gives an equivalent CA. Throws {@link CaConfigError} for a
   * self-signed CA created without `extractable`.
   */
  exportCaCerts(): CacertsData {
    if (this.#exportable === undefined) {
      throw new CaConfigError(
        'the self-signed root key is not exportable; create the CA with createSelfSigned({ extractable: true })',
      );
    }
    return { ...this.#exportable };
  }

  /**
   * Signs a TLS serving certificate (DNS and IP SANs, no SPIFFE identity) with a fresh
   * ECDSA P-256 key, e.g. istiod's own certificate for `istiod.istio-system.svc`. Whether the
   * names are the caller's to claim is the caller's decision. Rejects with
   * `SPIFFE_INVALID_SERVING_REQUEST`.
   */
  async signServingCertificate(request: ServingCertificateRequest): Promise<ServingCertificate> {
    const dnsNames = [...new Set(request.dnsNames)];
    const ipAddresses = [...new Set(request.ipAddresses ?? [])];
    if (dnsNames.length + ipAddresses.length === 0) {
      throw new InvalidServingRequestError('no DNS name and no IP address');
    }
    const badName = dnsNames.find(name => !validDnsName(name));
    if (badName !== undefined)
      throw new InvalidServingRequestError(`${JSON.stringify(badName)} is not a DNS name`);
    const badIp = ipAddresses.find(ip => isIP(ip) === 0);
    if (badIp !== undefined)
      throw new InvalidServingRequestError(`${JSON.stringify(badIp)} is not an IP address`);
    if (!Number.isFinite(request.ttlSeconds) || request.ttlSeconds <= 0) {
      throw new InvalidServingRequestError(`TTL ${String(request.ttlSeconds)}s is not positive`);
    }
    const now = this.#now();
    const signerNotAfter = new Date(this.signingCertificate.validTo).getTime();
    const notBefore = wholeSeconds(now - CA_DEFAULTS.backdateSeconds * 1000);
    const notAfter = wholeSeconds(Math.min(now + request.ttlSeconds * 1000, signerNotAfter));
    const { cert, privateKeyPem } = await signServingLeaf(signerOf(this), {
      dnsNames,
      ipAddresses,
      notBefore,
      notAfter,
    });
    const certPem = cert.toString();
    return {
      certPem,
      keyPem: privateKeyPem,
      certChainPem: [certPem, ...this.intermediatesPem].join(''),
      rootBundlePem: this.trustBundle.pem,
      dnsNames,
      ipAddresses,
      serialNumber: cert.serialNumber,
      notBefore,
      notAfter,
    };
  }

  #ttlFor(requested: number | undefined): number {
    if (requested === undefined || Number.isNaN(requested) || requested <= 0) return this.#defaultTtlSeconds;
    if (requested > this.#maxTtlSeconds) throw new TtlTooLongError(requested, this.#maxTtlSeconds);
    return Math.floor(requested);
  }
}
