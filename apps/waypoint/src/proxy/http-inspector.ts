/**
 * What Envoy's `http_inspector` listener filter does: from the first bytes of a stream (peeked,
 * never consumed), whether it is HTTP/2 prior knowledge (`h2c`, the connection preface), an
 * HTTP/1.x request (`http/1.0`, `http/1.1`, by the request line), or neither (no application
 * protocol: the stream goes to a chain without `application_protocols`, a TCP chain). Pure:
 * `inspectHttp` looks at the bytes read so far and says whether more are needed.
 */

/** The most bytes looked at for a request line (Envoy's inspector reads at most 8 KiB). */
export const MAX_INSPECT_BYTES = 8 * 1024;

export type HttpInspection =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'protocol'; readonly protocol: 'h2c' | 'http/1.0' | 'http/1.1' }
  | { readonly kind: 'none' };

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const NONE: HttpInspection = { kind: 'none' };
const INCOMPLETE: HttpInspection = { kind: 'incomplete' };

/** An RFC 9110 token character (a method is a token). */
function isTokenChar(c: number): boolean {
  if (c >= 0x30 && c <= 0x39) return true; // 0-9
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true; // A-Z a-z
  return "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

export function inspectHttp(buf: Buffer): HttpInspection {
  if (buf.length === 0) return INCOMPLETE;
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n)))
    return buf.length >= H2_PREFACE.length ? { kind: 'protocol', protocol: 'h2c' } : INCOMPLETE;
  // The method: a token up to the first space (a non-token byte first means not HTTP/1.x).
  let i = 0;
  while (i < buf.length && buf[i] !== 0x20) {
    if (!isTokenChar(buf[i]!)) return NONE;
    i++;
  }
  if (i === 0) return NONE;
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    // A request line has no control characters before its CRLF.
    for (let j = i; j < buf.length; j++) if (buf[j]! < 0x20 && buf[j] !== 0x0d) return NONE;
    return buf.length >= MAX_INSPECT_BYTES ? NONE : INCOMPLETE;
  }
  const line = buf.subarray(0, end).toString('latin1');
  const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^\s]+ HTTP\/1\.([01])$/.exec(line);
  if (m === null) return NONE;
  return { kind: 'protocol', protocol: m[1] === '0' ? 'http/1.0' : 'http/1.1' };
}
