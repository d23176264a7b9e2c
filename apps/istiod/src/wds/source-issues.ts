/**
 * Typed validation results for istiod's non-pod sources (EndpointSlice, ServiceEntry,
 * WorkloadEntry). Every issue has a stable code, the field path and a message that says what
 * to fix; the index keeps the object out of WDS and the status writer reports the issues.
 */
import { MeshError } from '@ambient-mesh/errors';

export const SourceIssueCode = {
  /** A host that is not a DNS name, a bare `*`, or a wildcard where it cannot be used. */
  INVALID_HOST: 'ISTIOD_SOURCE_INVALID_HOST',
  /** An address that is neither an IP nor a CIDR (or, for endpoints, not an IP/hostname). */
  INVALID_ADDRESS: 'ISTIOD_SOURCE_INVALID_ADDRESS',
  /** A port number outside 1–65535, or a duplicate port number or name. */
  INVALID_PORT: 'ISTIOD_SOURCE_INVALID_PORT',
  /** Fields that cannot be combined (resolution vs endpoints, selector vs endpoints). */
  INVALID_COMBINATION: 'ISTIOD_SOURCE_INVALID_COMBINATION',
  /** A required field is missing. */
  MISSING_FIELD: 'ISTIOD_SOURCE_MISSING_FIELD',
  /** A ServiceEntry address another (older) ServiceEntry or a Service already uses. */
  ADDRESS_CONFLICT: 'ISTIOD_SOURCE_ADDRESS_CONFLICT',
} as const;
export type SourceIssueCode = (typeof SourceIssueCode)[keyof typeof SourceIssueCode];

export interface SourceIssue {
  readonly code: SourceIssueCode;
  /** The field path, e.g. `spec.hosts[1]`. */
  readonly path: string;
  readonly message: string;
}

export type Validated<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly SourceIssue[] };

/** The issues of one object, as a typed error for logs and callers that throw. */
export class SourceValidationError extends MeshError {
  readonly issues: readonly SourceIssue[];

  constructor(kind: string, key: string, issues: readonly SourceIssue[]) {
    super(
      issues[0]?.code ?? SourceIssueCode.MISSING_FIELD,
      `${kind} ${key} was not applied: ${formatIssues(issues)}`,
    );
    this.issues = issues;
  }
}

export function formatIssues(issues: readonly SourceIssue[]): string {
  return issues.map(i => `${i.path}: ${i.message}`).join('; ');
}

export function issue(code: SourceIssueCode, path: string, message: string): SourceIssue {
  return { code, path, message };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;

/**
 * A DNS name (each label 1–63 characters of letters, digits and inner hyphens, 255 in all) or,
 * when `wildcard` allows, `*.` followed by one. Returns the problem, or undefined when valid.
 */
export function hostProblem(host: string, wildcard: boolean): string | undefined {
  if (host === '') return 'must not be empty';
  if (host === '*') return 'a bare "*" is not allowed; use "*.<domain>"';
  let rest = host;
  if (host.startsWith('*.')) {
    if (!wildcard) return 'a wildcard host is not allowed here';
    rest = host.slice(2);
  } else if (host.includes('*')) {
    return 'a "*" is only allowed as the whole first label ("*.<domain>")';
  }
  if (rest.length > 253) return 'is longer than 253 characters';
  const labels = rest.endsWith('.') ? rest.slice(0, -1).split('.') : rest.split('.');
  for (const label of labels) {
    if (label.length === 0 || label.length > 63 || !DNS_LABEL.test(label))
      return `"${label}" is not a valid DNS label (letters, digits and inner "-", 1–63 characters)`;
  }
  return undefined;
}
