/**
 * Workload identity as HBONE uses it: the TLS material a side presents, and the checks on the
 * peer's certificate (docs/protocols.md#hbone-transport).
 *
 * Node's hostname checks do not apply to SPIFFE certificates (they carry only a URI SAN), so both
 * sides verify the chain with OpenSSL against the roots and then read the URI SANs straight from
 * the leaf's DER with spiffe-certs, comparing exact bytes (a text rendering could be fooled by an
 * embedded NUL, CVE-2025-66220).
 */
import { createHash } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import {
  SpiffeId,
  buildSecureContextOptions,
  parseCertificates,
  readSubjectAltNames,
} from '@ambient-mesh/spiffe-certs';
import type { TlsCredentials } from '@ambient-mesh/spiffe-certs';
import { errorMessage } from '@ambient-mesh/errors';
import { HboneIdentityMismatchError, HboneTlsConfigError } from './errors.ts';
import { TLS_CIPHERS } from './settings.ts';

/**
 * What one side of an HBONE connection presents and trusts: spiffe-certs' TLS credentials
 * (chain, key, roots) plus the workload's SPIFFE ID. With spiffe-certs' `WorkloadCertificate`:
 * `{ id: certificate.identity, ...certificate.tlsCredentials }`.
 *
 * `id` must be a URI SAN of the chain's leaf: the client and server refuse an identity whose
 * `id` names another workload with `HBONE_IDENTITY_MISMATCH`.
 */
export interface HboneIdentity extends TlsCredentials {
  /** This workload's SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/sleep`. */
  readonly id: string | SpiffeId;
}

/** A SPIFFE ID as a caller may give it: the URI text or a parsed `SpiffeId`. */
export type SpiffeIdLike = string | SpiffeId;

/** The URI text of each ID, in order. */
export function spiffeIdStrings(ids: readonly SpiffeIdLike[]): string[] {
  return ids.map(id => (typeof id === 'string' ? id : id.uri));
}

/** What the pool and the server need to know about an identity, checked once per identity object. */
export interface CheckedIdentity {
  readonly id: SpiffeId;
  /** SHA-256 of the leaf certificate's DER, lowercase hex: two identities with equal fingerprints present the same certificate. */
  readonly fingerprint: string;
}

const checked = new WeakMap<HboneIdentity, CheckedIdentity>();

/**
 * Parses the identity's `id`, reads its leaf certificate and checks that the leaf names the id
 * as a URI SAN. Throws HboneTlsConfigError (unparsable id or chain) or HboneIdentityMismatchError.
 */
export function checkIdentity(identity: HboneIdentity): CheckedIdentity {
  const known = checked.get(identity);
  if (known !== undefined) return known;
  const id = parseIdentityId(identity);
  let leaf;
  try {
    leaf = parseCertificates(identity.certChain)[0];
  } catch (err) {
    throw new HboneTlsConfigError(`cannot read the certificate chain: ${errorMessage(err)}`, err);
  }
  if (leaf === undefined) throw new HboneTlsConfigError('the certificate chain is empty');
  const names = uriSans(leaf.raw);
  if (!names.includes(id.uri)) throw new HboneIdentityMismatchError(id.uri, names);
  const result: CheckedIdentity = { id, fingerprint: createHash('sha256').update(leaf.raw).digest('hex') };
  checked.set(identity, result);
  return result;
}

/** Checks an identity's SPIFFE ID and returns it parsed; throws HboneTlsConfigError. */
export function parseIdentityId(identity: HboneIdentity): SpiffeId {
  if (identity.id instanceof SpiffeId) return identity.id;
  const parsed = SpiffeId.tryParse(identity.id);
  if (!parsed.ok) throw new HboneTlsConfigError(`"${identity.id}" is not a SPIFFE ID`, parsed.error);
  return parsed.value;
}

/** The TLS options both sides share: TLS 1.3 only, the AES-GCM pair, our chain and roots. */
export function tlsContextOptions(identity: HboneIdentity): SecureContextOptions {
  try {
    return { ...buildSecureContextOptions(identity), ciphers: TLS_CIPHERS };
  } catch (err) {
    throw new HboneTlsConfigError(errorMessage(err), err);
  }
}

const contexts = new WeakMap<HboneIdentity, SecureContext>();

/** A secure context per identity object, built once (a fresh one per handshake costs ~1 ms). */
export function secureContextFor(identity: HboneIdentity): SecureContext {
  let context = contexts.get(identity);
  if (context === undefined) {
    try {
      context = createSecureContext(tlsContextOptions(identity));
    } catch (err) {
      throw new HboneTlsConfigError(errorMessage(err), err);
    }
    contexts.set(identity, context);
  }
  return context;
}

/**
 * The URI SANs of a certificate (DER) that are printable ASCII, in certificate order; malformed
 * SANs give an empty list.
 */
export function uriSans(certDer: Uint8Array): string[] {
  let san;
  try {
    san = readSubjectAltNames(certDer);
  } catch {
    return [];
  }
  if (san === undefined) return [];
  return san.uris.filter(u => u.every(b => b >= 0x21 && b <= 0x7e)).map(u => u.toString('latin1'));
}

/** The SPIFFE IDs among a certificate's URI SANs, in order (ztunnel's peer identity is the first). */
export function spiffeIds(certDer: Uint8Array): SpiffeId[] {
  const out: SpiffeId[] = [];
  for (const uri of uriSans(certDer)) {
    const parsed = SpiffeId.tryParse(uri);
    if (parsed.ok) out.push(parsed.value);
  }
  return out;
}

/**
 * True when the certificate names one of `expected` exactly (client side, `IdentityVerifier`).
 * An entry `spiffe://<trust domain>/*` accepts any valid SPIFFE ID of that trust domain, as
 * upstream's waypoint checks its upstreams (a URI-SAN prefix per trust domain).
 */
export function presentsExpectedIdentity(certDer: Uint8Array, expected: readonly SpiffeIdLike[]): boolean {
  const wanted = spiffeIdStrings(expected);
  const domains = wanted.filter(w => w.endsWith('/*')).map(w => w.slice(0, -1));
  return uriSans(certDer).some(
    uri =>
      wanted.includes(uri) || (domains.some(prefix => uri.startsWith(prefix)) && SpiffeId.tryParse(uri).ok),
  );
}
