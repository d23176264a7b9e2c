/**
 * The CONNECT `:authority` of HBONE (docs/protocols.md#hbone-connect-request, #hbone-server).
 *
 * The authority names the tunnel's target, not the TCP next hop: `<ip>:<port>` for a pod or a
 * service VIP (IPv6 as `[addr]:port`, in the canonical text form Rust's `SocketAddr` prints), or
 * `<hostname>:<port>` for double HBONE through an east-west gateway. The parser is strict and
 * bounded: at most 255 characters, a decimal port 1–65535, no zone IDs, no userinfo, no path.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { HboneInvalidAuthorityError } from './errors.ts';

/** Longest authority accepted (longer ones crashed Envoy, CVE-2024-32475). */
export const MAX_AUTHORITY_LENGTH = 255;

export type Authority =
  | { readonly kind: 'ip'; readonly ip: string; readonly family: 4 | 6; readonly port: number }
  | { readonly kind: 'hostname'; readonly hostname: string; readonly port: number };

export type AuthorityResult =
  | { readonly ok: true; readonly authority: Authority }
  | { readonly ok: false; readonly error: HboneInvalidAuthorityError };

const PORT = /^[1-9][0-9]{0,4}$/;
const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

function parsePort(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** The canonical text of an IPv6 address (RFC 5952; IPv4-mapped addresses in dotted form, like Rust). */
export function canonicalIpv6(ip: string): string {
  const host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const trimmed = host.endsWith('.') ? host.slice(0, -1) : host;
  const labels = trimmed.split('.');
  if (labels.every(l => /^[0-9]+$/.test(l))) return false; // looks like a malformed IPv4 address
  return labels.every(l => LABEL.test(l));
}

function invalid(detail: string): AuthorityResult {
  return { ok: false, error: new HboneInvalidAuthorityError(detail) };
}

/** Parses a `:authority` strictly. Never throws. */
export function parseAuthority(value: string): AuthorityResult {
  if (value.length === 0) return invalid('empty');
  if (value.length > MAX_AUTHORITY_LENGTH) return invalid(`longer than ${MAX_AUTHORITY_LENGTH} characters`);
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return invalid('IPv6 address without "]:port"');
    const ip = value.slice(1, close);
    const port = parsePort(value.slice(close + 2));
    if (!IPV6_CHARS.test(ip) || !isIPv6(ip)) return invalid('malformed IPv6 address');
    if (port === undefined) return invalid('port must be a decimal number from 1 to 65535');
    return { ok: true, authority: { kind: 'ip', ip: canonicalIpv6(ip), family: 6, port } };
  }
  const colon = value.lastIndexOf(':');
  if (colon < 0) return invalid('missing port');
  const host = value.slice(0, colon);
  const port = parsePort(value.slice(colon + 1));
  if (port === undefined) return invalid('port must be a decimal number from 1 to 65535');
  if (IPV4.test(host)) return { ok: true, authority: { kind: 'ip', ip: host, family: 4, port } };
  if (host.includes(':')) return invalid('IPv6 addresses must be written [addr]:port');
  if (!isHostname(host)) return invalid('malformed IP address or hostname');
  return { ok: true, authority: { kind: 'hostname', hostname: host.toLowerCase(), port } };
}

/** Formats an authority the way ztunnel sends it. Throws HboneInvalidAuthorityError on bad input. */
export function formatAuthority(authority: Authority): string {
  if (!Number.isInteger(authority.port) || authority.port < 1 || authority.port > 65535) {
    throw new HboneInvalidAuthorityError(`port ${authority.port} is out of range`);
  }
  let text: string;
  if (authority.kind === 'ip') {
    if (isIPv4(authority.ip) && IPV4.test(authority.ip)) text = `${authority.ip}:${authority.port}`;
    else if (isIPv6(authority.ip) && IPV6_CHARS.test(authority.ip))
      text = `[${canonicalIpv6(authority.ip)}]:${authority.port}`;
    else throw new HboneInvalidAuthorityError(`"${authority.ip}" is not an IP address`);
  } else {
    if (!isHostname(authority.hostname)) {
      throw new HboneInvalidAuthorityError(`"${authority.hostname}" is not a hostname`);
    }
    text = `${authority.hostname.toLowerCase()}:${authority.port}`;
  }
  if (text.length > MAX_AUTHORITY_LENGTH) {
    throw new HboneInvalidAuthorityError(`longer than ${MAX_AUTHORITY_LENGTH} characters`);
  }
  return text;
}

/** Formats `ip:port` (IPv6 bracketed) for an address pair, e.g. a socket's remote end. */
export function formatSocketAddress(ip: string, port: number): string {
  return formatAuthority({ kind: 'ip', ip, family: isIPv6(ip) ? 6 : 4, port });
}
