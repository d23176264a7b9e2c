import { InvalidSpiffeIdError } from './errors.ts';

/** The trust domain Istio uses when none is configured. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const PREFIX = 'spiffe://';
/** SPIFFE spec limits: a trust domain is at most 255 bytes, the whole URI at most 2048. */
const MAX_TRUST_DOMAIN_LENGTH = 255;
const MAX_URI_LENGTH = 2048;
/** Lowercase letters, digits, `.`, `-` and `_` (SPIFFE ID spec, trust domain name). */
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
/** Letters, digits, `.`, `-` and `_` (SPIFFE ID spec, path segment): no `%`, no NUL, no spaces. */
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

export interface SpiffeIdParts {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/**
 * A workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 *
 * Parsing is strict, like ztunnel's: exactly five `/`-separated parts after the scheme, with
 * the literal `ns` and `sa` at positions 1 and 3. On top of that every part must use the SPIFFE
 * character set, so percent-encoding, NUL bytes, empty or dot segments and uppercase trust
 * domains never parse. Because the canonical form is plain ASCII, `equals` (comparison of
 * `uri`) is an exact byte comparison.
 */
export class SpiffeId implements SpiffeIdParts {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The canonical URI form. */
  readonly uri: string;

  private constructor(parts: SpiffeIdParts) {
    this.trustDomain = parts.trustDomain;
    this.namespace = parts.namespace;
    this.serviceAccount = parts.serviceAccount;
    this.uri = `${PREFIX}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`;
    Object.freeze(this);
  }

  /** Parses a SPIFFE URI; throws {@link InvalidSpiffeIdError} when it is not strictly valid. */
  static parse(uri: string): SpiffeId {
    const result = SpiffeId.tryParse(uri);
    if (!result.ok) throw result.error;
    return result.value;
  }

  /** Parses a SPIFFE URI into a result object instead of throwing. */
  static tryParse(
    uri: string,
  ):
    | { readonly ok: true; readonly value: SpiffeId }
    | { readonly ok: false; readonly error: InvalidSpiffeIdError } {
    const problem = uriProblem(uri);
    if (problem !== undefined) return { ok: false, error: new InvalidSpiffeIdError(problem) };
    const parts = uri.slice(PREFIX.length).split('/');
    return {
      ok: true,
      value: new SpiffeId({ trustDomain: parts[0]!, namespace: parts[2]!, serviceAccount: parts[4]! }),
    };
  }

  /** Builds an identity from its parts, validating each; throws {@link InvalidSpiffeIdError}. */
  static of(parts: SpiffeIdParts): SpiffeId {
    return SpiffeId.parse(`${PREFIX}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`);
  }

  /** True when `uri` is a strictly valid SPIFFE workload identity. */
  static isValid(uri: string): boolean {
    return uriProblem(uri) === undefined;
  }

  /** Exact comparison of the canonical forms. */
  equals(other: SpiffeId | string): boolean {
    return this.uri === (typeof other === 'string' ? other : other.uri);
  }

  toString(): string {
    return this.uri;
  }

  toJSON(): string {
    return this.uri;
  }
}

function uriProblem(uri: string): string | undefined {
  if (typeof uri !== 'string') return 'not a string';
  if (uri.length > MAX_URI_LENGTH) return `longer than ${MAX_URI_LENGTH} bytes`;
  if (!uri.startsWith(PREFIX)) return `"${printable(uri)}" does not start with ${PREFIX}`;
  const parts = uri.slice(PREFIX.length).split('/');
  if (parts.length !== 5) return `"${printable(uri)}" has ${parts.length} path parts, not 5`;
  const [trustDomain, ns, namespace, sa, serviceAccount] = parts as [string, string, string, string, string];
  if (ns !== 'ns' || sa !== 'sa') return `"${printable(uri)}" lacks the /ns/<namespace>/sa/<account> layout`;
  if (trustDomain.length === 0 || trustDomain.length > MAX_TRUST_DOMAIN_LENGTH)
    return `trust domain must be 1 to ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (!TRUST_DOMAIN_RE.test(trustDomain))
    return `trust domain "${printable(trustDomain)}" may only hold a-z, 0-9, '.', '-' and '_'`;
  for (const [name, segment] of [
    ['namespace', namespace],
    ['service account', serviceAccount],
  ] as const) {
    if (!SEGMENT_RE.test(segment) || segment === '.' || segment === '..')
      return `${name} "${printable(segment)}" may only hold letters, digits, '.', '-' and '_'`;
  }
  return undefined;
}

/** Escapes control and non-ASCII characters so error messages never carry raw NULs. */
function printable(text: string): string {
  const shown = text.length > 120 ? `${text.slice(0, 120)}...` : text;
  return shown.replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
