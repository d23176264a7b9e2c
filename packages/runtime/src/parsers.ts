/**
 * Pure parsers for configuration values. Each returns a tagged result: `{ ok: true, value }` or
 * `{ ok: false, message }` where the message says what was expected, for `ConfigReader` to collect.
 */
import { isIP } from 'node:net';

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });
const quote = (text: string): string => JSON.stringify(text);

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

export interface DurationOptions {
  /** How a bare number is read; by default (as in Go) only `0` may omit its unit. */
  readonly bareUnit?: 's' | 'ms';
}

/** A Go duration (`100ms`, `1h30m`, `1.5s`) in milliseconds, or `undefined` when malformed. */
export function parseGoDurationMs(text: string, options: DurationOptions = {}): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    if (options.bareUnit === undefined) return undefined;
    return Number(trimmed) * (options.bareUnit === 's' ? 1_000 : 1);
  }
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  while (re.lastIndex < trimmed.length) {
    const match = re.exec(trimmed);
    if (match === null) return undefined;
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? ''] ?? 0);
  }
  return trimmed.length > 0 ? total : undefined;
}

export function parseDuration(text: string, options: DurationOptions = {}): Parsed<number> {
  const ms = parseGoDurationMs(text, options);
  if (ms !== undefined) return ok(ms);
  const bare =
    options.bareUnit === undefined
      ? ''
      : ` or a number of ${options.bareUnit === 's' ? 'seconds' : 'milliseconds'}`;
  return fail(`${quote(text)} is not a duration (expected e.g. 100ms, 10s, 1h30m${bare})`);
}

/** Go's `strconv.ParseBool` spellings: 1, t, true, 0, f, false (any case). */
export function parseBool(text: string): Parsed<boolean> {
  const v = text.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 't') return ok(true);
  if (v === 'false' || v === '0' || v === 'f') return ok(false);
  return fail(`${quote(text)} is not a boolean (expected "true" or "false")`);
}

export interface IntegerOptions {
  readonly min?: number;
  readonly max?: number;
}

/** A non-negative decimal integer (optionally `-` when `min` < 0) within `[min, max]`. */
export function parseInteger(text: string, options: IntegerOptions = {}): Parsed<number> {
  const v = text.trim();
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const pattern = min < 0 ? /^-?\d+$/ : /^\d+$/;
  if (!pattern.test(v)) return fail(`${quote(text)} is not ${min < 0 ? 'an' : 'a non-negative'} integer`);
  const n = Number(v);
  if (n < min || n > max) return fail(`${n} is outside ${min}..${max}`);
  return ok(n);
}

/** A TCP/UDP port, 0 (any free port) to 65535. */
export function parsePort(text: string): Parsed<number> {
  const parsed = parseInteger(text, { min: 0, max: 65_535 });
  return parsed.ok ? parsed : fail(`${quote(text)} is not a port (0-65535)`);
}

/** An IP address literal, of one family when `family` is given. */
export function parseIp(text: string, family?: 4 | 6): Parsed<string> {
  const v = text.trim();
  const got = isIP(v);
  if (got === 0 || (family !== undefined && got !== family)) {
    return fail(`${quote(text)} is not an IPv${family ?? '4 or IPv6'} address`);
  }
  return ok(v);
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A listen address as Go writes it: `host:port`, `[v6]:port` or `:port` (every interface, `::`).
 * The host must be an IP literal or `localhost`.
 */
export function parseListenAddress(text: string): Parsed<ListenAddress> {
  const v = text.trim();
  const idx = v.lastIndexOf(':');
  const host = idx === -1 ? '' : v.slice(0, idx).replace(/^\[(.*)\]$/, '$1');
  const port = parsePort(idx === -1 ? v : v.slice(idx + 1));
  if (!port.ok || (host !== '' && isIP(host) === 0 && host !== 'localhost')) {
    return fail(`${quote(text)} is not a listen address (expected "[host]:port" with an IP host)`);
  }
  return ok({ host: host === '' ? '::' : host, port: port.value });
}

/** True for addresses only the local host can reach (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return (
    address === 'localhost' ||
    address === '::1' ||
    address.startsWith('127.') ||
    address.startsWith('::ffff:127.')
  );
}

/** A `http://` or `https://` URL. */
export function parseHttpUrl(text: string): Parsed<string> {
  try {
    const url = new URL(text);
    if (url.protocol === 'https:' || url.protocol === 'http:') return ok(text);
    return fail(`${quote(text)} must be an http(s) URL`);
  } catch {
    return fail(`${quote(text)} is not a URL`);
  }
}

/** A comma-separated list; blanks dropped, entries trimmed. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '');
}
