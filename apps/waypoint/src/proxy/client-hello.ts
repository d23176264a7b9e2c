/**
 * Reads the SNI of a TLS ClientHello from the first bytes of a connection without terminating
 * it (what Envoy's `tls_inspector` does): the gateway picks a filter chain by it, then either
 * terminates TLS or relays the bytes as they are (TLS passthrough).
 *
 * The ClientHello may span several TLS records; the handshake message is reassembled from the
 * records' fragments. Pure: `peekClientHello` looks at the bytes read so far and says whether
 * more are needed.
 */

/** The most bytes read before giving up on a ClientHello (Envoy's `tls_inspector` reads 64 KiB at most). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

export type HelloPeek =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'hello'; readonly sni: string | undefined }
  | { readonly kind: 'invalid'; readonly reason: string };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXTENSION_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

const invalid = (reason: string): HelloPeek => ({ kind: 'invalid', reason });

/** The SNI of the ClientHello at the start of `buf`, or whether more bytes are needed. */
export function peekClientHello(buf: Buffer): HelloPeek {
  const fragments: Buffer[] = [];
  let have = 0;
  let offset = 0;
  while (offset + 5 <= buf.length) {
    if (buf[offset] !== RECORD_HANDSHAKE) return invalid('not a TLS handshake record');
    const length = buf.readUInt16BE(offset + 3);
    if (length === 0 || length > 16384 + 2048) return invalid(`TLS record length ${length} is out of range`);
    if (offset + 5 + length > buf.length) break;
    fragments.push(buf.subarray(offset + 5, offset + 5 + length));
    have += length;
    offset += 5 + length;
    if (have >= 4) {
      const handshake = Buffer.concat(fragments);
      if (handshake[0] !== HANDSHAKE_CLIENT_HELLO)
        return invalid('the first handshake message is not a ClientHello');
      const bodyLength = handshake.readUIntBE(1, 3);
      if (handshake.length >= 4 + bodyLength) return parseClientHello(handshake.subarray(4, 4 + bodyLength));
    }
  }
  if (buf.length > 0 && buf[0] !== RECORD_HANDSHAKE) return invalid('not a TLS handshake record');
  if (buf.length >= MAX_CLIENT_HELLO_BYTES) return invalid(`no complete ClientHello in ${buf.length} bytes`);
  return { kind: 'incomplete' };
}

/** The `server_name` extension's host name of a ClientHello body (after the handshake header). */
function parseClientHello(body: Buffer): HelloPeek {
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > body.length) return invalid('truncated ClientHello');
  p += 1 + body[p]!; // session id
  if (p + 2 > body.length) return invalid('truncated ClientHello');
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (p + 1 > body.length) return invalid('truncated ClientHello');
  p += 1 + body[p]!; // compression methods
  if (p > body.length) return invalid('truncated ClientHello');
  if (p === body.length) return { kind: 'hello', sni: undefined }; // no extensions
  if (p + 2 > body.length) return invalid('truncated ClientHello extensions');
  const end = p + 2 + body.readUInt16BE(p);
  if (end > body.length) return invalid('truncated ClientHello extensions');
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (p + length > end) return invalid('truncated ClientHello extension');
    if (type === EXTENSION_SERVER_NAME) return serverName(body.subarray(p, p + length));
    p += length;
  }
  return { kind: 'hello', sni: undefined };
}

function serverName(ext: Buffer): HelloPeek {
  if (ext.length < 2) return invalid('truncated server_name extension');
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let p = 2;
  while (p + 3 <= end) {
    const type = ext[p]!;
    const length = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + length > end) return invalid('truncated server_name entry');
    if (type === NAME_TYPE_HOST) {
      const name = ext.subarray(p, p + length).toString('latin1');
      if (name === '' || !/^[\x21-\x7e]+$/.test(name)) return invalid('server_name is not a host name');
      return { kind: 'hello', sni: name.toLowerCase() };
    }
    p += length;
  }
  return { kind: 'hello', sni: undefined };
}
