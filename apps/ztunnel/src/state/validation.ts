/**
 * Helpers shared by the proto → domain converters: a problem collector with field paths, and
 * the scalar checks every converter needs. Converters never throw; they return `Converted<T>`.
 */
import { isIP } from 'node:net';

export type Converted<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly string[] };

/** Collects every problem of one resource, each prefixed with its field path. */
export class Problems {
  readonly list: string[] = [];

  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }

  result<T>(build: () => T): Converted<T> {
    return this.list.length === 0 ? { ok: true, value: build() } : { ok: false, problems: this.list };
  }
}

/** 4 or 16 raw bytes → canonical IP text, or undefined. */
export function ipFromBytes(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
    // Round-trip through URL parsing to get the RFC 5952 compressed form.
    const text = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
    return isIP(text) === 6 ? text : undefined;
  }
  return undefined;
}

export function ipBytes(path: string, bytes: Uint8Array, problems: Problems): string | undefined {
  const ip = ipFromBytes(bytes);
  if (ip === undefined) problems.add(path, `an IP must be 4 or 16 bytes, got ${bytes.length}`);
  return ip;
}

export function requireText(path: string, value: string, problems: Problems): void {
  if (value === '') problems.add(path, 'required');
}

export function port(path: string, value: number, problems: Problems, allowZero = false): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65_535) {
    problems.add(path, `port ${value} out of range ${allowZero ? 0 : 1}..65535`);
  }
  return value;
}

/** Maps a proto enum number through `names`; unknown numbers are problems. */
export function enumValue<T extends string>(
  path: string,
  value: number,
  names: readonly T[],
  problems: Problems,
): T {
  const name = names[value];
  if (name === undefined) {
    problems.add(path, `unknown enum value ${value}`);
    return names[0] as T;
  }
  return name;
}
