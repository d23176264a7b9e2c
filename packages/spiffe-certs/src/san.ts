import { InvalidSanError } from './errors.ts';
import { SpiffeId } from './spiffe-id.ts';

/**
 * Reads the Subject Alternative Name of a certificate straight from its DER bytes.
 *
 * Text renderings of a SAN (`X509Certificate.subjectAltName`, `getPeerCertificate().subjectaltname`)
 * escape or quote unusual bytes, and a comparison on them can be fooled by an embedded NUL
 * (CVE-2025-66220). Here the URI GeneralNames are returned as the exact bytes of the IA5String,
 * and {@link spiffeIdFromCertificateDer} accepts only printable ASCII that parses as a strict
 * SPIFFE ID.
 */

const TAG_SEQUENCE = 0x30;
const TAG_OID = 0x06;
const TAG_BOOLEAN = 0x01;
const TAG_OCTET_STRING = 0x04;
const TAG_EXTENSIONS = 0xa3; // [3] EXPLICIT, constructed
const TAG_URI = 0x86; // [6] IMPLICIT IA5String
/** DER of OID 2.5.29.17 (id-ce-subjectAltName), without tag and length. */
const OID_SAN = Buffer.from([0x55, 0x1d, 0x11]);
/** A certificate never needs more than this many TLV elements at one level; bounds every loop. */
const MAX_ELEMENTS = 4096;

interface Tlv {
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error(`truncated DER element at ${offset}`);
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error(`unsupported multi-byte DER tag at ${offset}`);
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error(`unsupported DER length form at ${offset}`);
    if (start + count > limit) throw new Error(`truncated DER length at ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new Error(`DER element at ${offset} overruns its parent`);
  return { tag, start, end };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let offset = parent.start;
  while (offset < parent.end) {
    if (out.length >= MAX_ELEMENTS) throw new Error('too many DER elements');
    const tlv = readTlv(der, offset, parent.end);
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

function bytesEqual(der: Uint8Array, tlv: Tlv, expected: Uint8Array): boolean {
  if (tlv.end - tlv.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (der[tlv.start + i] !== expected[i]) return false;
  return true;
}

export interface SubjectAltNames {
  /** The exact bytes of every URI GeneralName, in certificate order. */
  readonly uris: readonly Buffer[];
  /** How many GeneralNames of other kinds (DNS, IP, otherName, ...) the SAN holds. */
  readonly otherNames: number;
  /** Whether the SAN extension is marked critical. */
  readonly critical: boolean;
}

/**
 * Returns the certificate's SAN, or `undefined` when it has none. Throws {@link InvalidSanError}
 * on malformed DER or a duplicated SAN extension.
 */
export function readSubjectAltNames(certDer: Uint8Array): SubjectAltNames | undefined {
  try {
    const cert = readTlv(certDer, 0, certDer.length);
    if (cert.tag !== TAG_SEQUENCE) throw new Error('certificate is not a SEQUENCE');
    const tbs = children(certDer, cert)[0];
    if (tbs?.tag !== TAG_SEQUENCE) throw new Error('tbsCertificate is not a SEQUENCE');
    const extensionsWrapper = children(certDer, tbs).find(t => t.tag === TAG_EXTENSIONS);
    if (extensionsWrapper === undefined) return undefined;
    const extensionList = children(certDer, extensionsWrapper)[0];
    if (extensionList?.tag !== TAG_SEQUENCE) throw new Error('extensions are not a SEQUENCE');
    let found: SubjectAltNames | undefined;
    for (const extension of children(certDer, extensionList)) {
      const fields = children(certDer, extension);
      const oid = fields[0];
      if (oid?.tag !== TAG_OID || !bytesEqual(certDer, oid, OID_SAN)) continue;
      if (found !== undefined) throw new Error('the SAN extension appears twice');
      const hasCritical = fields[1]?.tag === TAG_BOOLEAN;
      const critical = hasCritical && certDer[fields[1]!.start] !== 0;
      const value = fields[hasCritical ? 2 : 1];
      if (value?.tag !== TAG_OCTET_STRING) throw new Error('SAN extension value is not an OCTET STRING');
      const names = readTlv(certDer, value.start, value.end);
      if (names.tag !== TAG_SEQUENCE) throw new Error('GeneralNames is not a SEQUENCE');
      const uris: Buffer[] = [];
      let otherNames = 0;
      for (const name of children(certDer, names)) {
        if (name.tag === TAG_URI) uris.push(Buffer.from(certDer.subarray(name.start, name.end)));
        else otherNames++;
      }
      found = { uris, otherNames, critical };
    }
    return found;
  } catch (err) {
    throw new InvalidSanError(`cannot read the SAN extension (${(err as Error).message})`, err);
  }
}

/** True when every byte is printable ASCII other than space (0x21..0x7e). */
function isPrintableAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b < 0x21 || b > 0x7e) return false;
  return true;
}

/**
 * The SPIFFE identity of a workload certificate: its SAN must hold exactly one URI, made only
 * of printable ASCII, that parses as a strict SPIFFE ID. Throws {@link InvalidSanError}.
 */
export function spiffeIdFromCertificateDer(certDer: Uint8Array): SpiffeId {
  const san = readSubjectAltNames(certDer);
  if (san === undefined) throw new InvalidSanError('the certificate has no SAN extension');
  if (san.uris.length !== 1)
    throw new InvalidSanError(`expected exactly one URI SAN, found ${san.uris.length}`);
  const raw = san.uris[0]!;
  if (!isPrintableAscii(raw))
    throw new InvalidSanError('the URI SAN carries a NUL, control, space or non-ASCII byte');
  const parsed = SpiffeId.tryParse(raw.toString('latin1'));
  if (!parsed.ok) throw new InvalidSanError('the URI SAN is not a valid SPIFFE ID', parsed.error);
  return parsed.value;
}
