/**
 * Workload identity as HBONE uses it: the TLS material a side presents, and the checks on the
 * peer's certificate (ambient-protocols §1.1).
 *
 * Node's hostname checks do not apply to SPIFFE certificates (they carry only a URI SAN), so both
 * sides verify the chain with OpenSSL against the roots and then read the URI SANs straight from
 * the leaf's DER with spiffe-certs, comparing exact bytes (a text rendering could be fooled by an
 * embedded NUL, CVE-2025-66220).
 */
import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import { SpiffeId, buildSecureContextOptions, readSubjectAltNames } from '@ambient-mesh/spiffe-certs';
import type { TlsCredentials } from '@ambient-mesh/spiffe-certs';
import { errorMessage } from '@ambient-mesh/errors';
import { HboneTlsConfigError } from './errors.ts';
import { TLS_CIPHERS } from './settings.ts';

/**
 * What one side of an HBONE connection presents and trusts: spiffe-certs' TLS credentials
 * (chain, key, roots) plus the workload's SPIFFE ID.
 */
export interface HboneIdentity extends TlsCredentials {
  /** This workload's SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/sleep`. */
  readonly id: string | SpiffeId;
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

/** True when the certificate names one of `expected` exactly (client side, `IdentityVerifier`). */
export function presentsExpectedIdentity(certDer: Uint8Array, expected: readonly string[]): boolean {
  return uriSans(certDer).some(uri => expected.includes(uri));
}
