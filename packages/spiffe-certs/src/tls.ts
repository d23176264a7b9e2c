import type { KeyObject } from 'node:crypto';
import type {
  ConnectionOptions,
  PeerCertificate,
  SecureContextOptions,
  TlsOptions,
  TLSSocket,
} from 'node:tls';
import type { SpiffeCertsError } from './errors.ts';
import { InvalidCertificateError, NoPeerCertificateError, UntrustedChainError } from './errors.ts';
import type { SpiffeId } from './spiffe-id.ts';
import { TrustBundle } from './trust-bundle.ts';
import { verifyPeerChain, verifyPeerLeaf, type PeerVerificationPolicy, type VerifyResult } from './verify.ts';

/** What a workload needs for mTLS. */
export interface TlsCredentials {
  /** The leaf first, then intermediates (PEM strings; do not include the roots). */
  readonly certChain: readonly string[] | string;
  /** The leaf's private key (PEM or KeyObject). */
  readonly privateKey: string | Buffer | KeyObject;
  /** Roots used to verify peers: a bundle, or PEM text / strings holding one or more roots. */
  readonly roots: TrustBundle | string | readonly string[];
}

/** A chain never needs more certificates than this; bounds the walk over `issuerCertificate`. */
const MAX_PEER_CHAIN = 16;

function toBundle(roots: TlsCredentials['roots']): TrustBundle {
  return roots instanceof TrustBundle ? roots : TrustBundle.from(roots);
}

/**
 * `node:tls` secure-context options for mesh mTLS: TLS 1.3 only, our chain and key, and the
 * roots as `ca`. Pass them to `tls.createSecureContext`, `tls.connect`, `tls.createServer` or
 * `http2.createSecureServer`; for peer checks use {@link clientTlsOptions} /
 * {@link serverTlsOptions}, which build on this.
 */
export function buildSecureContextOptions(credentials: TlsCredentials): SecureContextOptions {
  const key = credentials.privateKey;
  const chain =
    typeof credentials.certChain === 'string' ? credentials.certChain : credentials.certChain.join('');
  return {
    cert: chain,
    key: typeof key === 'string' || Buffer.isBuffer(key) ? key : key.export({ type: 'pkcs8', format: 'pem' }),
    ca: toBundle(credentials.roots).roots.map(root => root.toString()),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

/** The DER chain a peer sent, leaf first, following `issuerCertificate` links. */
export function peerChainDer(peer: PeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let current: PeerCertificate | undefined = peer;
  const seen = new Set<PeerCertificate>();
  while (current !== undefined && out.length < MAX_PEER_CHAIN && !seen.has(current)) {
    seen.add(current);
    if (current.raw.length === 0) break;
    out.push(current.raw);
    const next: PeerCertificate | undefined = (current as Partial<{ issuerCertificate: PeerCertificate }>)
      .issuerCertificate;
    current = next === current ? undefined : next;
  }
  return out;
}

function isEmptyPeerCertificate(peer: PeerCertificate | Record<string, never> | null | undefined): boolean {
  return peer === null || peer === undefined || !('raw' in peer) || peer.raw.length === 0;
}

/**
 * Verifies the peer of an established TLS socket (either side): chain against the roots,
 * validity, SPIFFE identity from the raw SAN bytes, then the policy's trust domain and
 * expected identities. Returns the peer's identity or a typed error; never throws.
 *
 * Node does not expose the intermediates a *client* sent; when the server cannot build the
 * path itself it relies on OpenSSL's verdict (`socket.authorized`) against the secure
 * context's `ca`, so build that context with the same roots as `policy.bundle`.
 */
export function verifyTlsPeer(socket: TLSSocket, policy: PeerVerificationPolicy): VerifyResult {
  const peer = socket.getPeerCertificate(true) as PeerCertificate | Record<string, never> | null;
  if (isEmptyPeerCertificate(peer)) return { ok: false, error: new NoPeerCertificateError() };
  const chain = peerChainDer(peer as PeerCertificate);
  const result = verifyPeerChain(chain, policy);
  if (result.ok || !(result.error instanceof UntrustedChainError) || chain.length > 1 || !socket.authorized) {
    return result;
  }
  // On the server side Node exposes only the client's leaf, not the intermediates it sent.
  // OpenSSL has verified that chain against the context's `ca` (socket.authorized), so the
  // leaf-only checks complete the verification.
  return verifyPeerLeaf(chain[0]!, policy);
}

export interface ClientPeerPolicy {
  /** The identities the destination may present (URI-SAN match, exact bytes). */
  readonly expectedIdentities: readonly (SpiffeId | string)[];
  /** Time source for validity checks, in ms since the epoch. */
  readonly now?: () => number;
}

/**
 * A `checkServerIdentity` replacement: instead of a hostname match it verifies the server's
 * chain against `bundle` and requires its SPIFFE identity to be one of `expectedIdentities`.
 * Returns the typed error (Node then destroys the socket with it) or `undefined`.
 */
export function createCheckServerIdentity(
  bundle: TrustBundle,
  policy: ClientPeerPolicy,
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    if (isEmptyPeerCertificate(cert)) return new NoPeerCertificateError();
    const base = { bundle, expectedIdentities: policy.expectedIdentities };
    const result = verifyPeerChain(
      peerChainDer(cert),
      policy.now === undefined ? base : { ...base, now: policy.now },
    );
    return result.ok ? undefined : result.error;
  };
}

/**
 * Options for `tls.connect` / `http2.connect` as a mesh client: TLS 1.3 mTLS, OpenSSL chain
 * verification (`rejectUnauthorized`), then {@link createCheckServerIdentity}. A server
 * identity error arrives on the socket's `'error'` event as the typed error; a chain or
 * validity failure found first by OpenSSL arrives as Node's own error (e.g. `CERT_HAS_EXPIRED`).
 */
export function clientTlsOptions(credentials: TlsCredentials, policy: ClientPeerPolicy): ConnectionOptions {
  return {
    ...buildSecureContextOptions(credentials),
    rejectUnauthorized: true,
    checkServerIdentity: createCheckServerIdentity(toBundle(credentials.roots), policy),
  };
}

/**
 * Options for `tls.createServer` / `http2.createSecureServer` as a mesh server. The client
 * certificate is requested but judged by {@link verifyTlsPeer} (wrap the connection handler
 * with {@link withPeerVerification}) so that every refusal carries a typed error.
 * **A server using these options must verify each connection.**
 */
export function serverTlsOptions(credentials: TlsCredentials): TlsOptions {
  return { ...buildSecureContextOptions(credentials), requestCert: true, rejectUnauthorized: false };
}

export interface ServerPeerPolicy {
  readonly bundle: TrustBundle;
  /** Our own trust domain: peers from any other are refused. */
  readonly trustDomain: string;
  /** Time source for validity checks, in ms since the epoch. */
  readonly now?: () => number;
}

/**
 * Wraps a secure-connection handler: the peer is verified first (same trust domain as ours);
 * a refused socket is destroyed with the typed error and reported to `onRejected`, an accepted
 * one is handed to `onAccepted` with the peer's identity.
 */
export function withPeerVerification(
  policy: ServerPeerPolicy,
  onAccepted: (socket: TLSSocket, peer: SpiffeId) => void,
  onRejected?: (socket: TLSSocket, error: SpiffeCertsError) => void,
): (socket: TLSSocket) => void {
  return socket => {
    let result: VerifyResult;
    try {
      result = verifyTlsPeer(socket, policy);
    } catch (err) {
      result = {
        ok: false,
        error: new InvalidCertificateError('peer verification failed unexpectedly', err),
      };
    }
    if (result.ok) {
      onAccepted(socket, result.identity);
      return;
    }
    onRejected?.(socket, result.error);
    socket.destroy();
  };
}
