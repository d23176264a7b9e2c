// Test helpers for packages that need workload certificates: mint a CA and certificates fast,
// including the broken ones (expired, foreign trust domain, foreign root, malformed SAN).
// Not for production use: these bypass the CA's request checks.
import type { CaKeyAlgorithm } from '../ca-key-algorithm.ts';
import { CertificateAuthority } from '../certificate-authority.ts';
import { createIntermediate, createSelfSignedRoot, signLeaf, wholeSeconds } from '../certificate-signer.ts';
import { signerOf } from '../signer-registry.ts';
import type { CertificateFetcher } from '../certificate-cache.ts';
import { createWorkloadCsr, generateWorkloadKeyPair } from '../csr.ts';
import { SpiffeId, DEFAULT_TRUST_DOMAIN } from '../spiffe-id.ts';
import type { TlsCredentials } from '../tls.ts';
import type { TrustBundle } from '../trust-bundle.ts';
import { WorkloadCertificate } from '../workload-certificate.ts';
import type { PluggedCaCerts } from '../certificate-authority.ts';

const HOUR_MS = 60 * 60 * 1000;
const YEAR_MS = 365 * 24 * HOUR_MS;

export interface TestCaOptions {
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** Default `ecdsa-p256` (fast); pass `rsa-2048` to test Istio's default root. */
  readonly keyAlgorithm?: CaKeyAlgorithm;
  /** Sign workload certificates with an intermediate under the root (plug-in CA layout). */
  readonly intermediate?: boolean;
  /** The CA's clock, in ms since the epoch. */
  readonly now?: () => number;
}

/** Key material in Istio's `cacerts` layout: a root and an intermediate that signs. */
export async function createTestPluggedCerts(options: TestCaOptions = {}): Promise<PluggedCaCerts> {
  const now = (options.now ?? Date.now)();
  const validity = { notBefore: wholeSeconds(now - HOUR_MS), notAfter: wholeSeconds(now + 10 * YEAR_MS) };
  const keyAlgorithm = options.keyAlgorithm ?? 'ecdsa-p256';
  const organization = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const root = await createSelfSignedRoot({ keyAlgorithm, organization, ...validity });
  const intermediate = await createIntermediate(root, { keyAlgorithm, organization, ...validity });
  const rootPem = root.nodeCert.toString();
  const caCertPem = intermediate.signer.nodeCert.toString();
  return {
    caCertPem,
    caKeyPem: intermediate.privateKeyPem,
    rootCertPem: rootPem,
    certChainPem: caCertPem + rootPem,
  };
}

/** A CA for tests: self-signed ECDSA root by default, or root + intermediate. */
export async function createTestCa(options: TestCaOptions = {}): Promise<CertificateAuthority> {
  const caOptions = options.now === undefined ? {} : { now: options.now };
  if (options.intermediate === true) {
    return CertificateAuthority.fromPluggedCerts(await createTestPluggedCerts(options), caOptions);
  }
  return CertificateAuthority.createSelfSigned({
    ...caOptions,
    trustDomain: options.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    keyAlgorithm: options.keyAlgorithm ?? 'ecdsa-p256',
  });
}

export interface IssueOptions {
  /** NotAfter is `notBefore` (or now) plus this; default 24 h. No maximum: tests may mint anything. */
  readonly ttlSeconds?: number;
  /**
   * Default: now minus 2 minutes, as the CA does (NotAfter then counts from now). Put it in the
   * past to mint expired certificates.
   */
  readonly notBefore?: Date;
}

/** Credentials whose SAN may be anything (see {@link issueRawCert}). */
export interface TestCredentials extends TlsCredentials {
  readonly certChain: readonly string[];
  readonly privateKeyPem: string;
  readonly leafPem: string;
  readonly roots: TrustBundle;
}

/**
 * Mints a certificate for any URI SAN, byte for byte (e.g. with an embedded NUL or percent
 * escapes), signed by `ca`'s key. Use it to test that verification refuses it.
 */
export async function issueRawCert(
  ca: CertificateAuthority,
  uri: string,
  options: IssueOptions = {},
): Promise<TestCredentials> {
  const keys = await generateWorkloadKeyPair();
  const start = options.notBefore?.getTime() ?? Date.now();
  const notBefore = wholeSeconds(options.notBefore === undefined ? start - 2 * 60 * 1000 : start);
  const notAfter = wholeSeconds(start + (options.ttlSeconds ?? 24 * 60 * 60) * 1000);
  const leaf = await signLeaf(signerOf(ca), { uri, publicKey: keys.publicKey, notBefore, notAfter });
  const leafPem = leaf.toString();
  return {
    certChain: [leafPem, ...ca.intermediatesPem],
    privateKey: keys.privateKeyPem,
    privateKeyPem: keys.privateKeyPem,
    leafPem,
    roots: ca.trustBundle,
  };
}

/**
 * Mints a workload certificate for `identity` signed by `ca`, skipping the CSR round trip and
 * the TTL limits. A foreign trust domain is just another identity string; a foreign root is
 * another {@link createTestCa}.
 */
export async function issueWorkloadCert(
  ca: CertificateAuthority,
  identity: SpiffeId | string,
  options: IssueOptions = {},
): Promise<WorkloadCertificate> {
  const id = typeof identity === 'string' ? SpiffeId.parse(identity) : identity;
  const raw = await issueRawCert(ca, id.uri, options);
  return new WorkloadCertificate(raw.certChain, raw.privateKeyPem, raw.roots);
}

/**
 * A {@link CertificateFetcher} that goes through the real path: a CSR, `ca.sign` with the
 * requested identity, then the CreateCertificate-shaped response.
 */
export function createLocalFetcher(
  ca: CertificateAuthority,
  options: { readonly ttlSeconds?: number } = {},
): CertificateFetcher {
  return async identity => {
    const csr = await createWorkloadCsr(identity);
    const issued = await ca.sign(
      options.ttlSeconds === undefined
        ? { csrPem: csr.csrPem, identity }
        : { csrPem: csr.csrPem, identity, ttlSeconds: options.ttlSeconds },
    );
    return WorkloadCertificate.fromCreateCertificateResponse(issued.certChain, csr.privateKeyPem);
  };
}
