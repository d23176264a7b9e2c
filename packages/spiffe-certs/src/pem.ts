import { X509Certificate } from 'node:crypto';
import { InvalidCertificateError } from './errors.ts';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;
/** Bounds the number of certificates read from one bundle or chain. */
const MAX_PEM_BLOCKS = 1000;

/** Splits concatenated PEM certificates into one normalized PEM string each (ending in `\n`). */
export function splitPemCertificates(pem: string): string[] {
  const out: string[] = [];
  for (const match of pem.matchAll(PEM_CERT_RE)) {
    if (out.length >= MAX_PEM_BLOCKS)
      throw new InvalidCertificateError(`more than ${MAX_PEM_BLOCKS} certificates`);
    out.push(derToPem(Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64')));
  }
  return out;
}

/** Encodes DER bytes as a PEM certificate with 64-column lines and a trailing newline. */
export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Anything a certificate can be given as. */
export type CertificateInput = X509Certificate | string | Uint8Array;

/** Parses one certificate (PEM or DER) with node:crypto; throws {@link InvalidCertificateError}. */
export function toX509(input: CertificateInput): X509Certificate {
  if (input instanceof X509Certificate) return input;
  try {
    return new X509Certificate(typeof input === 'string' ? input : Buffer.from(input));
  } catch (err) {
    throw new InvalidCertificateError('cannot parse the certificate as PEM or DER', err);
  }
}

/**
 * Parses a list of certificates where each element may itself hold several PEM blocks
 * (the shape of a CreateCertificate response, whose last element is the root bundle).
 */
export function parseCertificates(inputs: readonly CertificateInput[] | string): X509Certificate[] {
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  const out: X509Certificate[] = [];
  for (const input of list) {
    if (typeof input === 'string') {
      const blocks = splitPemCertificates(input);
      if (blocks.length === 0) throw new InvalidCertificateError('no PEM CERTIFICATE block found');
      for (const block of blocks) out.push(toX509(block));
    } else {
      out.push(toX509(input));
    }
  }
  return out;
}
