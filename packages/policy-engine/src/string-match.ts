/**
 * Istio's wildcard strings: `*` (present), `*suffix`, `prefix*`, anything else exact.
 * Matching uses plain string operations only: no regular expression is ever built from a policy
 * value (CVE-2026-39350).
 */
import type { security } from './wire.ts';

/** The match kinds of `istio.security.StringMatch`, as ordinal numbers for fast dispatch. */
export const MatchKind = { EXACT: 0, PREFIX: 1, SUFFIX: 2, PRESENCE: 3 } as const;
export type MatchKind = (typeof MatchKind)[keyof typeof MatchKind];

/** A string match reduced to its kind and value. */
export interface StringPattern {
  readonly kind: MatchKind;
  readonly value: string;
}

/** Parses one Istio policy value (`*`, `*x`, `x*`, or exact) into a pattern. */
export function parsePattern(value: string): StringPattern {
  if (value === '*') return { kind: MatchKind.PRESENCE, value: '' };
  if (value.startsWith('*')) return { kind: MatchKind.SUFFIX, value: value.slice(1) };
  if (value.endsWith('*')) return { kind: MatchKind.PREFIX, value: value.slice(0, -1) };
  return { kind: MatchKind.EXACT, value };
}

/** Converts one Istio policy value into the wire `StringMatch`, exactly as istiod does. */
export function toStringMatch(value: string): security.StringMatch {
  const p = parsePattern(value);
  switch (p.kind) {
    case MatchKind.PRESENCE:
      return { presence: {}, matchType: 'presence' };
    case MatchKind.SUFFIX:
      return { suffix: p.value, matchType: 'suffix' };
    case MatchKind.PREFIX:
      return { prefix: p.value, matchType: 'prefix' };
    default:
      return { exact: p.value, matchType: 'exact' };
  }
}

/**
 * Reads a decoded wire `StringMatch`. Returns undefined when no match type is set: ztunnel drops
 * such entries from the list.
 */
export function fromStringMatch(m: security.StringMatch): StringPattern | undefined {
  switch (m.matchType) {
    case 'exact':
      return m.exact === undefined ? undefined : { kind: MatchKind.EXACT, value: m.exact };
    case 'prefix':
      return m.prefix === undefined ? undefined : { kind: MatchKind.PREFIX, value: m.prefix };
    case 'suffix':
      return m.suffix === undefined ? undefined : { kind: MatchKind.SUFFIX, value: m.suffix };
    case 'presence':
      return { kind: MatchKind.PRESENCE, value: '' };
    case undefined:
      break;
  }
  if (m.exact !== undefined) return { kind: MatchKind.EXACT, value: m.exact };
  if (m.prefix !== undefined) return { kind: MatchKind.PREFIX, value: m.prefix };
  if (m.suffix !== undefined) return { kind: MatchKind.SUFFIX, value: m.suffix };
  if (m.presence !== undefined) return { kind: MatchKind.PRESENCE, value: '' };
  return undefined;
}

/** True when `value` satisfies the pattern. Presence means "non-empty". */
export function patternMatches(p: StringPattern, value: string): boolean {
  switch (p.kind) {
    case MatchKind.EXACT:
      return value === p.value;
    case MatchKind.PREFIX:
      return value.startsWith(p.value);
    case MatchKind.SUFFIX:
      return value.endsWith(p.value);
    default:
      return value.length > 0;
  }
}

/** Like {@link patternMatches}, comparing ASCII letters without case. */
export function patternMatchesIgnoreCase(p: StringPattern, value: string): boolean {
  return patternMatches({ kind: p.kind, value: p.value.toLowerCase() }, value.toLowerCase());
}
