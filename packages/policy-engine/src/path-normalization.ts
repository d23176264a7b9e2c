/**
 * Request path normalisation before L7 policy matching, as Istio configures Envoy
 * (mesh config `pathNormalization`). It closes the path-authorisation bypasses of
 * CVE-2021-31920 (`//`, `%2F`, `%5C`) and CVE-2021-39156 (`#fragment`).
 *
 * - The fragment (from the first `#`) is always dropped, and the query (from the first `?`)
 *   is set apart: policies match the path only.
 * - `BASE`: RFC 3986 normalisation: `\` becomes `/`, percent-encoded unreserved characters are
 *   decoded (so `%2e` is a dot), remaining escapes get upper-case hex, and `.`/`..` segments are
 *   resolved.
 * - `MERGE_SLASHES`: BASE, then runs of `/` become one.
 * - `DECODE_AND_MERGE_SLASHES` (this engine's default): `%2F` and `%5C` (any case) are decoded to
 *   `/` and `\` first, then MERGE_SLASHES.
 * - `NONE`: only the fragment and query are removed. Unsafe; for comparison with Envoy only.
 */

export const PathNormalization = {
  NONE: 'NONE',
  BASE: 'BASE',
  MERGE_SLASHES: 'MERGE_SLASHES',
  DECODE_AND_MERGE_SLASHES: 'DECODE_AND_MERGE_SLASHES',
} as const;
export type PathNormalization = (typeof PathNormalization)[keyof typeof PathNormalization];

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

/** Decodes `%2F`/`%5C` (any case) only. */
function decodeSlashes(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '%' && i + 2 < path.length) {
      const h = path.slice(i + 1, i + 3).toUpperCase();
      if (h === '2F' || h === '5C') {
        out += h === '2F' ? '/' : '\\';
        i += 2;
        continue;
      }
    }
    out += path[i]!;
  }
  return out;
}

/** `\` → `/`, decode unreserved escapes, upper-case the hex of the others. */
function canonicalEscapes(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '\\') {
      out += '/';
      continue;
    }
    if (ch === '%' && i + 2 < path.length) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        const code = hi * 16 + lo;
        out += isUnreserved(code) ? String.fromCharCode(code) : `%${path.slice(i + 1, i + 3).toUpperCase()}`;
        i += 2;
        continue;
      }
    }
    out += ch;
  }
  return out;
}

/** RFC 3986 §5.2.4 on an absolute path, segment by segment. */
function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    const last = i === input.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..' && out.length > 0) out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(seg);
  }
  return `/${out.join('/')}`;
}

function mergeSlashes(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '/' && out.endsWith('/')) continue;
    out += path[i]!;
  }
  return out;
}

/** The result of normalising a request target. */
export interface NormalizedPath {
  /** The normalised path, without query or fragment: what `paths` match. */
  readonly path: string;
  /** The query (without `?`), if any. */
  readonly query: string | undefined;
}

/**
 * Normalises a request `:path`. Returns undefined for a target that is not an absolute path
 * (origin form) or holds control characters: such a request must be rejected, not matched.
 */
export function normalizePath(
  raw: string,
  mode: PathNormalization = PathNormalization.DECODE_AND_MERGE_SLASHES,
): NormalizedPath | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return undefined;
  }
  const hash = raw.indexOf('#');
  const noFragment = hash < 0 ? raw : raw.slice(0, hash);
  const q = noFragment.indexOf('?');
  let path = q < 0 ? noFragment : noFragment.slice(0, q);
  const query = q < 0 ? undefined : noFragment.slice(q + 1);
  if (mode === PathNormalization.DECODE_AND_MERGE_SLASHES) path = decodeSlashes(path);
  if (mode !== PathNormalization.NONE) {
    path = canonicalEscapes(path);
    if (!path.startsWith('/')) return undefined;
    path = removeDotSegments(path);
  } else if (!path.startsWith('/')) {
    return undefined;
  }
  if (mode === PathNormalization.MERGE_SLASHES || mode === PathNormalization.DECODE_AND_MERGE_SLASHES) {
    path = mergeSlashes(path);
  }
  return { path, query };
}

/**
 * Matches a normalised path with an Istio path value: `*`, `prefix*`, `*suffix`, exact, or a
 * template of whole segments where `{*}` is one segment and a final `{**}` is one or more.
 */
export function pathMatches(pattern: string, path: string): boolean {
  if (!pattern.includes('{')) {
    if (pattern === '*') return path.length > 0;
    if (pattern.startsWith('*')) return path.endsWith(pattern.slice(1));
    if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1));
    return path === pattern;
  }
  const want = pattern.split('/');
  const have = path.split('/');
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === '{**}') return have.length > i && have.slice(i).some(s => s.length > 0);
    const h = have[i];
    if (h === undefined) return false;
    if (w === '{*}') {
      if (h.length === 0) return false;
    } else if (w !== h) {
      return false;
    }
  }
  return have.length === want.length;
}
