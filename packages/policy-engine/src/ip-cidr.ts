/**
 * IPv4 and IPv6 addresses as bytes, CIDR blocks as bytes plus a prefix length, and containment,
 * all without regular expressions. Parsing follows Go's `netip.ParseAddr` / `ParsePrefix`, which
 * istiod uses: dotted quads without leading zeros, RFC 4291 text for IPv6 (no zones).
 */
import type { security } from './wire.ts';

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses a decimal without sign or leading zeros, up to `max`; undefined otherwise. */
function parseDecimal(text: string, max: number): number | undefined {
  if (text.length === 0 || text.length > 10) return undefined;
  if (text.length > 1 && text.startsWith('0')) return undefined;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) return undefined;
    n = n * 10 + (c - 48);
  }
  return n <= max ? n : undefined;
}

function parseIpv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const n = parseDecimal(parts[i]!, 255);
    if (n === undefined || parts[i]!.length > 3) return false;
    out[offset + i] = n;
  }
  return true;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.includes('%')) return undefined; // zones are not addresses of a policy
  const out = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part.length === 0) return [];
    const groups = part.split(':');
    const bytes: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!parseIpv4Into(g, v4, 0)) return undefined;
        bytes.push(...v4);
        continue;
      }
      if (g.length === 0 || g.length > 4) return undefined;
      let v = 0;
      for (let j = 0; j < g.length; j++) {
        const h = hexValue(g.charCodeAt(j));
        if (h < 0) return undefined;
        v = v * 16 + h;
      }
      bytes.push(v >> 8, v & 0xff);
    }
    return bytes;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) {
    if (head.length !== 16) return undefined;
    out.set(head);
    return out;
  }
  // "::" stands for at least one group of zeros.
  if (head.length + tail.length > 14) return undefined;
  out.set(head, 0);
  out.set(tail, 16 - tail.length);
  return out;
}

/** Parses an IPv4 (4 bytes) or IPv6 (16 bytes) address; undefined when the text is not one. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(':')) return parseIpv6(text);
  const out = new Uint8Array(4);
  return parseIpv4Into(text, out, 0) ? out : undefined;
}

/**
 * Parses `addr` or `addr/len` into the wire `Address`. A bare address gets the full length
 * (32 or 128). The address bytes are kept as written; matching masks them.
 */
export function parseCidr(text: string): security.Address | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const bits = ip.length * 8;
  if (slash < 0) return { address: ip, length: bits };
  const length = parseDecimal(text.slice(slash + 1), bits);
  return length === undefined ? undefined : { address: ip, length };
}

/**
 * An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its 4 IPv4 bytes; any other address as is.
 * Connection addresses are canonicalised this way before matching, as ztunnel does.
 */
export function canonicalIp(ip: Uint8Array): Uint8Array {
  if (ip.length !== 16) return ip;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return ip;
  if (ip[10] !== 0xff || ip[11] !== 0xff) return ip;
  return ip.slice(12);
}

/**
 * True when `ip` is inside the block `network/length`. Families never mix: an IPv4 block holds
 * no IPv6 address. A block whose length exceeds its family's bits contains nothing.
 */
export function cidrContains(network: Uint8Array, length: number, ip: Uint8Array): boolean {
  if (network.length !== ip.length || length < 0 || length > network.length * 8) return false;
  const full = length >> 3;
  for (let i = 0; i < full; i++) if (network[i] !== ip[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((network[full]! ^ ip[full]!) & mask) === 0;
}

/** Formats address bytes as text (dotted quad, or full lower-case IPv6 groups). */
export function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return ip.join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < ip.length; i += 2) groups.push(((ip[i]! << 8) | ip[i + 1]!).toString(16));
  return groups.join(':');
}
