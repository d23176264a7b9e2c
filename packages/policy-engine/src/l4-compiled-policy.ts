/**
 * Compiles a wire `Authorization` into the form the L4 evaluator runs (`l4-evaluator.ts` holds
 * the semantics), and runs it. Compiling happens once per `Authorization` object (cached in a
 * WeakMap); a decision then touches as little memory as possible and allocates nothing per
 * policy.
 *
 * Compiled representation (`CompiledPolicy`):
 *
 * - `key`, `deny`, and `decision`: the frozen `L4Decision` this policy gives when it decides,
 *   allocated once.
 * - A destination-port pre-filter, `port` (+ `ports`): the ports for which some rule could
 *   match. `ANY_PORT` when a rule does not pin the port, `NO_PORT` when no rule can ever match,
 *   a port number when exactly one port can match, `MANY_PORTS` with the Set `ports` otherwise.
 *   It is a superset, derived from positive `destination_ports` only: a Match's set is its ports,
 *   a clause's the union over its Matches, a rule's the intersection over its clauses, the
 *   policy's the union over its rules. A policy whose rules pin other ports costs one comparison.
 * - `code`: the rules as one flat `Int32Array`, so a decision walks contiguous memory instead of
 *   one object graph per Match:
 *
 *   ```text
 *   code   = rule*
 *   rule   = ruleEnd clause*          (ruleEnd: index just past the rule)
 *   clause = clauseEnd record+        (clauseEnd: index just past the clause)
 *   record = port dstKind dstNet dstMask srcKind srcNet srcMask rest   (MATCH_WORDS = 8)
 *   ```
 *
 *   A rule matches when all its clauses do, a clause when any record does. A record holds the
 *   cheap checks inline: `port` is the one required destination port (-1: none); `dstKind` /
 *   `srcKind` are 1 when the field is exactly one IPv4 block, given as a signed 32-bit network and
 *   mask (0: no inline check). Every other populated field (several ports or blocks, IPv6 blocks,
 *   `not_*` lists, service accounts, principals, namespaces) is checked by one closure,
 *   `restChecks[rest]` (`rest` -1: none), that tests only those fields, cheapest first, with
 *   predicates specialised by size. It is compiled from `restMatches[rest]` on first use, so a
 *   Match that always fails its inline checks never costs a closure.
 *   Compile-time folding keeps the walk short: a Match with no populated field is dropped (ztunnel
 *   ignores it), a clause with zero Matches is dropped (it matches), and a rule with a clause of
 *   only empty Matches is dropped (it can never match). A rule left with no clause always matches.
 * - Checks read a `PreparedConnection`: the connection parsed once per decision (addresses as
 *   bytes and, for IPv4, signed 32-bit integers; the SPIFFE identity split into principal,
 *   namespace and service account).
 */
import { cidrContains } from './ip-cidr.ts';
import { MatchKind, fromStringMatch } from './string-match.ts';
import type { StringPattern } from './string-match.ts';
import type { security } from './wire.ts';
import { WireAction } from './wire.ts';

export type L4Reason = 'explicitly-denied' | 'not-allowed' | 'allowed' | 'no-policies' | 'invalid-connection';

export interface L4Decision {
  readonly allowed: boolean;
  /** `ns/name` of the deciding policy (the DENY that matched, or the ALLOW that matched). */
  readonly policy?: string;
  /**
   * `no-policies`: allowed because no ALLOW policy applies (and no DENY matched).
   * `invalid-connection`: denied because an address is unparsable or the identity is not a valid
   * SPIFFE ID (e.g. it holds a NUL byte): the engine fails closed.
   */
  readonly reason: L4Reason;
}

/** The connection with parsed addresses and identity, built once per decision. */
export interface PreparedConnection {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** True for IPv4 addresses (after unmapping `::ffff:a.b.c.d`). */
  readonly srcIsV4: boolean;
  readonly dstIsV4: boolean;
  /** IPv4 addresses as signed 32-bit integers; 0 for IPv6. */
  readonly src4: number;
  readonly dst4: number;
  readonly dstPort: number;
  /** The peer's SPIFFE ID without `spiffe://`; undefined for plaintext. */
  readonly principal: string | undefined;
  /** The namespace in the peer's SPIFFE ID; '' for plaintext (never present). */
  readonly namespace: string;
  /** The service account in the peer's SPIFFE ID; undefined for plaintext. */
  readonly serviceAccount: string | undefined;
}

type Check = (c: PreparedConnection) => boolean;

/** `CompiledPolicy.port` values other than a port number. */
export const ANY_PORT = -1;
export const NO_PORT = -2;
export const MANY_PORTS = -3;

export interface CompiledPolicy {
  readonly key: string;
  readonly deny: boolean;
  readonly decision: L4Decision;
  /** A port, or `ANY_PORT`, `NO_PORT`, `MANY_PORTS` (then see `ports`). */
  readonly port: number;
  readonly ports: ReadonlySet<number> | undefined;
  readonly code: Int32Array;
  /** Per record with a `rest` index: its wire Match, compiled into `restChecks` on first use. */
  readonly restMatches: readonly security.Match[];
  readonly restChecks: (Check | undefined)[];
}

// Offsets inside a Match record of `code`.
const R_PORT = 0;
const R_DST_KIND = 1;
const R_DST_NET = 2;
const R_DST_MASK = 3;
const R_SRC_KIND = 4;
const R_SRC_NET = 5;
const R_SRC_MASK = 6;
const R_REST = 7;
const MATCH_WORDS = 8;
/** `dstKind` / `srcKind`: the field is exactly one IPv4 block. */
const ONE_V4 = 1;
/** `port` / `rest`: nothing to check. */
const NO_CHECK = -1;

// ---- normalised Match fields ----

interface Cidr {
  readonly bytes: Uint8Array;
  readonly length: number;
  /** IPv4 only: the network and mask as signed 32-bit integers. */
  readonly v4: boolean;
  readonly net4: number;
  readonly mask4: number;
}
interface Sa {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** IPv4 bytes as a signed 32-bit integer. */
export function ipv4Int(b: Uint8Array): number {
  return (b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!;
}

function compileStrings(list: readonly security.StringMatch[]): StringPattern[] {
  const out: StringPattern[] = [];
  for (const m of list) {
    const p = fromStringMatch(m);
    if (p !== undefined) out.push(p);
  }
  return out;
}

/** Addresses ztunnel cannot build a network from (bad byte count, prefix too long) are dropped. */
function compileCidrs(list: readonly security.Address[]): Cidr[] {
  const out: Cidr[] = [];
  for (const a of list) {
    const n = a.address.length;
    if ((n === 4 || n === 16) && a.length >= 0 && a.length <= n * 8) {
      const v4 = n === 4;
      const mask4 = v4 && a.length > 0 ? 0xffffffff << (32 - a.length) : 0;
      const net4 = v4 ? ipv4Int(a.address) & mask4 : 0;
      out.push({ bytes: a.address, length: a.length, v4, net4, mask4 });
    }
  }
  return out;
}

/** Ports are `u16` in ztunnel: larger wire values wrap. */
const toU16 = (p: number): number => p & 0xffff;

// ---- specialised predicates for the `rest` closure ----

type StringTest = (v: string) => boolean;

/** OR of the patterns (presence means "non-empty"). */
function stringTest(patterns: readonly StringPattern[]): StringTest {
  if (patterns.length === 1) {
    const { kind, value } = patterns[0]!;
    switch (kind) {
      case MatchKind.EXACT:
        return s => s === value;
      case MatchKind.PREFIX:
        return s => s.startsWith(value);
      case MatchKind.SUFFIX:
        return s => s.endsWith(value);
      default:
        return s => s.length > 0;
    }
  }
  return s => {
    for (const p of patterns) {
      switch (p.kind) {
        case MatchKind.EXACT:
          if (s === p.value) return true;
          break;
        case MatchKind.PREFIX:
          if (s.startsWith(p.value)) return true;
          break;
        case MatchKind.SUFFIX:
          if (s.endsWith(p.value)) return true;
          break;
        default:
          if (s.length > 0) return true;
      }
    }
    return false;
  };
}

type IpTest = (ip: Uint8Array, isV4: boolean, ip4: number) => boolean;

/** OR of the blocks. Families never mix: an IPv4 block holds no IPv6 address and vice versa. */
function cidrTest(list: readonly Cidr[]): IpTest {
  const v4 = list.filter(c => c.v4);
  const v6 = list.filter(c => !c.v4);
  return (ip, isV4, ip4) => {
    if (isV4) {
      for (const c of v4) if ((ip4 & c.mask4) === c.net4) return true;
      return false;
    }
    for (const c of v6) if (cidrContains(c.bytes, c.length, ip)) return true;
    return false;
  };
}

function portsCheck(ports: readonly number[], negate: boolean): Check {
  if (ports.length === 1) {
    const p = ports[0]!;
    return negate ? c => c.dstPort !== p : c => c.dstPort === p;
  }
  const set = new Set(ports);
  return negate ? c => !set.has(c.dstPort) : c => set.has(c.dstPort);
}

function ipCheck(list: readonly Cidr[], which: 'src' | 'dst', negate: boolean): Check {
  const t = cidrTest(list);
  if (which === 'src') return negate ? c => !t(c.src, c.srcIsV4, c.src4) : c => t(c.src, c.srcIsV4, c.src4);
  return negate ? c => !t(c.dst, c.dstIsV4, c.dst4) : c => t(c.dst, c.dstIsV4, c.dst4);
}

function saCheck(list: readonly Sa[], negate: boolean): Check {
  // A plaintext peer has no service account, so it never equals a listed one.
  const any = (c: PreparedConnection): boolean => {
    for (const s of list)
      if (s.serviceAccount === c.serviceAccount && s.namespace === c.namespace) return true;
    return false;
  };
  return negate ? c => !any(c) : any;
}

function principalCheck(patterns: readonly StringPattern[], negate: boolean): Check {
  const t = stringTest(patterns);
  // A plaintext peer never matches a principal pattern, not even presence.
  return negate
    ? c => c.principal === undefined || !t(c.principal)
    : c => c.principal !== undefined && t(c.principal);
}

function namespaceCheck(patterns: readonly StringPattern[], negate: boolean): Check {
  const t = stringTest(patterns);
  return negate ? c => !t(c.namespace) : c => t(c.namespace);
}

/** AND of at least one check. */
function allOf(checks: readonly Check[]): Check {
  switch (checks.length) {
    case 1:
      return checks[0]!;
    case 2: {
      const [a, b] = checks as [Check, Check];
      return c => a(c) && b(c);
    }
    default:
      return c => {
        for (const f of checks) if (!f(c)) return false;
        return true;
      };
  }
}

// ---- compilation ----

/** Ports a term can match: undefined means any port. */
type PortSet = readonly number[] | undefined;

const NO_PORTS: readonly number[] = [];

/** Distinct u16 ports of a wire list. */
function u16Ports(list: readonly number[]): readonly number[] {
  if (list.length === 0) return NO_PORTS;
  if (list.length === 1) return [toU16(list[0]!)];
  return [...new Set(list.map(toU16))];
}

/** A membership test over a port list, with a Set once the list is long. */
function has(list: readonly number[]): (p: number) => boolean {
  if (list.length <= 8) return p => list.includes(p);
  const set = new Set(list);
  return p => set.has(p);
}

/** The fields of a Match that its record checks inline. */
interface InlinePart {
  readonly ports: readonly number[];
  /** The single IPv4 destination / source block, when that is the whole field. */
  readonly dst: Cidr | undefined;
  readonly src: Cidr | undefined;
}

function inlinePart(m: security.Match): InlinePart {
  const dstIps = compileCidrs(m.destinationIps);
  const srcIps = compileCidrs(m.sourceIps);
  return {
    ports: u16Ports(m.destinationPorts),
    dst: dstIps.length === 1 && dstIps[0]!.v4 ? dstIps[0] : undefined,
    src: srcIps.length === 1 && srcIps[0]!.v4 ? srcIps[0] : undefined,
  };
}

/**
 * Makers of the checks of a Match that its record does not hold inline, cheapest first (the order
 * does not change the result). Nothing is compiled until a maker is called.
 */
function restCheckMakers(m: security.Match, inline: InlinePart): (() => Check)[] {
  const out: (() => Check)[] = [];
  const { ports, dst, src } = inline;
  const cidrs = (list: readonly security.Address[]) => (list.length === 0 ? [] : compileCidrs(list));
  const strings = (list: readonly security.StringMatch[]) => (list.length === 0 ? [] : compileStrings(list));
  const dstIps = dst === undefined ? cidrs(m.destinationIps) : [];
  const notDstIps = cidrs(m.notDestinationIps);
  const srcIps = src === undefined ? cidrs(m.sourceIps) : [];
  const notSrcIps = cidrs(m.notSourceIps);
  const principals = strings(m.principals);
  const notPrincipals = strings(m.notPrincipals);
  const namespaces = strings(m.namespaces);
  const notNamespaces = strings(m.notNamespaces);
  if (ports.length > 1) out.push(() => portsCheck(ports, false));
  if (m.notDestinationPorts.length > 0) out.push(() => portsCheck(u16Ports(m.notDestinationPorts), true));
  if (dstIps.length > 0) out.push(() => ipCheck(dstIps, 'dst', false));
  if (notDstIps.length > 0) out.push(() => ipCheck(notDstIps, 'dst', true));
  if (srcIps.length > 0) out.push(() => ipCheck(srcIps, 'src', false));
  if (notSrcIps.length > 0) out.push(() => ipCheck(notSrcIps, 'src', true));
  if (m.serviceAccounts.length > 0) out.push(() => saCheck(m.serviceAccounts, false));
  if (m.notServiceAccounts.length > 0) out.push(() => saCheck(m.notServiceAccounts, true));
  if (principals.length > 0) out.push(() => principalCheck(principals, false));
  if (notPrincipals.length > 0) out.push(() => principalCheck(notPrincipals, true));
  if (namespaces.length > 0) out.push(() => namespaceCheck(namespaces, false));
  if (notNamespaces.length > 0) out.push(() => namespaceCheck(notNamespaces, true));
  return out;
}

/** Compiles the `rest` closure of record `r` on its first use. */
function compileRest(p: CompiledPolicy, r: number): Check {
  const m = p.restMatches[r]!;
  const check = allOf(restCheckMakers(m, inlinePart(m)).map(make => make()));
  p.restChecks[r] = check;
  return check;
}

/**
 * Appends one Match record to `code` (and its Match to `restMatches` when it has checks beyond
 * the inline ones); returns the ports it can match, or false when the Match has no populated
 * field (ztunnel ignores it; nothing appended).
 */
function emitMatch(m: security.Match, code: number[], restMatches: security.Match[]): PortSet | false {
  const inline = inlinePart(m);
  const { ports, dst, src } = inline;
  const hasRest = restCheckMakers(m, inline).length > 0;
  if (ports.length === 0 && dst === undefined && src === undefined && !hasRest) return false;
  code.push(
    ports.length === 1 ? ports[0]! : NO_CHECK,
    dst === undefined ? 0 : ONE_V4,
    dst?.net4 ?? 0,
    dst?.mask4 ?? 0,
    src === undefined ? 0 : ONE_V4,
    src?.net4 ?? 0,
    src?.mask4 ?? 0,
    hasRest ? restMatches.push(m) - 1 : NO_CHECK,
  );
  return ports.length > 0 ? ports : undefined;
}

function union(a: PortSet, b: PortSet): PortSet {
  if (a === undefined || b === undefined) return undefined;
  if (a.length === 0 || a === b) return b;
  const inA = has(a);
  const extra = b.filter(p => !inA(p));
  return extra.length === 0 ? a : [...a, ...extra];
}

function intersect(a: PortSet, b: PortSet): PortSet {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a === b) return a;
  return a.filter(has(b));
}

/**
 * Appends one rule to `code`; returns the ports it can match, or false when it can never match
 * (a clause of only empty Matches; nothing appended).
 */
function emitRule(rule: security.Rule, code: number[], rest: security.Match[]): PortSet | false {
  const start = code.length;
  const restStart = rest.length;
  code.push(0); // ruleEnd, patched below
  let rulePorts: PortSet = undefined;
  for (const clause of rule.clauses) {
    if (clause.matches.length === 0) continue; // zero Matches: the clause matches
    const clauseStart = code.length;
    code.push(0); // clauseEnd, patched below
    let clausePorts: PortSet = NO_PORTS;
    for (const m of clause.matches) {
      const ports = emitMatch(m, code, rest);
      if (ports !== false) clausePorts = union(clausePorts, ports);
    }
    if (code.length === clauseStart + 1) {
      // Only empty Matches: the clause, hence the rule, never matches.
      code.length = start;
      rest.length = restStart;
      return false;
    }
    code[clauseStart] = code.length;
    rulePorts = intersect(rulePorts, clausePorts);
  }
  code[start] = code.length;
  return rulePorts;
}

function build(policy: security.Authorization): CompiledPolicy {
  const key = `${policy.namespace}/${policy.name}`;
  const deny = policy.action === WireAction.DENY;
  const decision: L4Decision = Object.freeze(
    deny
      ? { allowed: false, policy: key, reason: 'explicitly-denied' as const }
      : { allowed: true, policy: key, reason: 'allowed' as const },
  );
  const code: number[] = [];
  const rest: security.Match[] = [];
  let ports: PortSet = NO_PORTS;
  for (const rule of policy.rules) {
    const rulePorts = emitRule(rule, code, rest);
    if (rulePorts !== false) ports = union(ports, rulePorts);
  }
  let port: number = MANY_PORTS;
  if (code.length === 0 || ports?.length === 0) port = NO_PORT;
  else if (ports === undefined) port = ANY_PORT;
  else if (ports.length === 1) port = ports[0]!;
  return {
    key,
    deny,
    decision,
    port,
    ports: port === MANY_PORTS ? new Set(ports) : undefined,
    code: Int32Array.from(code),
    restMatches: rest,
    restChecks: new Array<Check | undefined>(rest.length).fill(undefined),
  };
}

const cache = new WeakMap<security.Authorization, CompiledPolicy>();

/** The compiled form of a policy, built on first use and cached per object. */
export function compilePolicy(policy: security.Authorization): CompiledPolicy {
  let c = cache.get(policy);
  if (c === undefined) {
    c = build(policy);
    cache.set(policy, c);
  }
  return c;
}

// ---- evaluation ----

/** True when the policy's rules match the connection (its port pre-filter included). */
export function policyMatches(p: CompiledPolicy, c: PreparedConnection): boolean {
  const port = c.dstPort;
  const f = p.port;
  if (f !== port && f !== ANY_PORT && !(f === MANY_PORTS && p.ports!.has(port))) return false;
  const code = p.code;
  const rest = p.restChecks;
  const { dstIsV4, dst4, srcIsV4, src4 } = c;
  const n = code.length;
  let i = 0;
  while (i < n) {
    const ruleEnd = code[i++]!;
    let ruleMatches = true;
    while (i < ruleEnd) {
      const clauseEnd = code[i++]!;
      let clauseMatches = false;
      for (; i < clauseEnd; i += MATCH_WORDS) {
        const want = code[i + R_PORT]!;
        if (want !== NO_CHECK && want !== port) continue;
        if (code[i + R_DST_KIND] === ONE_V4) {
          if (!dstIsV4 || (dst4 & code[i + R_DST_MASK]!) !== code[i + R_DST_NET]) continue;
        }
        if (code[i + R_SRC_KIND] === ONE_V4) {
          if (!srcIsV4 || (src4 & code[i + R_SRC_MASK]!) !== code[i + R_SRC_NET]) continue;
        }
        const r = code[i + R_REST]!;
        if (r === NO_CHECK || (rest[r] ?? compileRest(p, r))(c)) {
          clauseMatches = true;
          break;
        }
      }
      if (!clauseMatches) {
        ruleMatches = false;
        break;
      }
      i = clauseEnd;
    }
    if (ruleMatches) return true;
    i = ruleEnd;
  }
  return false;
}
