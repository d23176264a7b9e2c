import type { X509Certificate } from 'node:crypto';
import {
  CertificateExpiredError,
  CertificateNotYetValidError,
  IdentityMismatchError,
  InvalidCertificateError,
  SpiffeCertsError,
  TrustDomainMismatchError,
  UntrustedChainError,
} from './errors.ts';
import { parseCertificates, type CertificateInput } from './pem.ts';
import { spiffeIdFromCertificateDer } from './san.ts';
import type { SpiffeId } from './spiffe-id.ts';
import type { TrustBundle } from './trust-bundle.ts';

/** Longest accepted path from a leaf to its root (leaf and root included). */
export const MAX_CHAIN_DEPTH = 8;

export interface PeerVerificationPolicy {
  /** The roots the chain must lead to. */
  readonly bundle: TrustBundle;
  /** Require the peer identity to be in this trust domain (server side: our own). */
  readonly trustDomain?: string;
  /** Require the peer identity to be one of these (client side: the destination's identities). */
  readonly expectedIdentities?: readonly (SpiffeId | string)[];
  /** The time to check validity against, in ms since the epoch; defaults to `Date.now()`. */
  readonly now?: () => number;
}

export type VerifyResult =
  | { readonly ok: true; readonly identity: SpiffeId; readonly leaf: X509Certificate }
  | { readonly ok: false; readonly error: SpiffeCertsError };

/**
 * Finds the path from `leaf` through `intermediates` to a root of `bundle`, checking every
 * signature and that each issuer is a CA. Returns the path (leaf first, root last).
 * Throws {@link UntrustedChainError}.
 */
export function buildTrustedPath(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  bundle: TrustBundle,
): X509Certificate[] {
  const path = [leaf];
  let current = leaf;
  for (let depth = 1; depth < MAX_CHAIN_DEPTH; depth++) {
    const root = bundle.findIssuer(current);
    if (root !== undefined) {
      if (root.fingerprint256 !== current.fingerprint256) path.push(root);
      return path;
    }
    const issuer = intermediates.find(
      c => c.ca && !path.includes(c) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (issuer === undefined) {
      throw new UntrustedChainError(
        `no trusted root or presented intermediate issued "${distinguishedName(current.issuer)}"`,
      );
    }
    path.push(issuer);
    current = issuer;
  }
  throw new UntrustedChainError(`the chain is longer than ${MAX_CHAIN_DEPTH} certificates`);
}

/** Throws when `cert` is not valid at `nowMs`. */
export function checkValidity(cert: X509Certificate, nowMs: number): void {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const name = describe(cert);
  if (nowMs < notBefore.getTime()) throw new CertificateNotYetValidError(name, notBefore);
  if (nowMs > notAfter.getTime()) throw new CertificateExpiredError(name, notAfter);
}

/** Node's one-line-per-RDN name as one line; an empty name is `undefined` at run time. */
function distinguishedName(name: string | undefined): string {
  return (name ?? '').replace(/\n/g, ', ');
}

function describe(cert: X509Certificate): string {
  const subject = distinguishedName(cert.subject);
  return subject.length > 0 ? `"${subject}"` : `serial ${cert.serialNumber}`;
}

/**
 * Verifies a peer's chain (leaf first, then intermediates; extra PEM blocks in one string are
 * split) against a bundle of roots: signatures up to a root, the validity window of every
 * certificate on the path, a non-CA leaf, the leaf's SPIFFE identity read from the raw DER,
 * then the policy's trust domain and expected identities. Never throws.
 */
export function verifyPeerChain(
  chain: readonly CertificateInput[] | string,
  policy: PeerVerificationPolicy,
): VerifyResult {
  try {
    const certs = parseCertificates(chain);
    const leaf = certs[0];
    if (leaf === undefined) throw new InvalidCertificateError('the peer chain is empty');
    if (leaf.ca) throw new InvalidCertificateError('the peer presented a CA certificate as its leaf');
    const path = buildTrustedPath(leaf, certs.slice(1), policy.bundle);
    const nowMs = policy.now === undefined ? Date.now() : policy.now();
    for (const cert of path) checkValidity(cert, nowMs);
    const identity = spiffeIdFromCertificateDer(leaf.raw);
    checkIdentity(identity, policy);
    return { ok: true, identity, leaf };
  } catch (err) {
    if (err instanceof SpiffeCertsError) return { ok: false, error: err };
    return { ok: false, error: new InvalidCertificateError('verification failed unexpectedly', err) };
  }
}

/**
 * The leaf-only part of {@link verifyPeerChain}: a non-CA leaf inside its validity window with a
 * valid SPIFFE identity that satisfies the policy. For when the chain was verified elsewhere.
 */
export function verifyPeerLeaf(
  leafInput: CertificateInput,
  policy: Omit<PeerVerificationPolicy, 'bundle'>,
): VerifyResult {
  try {
    const leaf = parseCertificates([leafInput])[0]!;
    if (leaf.ca) throw new InvalidCertificateError('the peer presented a CA certificate as its leaf');
    checkValidity(leaf, policy.now === undefined ? Date.now() : policy.now());
    const identity = spiffeIdFromCertificateDer(leaf.raw);
    checkIdentity(identity, policy);
    return { ok: true, identity, leaf };
  } catch (err) {
    if (err instanceof SpiffeCertsError) return { ok: false, error: err };
    return { ok: false, error: new InvalidCertificateError('verification failed unexpectedly', err) };
  }
}

/** Applies the trust-domain and expected-identity parts of a policy. Throws the typed error. */
export function checkIdentity(identity: SpiffeId, policy: Omit<PeerVerificationPolicy, 'bundle'>): void {
  if (policy.trustDomain !== undefined && identity.trustDomain !== policy.trustDomain) {
    throw new TrustDomainMismatchError(policy.trustDomain, identity.trustDomain);
  }
  const expected = policy.expectedIdentities;
  if (expected !== undefined && !expected.some(e => identity.equals(e))) {
    throw new IdentityMismatchError(
      identity.uri,
      expected.map(e => (typeof e === 'string' ? e : e.uri)),
    );
  }
}
