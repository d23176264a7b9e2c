/**
 * The `forwarded` header (RFC 7239) as HBONE uses it (docs/protocols.md#hbone-connect-request).
 *
 * ztunnel sends `for="<srcIP:srcPort>"`, plus `;host=<service hostname>` when the traffic was
 * addressed to a service. The receiver reads only `host=`, to guess the destination service for
 * metrics; `for=` is never trusted as the source (identity comes from the TLS handshake). The
 * parser is strict and bounded (4096 characters, 16 elements, 8 pairs per element, no repeated
 * parameter within an element) and never throws.
 */
import { HboneInvalidHeaderError } from './errors.ts';

export const MAX_FORWARDED_LENGTH = 4096;
export const MAX_FORWARDED_ELEMENTS = 16;
export const MAX_FORWARDED_PAIRS = 8;

/** One forwarded-element: lowercased parameter names to their (unquoted) values. */
export type ForwardedElement = ReadonlyMap<string, string>;

export type ForwardedResult =
  | { readonly ok: true; readonly elements: readonly ForwardedElement[] }
  | { readonly ok: false; readonly reason: string };

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// qdtext / quoted-pair characters: HTAB, SP, VCHAR and obs-text (RFC 7230 docs/protocols.md#wds-discovery-messages.6).
const QUOTABLE = /^[\t\x20-\x7e\x80-\xff]*$/;

function quoted(value: string): string {
  if (!QUOTABLE.test(value)) {
    throw new HboneInvalidHeaderError('forwarded', 'value contains control or non-Latin-1 characters');
  }
  return `"${value.replace(/["\\]/g, c => `\\${c}`)}"`;
}

function tokenOrQuoted(value: string): string {
  return TOKEN.test(value) ? value : quoted(value);
}

/** Builds `for="<ip:port>"[;host=<hostname>]`. `source` is already formatted (IPv6 bracketed). */
export function buildForwarded(source: string, host?: string): string {
  let text = `for=${quoted(source)}`;
  if (host !== undefined && host !== '') text += `;host=${tokenOrQuoted(host)}`;
  if (text.length > MAX_FORWARDED_LENGTH) {
    throw new HboneInvalidHeaderError('forwarded', `longer than ${MAX_FORWARDED_LENGTH} characters`);
  }
  return text;
}

/** Parses a `forwarded` header value into its elements. Never throws. */
export function parseForwarded(header: string): ForwardedResult {
  if (header.length > MAX_FORWARDED_LENGTH)
    return { ok: false, reason: `longer than ${MAX_FORWARDED_LENGTH}` };
  const elements: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  for (;;) {
    skipSpace();
    // pair = token "=" value; an empty pair is allowed between separators.
    if (i < n && header[i] !== ';' && header[i] !== ',') {
      const start = i;
      while (i < n && TCHAR.test(header[i]!)) i++;
      const name = header.slice(start, i).toLowerCase();
      if (name === '' || header[i] !== '=') return { ok: false, reason: 'expected token "=" value' };
      i++;
      let value: string;
      if (header[i] === '"') {
        i++;
        value = '';
        for (;;) {
          if (i >= n) return { ok: false, reason: 'unterminated quoted string' };
          const ch = header[i]!;
          if (ch === '"') break;
          if (ch === '\\') {
            i++;
            if (i >= n) return { ok: false, reason: 'unterminated quoted pair' };
          }
          const c = header[i]!;
          if (!QUOTABLE.test(c)) return { ok: false, reason: 'control character in quoted string' };
          value += c;
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && TCHAR.test(header[i]!)) i++;
        value = header.slice(vs, i);
        if (value === '') return { ok: false, reason: `empty value for ${name}` };
      }
      if (current.has(name)) return { ok: false, reason: `parameter ${name} repeated in one element` };
      if (current.size >= MAX_FORWARDED_PAIRS) return { ok: false, reason: 'too many pairs in one element' };
      current.set(name, value);
      skipSpace();
    }
    if (i >= n) break;
    const sep = header[i];
    i++;
    if (sep === ',') {
      elements.push(current);
      current = new Map<string, string>();
      if (elements.length >= MAX_FORWARDED_ELEMENTS) return { ok: false, reason: 'too many elements' };
    } else if (sep !== ';') {
      return { ok: false, reason: 'expected ";" or ","' };
    }
  }
  elements.push(current);
  return { ok: true, elements };
}

/** The `host=` of the first element, as ztunnel's inbound reads it for metrics; undefined if absent or malformed. */
export function parseForwardedHost(header: string): string | undefined {
  const parsed = parseForwarded(header);
  if (!parsed.ok) return undefined;
  const host = parsed.elements[0]?.get('host');
  return host === '' ? undefined : host;
}
