/**
 * A small vocabulary of nftables matches and statements. Each piece renders twice: as `nft -f`
 * text and as the JSON expression `nft -j list ruleset` prints for it (nft 1.0.6), so one rule
 * definition serves both the script and drift detection.
 */
import { MARK_MASK } from './constants.ts';

/** One expression of a rule, in both syntaxes. */
export interface NftExpr {
  readonly text: string;
  readonly json: unknown;
}

export type MatchOp = '==' | '!=';
export type IpProto = 'ip' | 'ip6';

const hex = (n: number): string => `0x${n.toString(16)}`;
const ne = (op: MatchOp): string => (op === '!=' ? '!= ' : '');

function match(op: MatchOp, left: unknown, right: unknown): unknown {
  return { match: { op, left, right } };
}

const meta = (key: string): unknown => ({ meta: { key } });
const ct = (key: string): unknown => ({ ct: { key } });
const payload = (protocol: string, field: string): unknown => ({ payload: { protocol, field } });

/** `meta l4proto tcp|udp` */
export function l4proto(proto: 'tcp' | 'udp'): NftExpr {
  return { text: `meta l4proto ${proto}`, json: match('==', meta('l4proto'), proto) };
}

/** `meta nfproto ipv4|ipv6`: limits a family-agnostic rule of an inet table to one family. */
export function nfproto(family: 'ipv4' | 'ipv6'): NftExpr {
  return { text: `meta nfproto ${family}`, json: match('==', meta('nfproto'), family) };
}

/** `iifname "x"` / `oifname != "lo"` */
export function ifname(dir: 'iifname' | 'oifname', op: MatchOp, name: string): NftExpr {
  return { text: `${dir} ${ne(op)}"${name}"`, json: match(op, meta(dir), name) };
}

/** `ip daddr != 127.0.0.1`, `ip6 saddr fd16::1` */
export function address(proto: IpProto, field: 'saddr' | 'daddr', op: MatchOp, value: string): NftExpr {
  return { text: `${proto} ${field} ${ne(op)}${value}`, json: match(op, payload(proto, field), value) };
}

/** `ip daddr @set` */
export function addressInSet(proto: IpProto, field: 'saddr' | 'daddr', set: string): NftExpr {
  return { text: `${proto} ${field} @${set}`, json: match('==', payload(proto, field), `@${set}`) };
}

/** `tcp dport != 15008`, `udp sport 53` */
export function port(proto: 'tcp' | 'udp', field: 'sport' | 'dport', op: MatchOp, value: number): NftExpr {
  return { text: `${proto} ${field} ${ne(op)}${value}`, json: match(op, payload(proto, field), value) };
}

/** `meta mark & 0xfff == 0x539` */
export function packetMark(op: MatchOp, value: number): NftExpr {
  return {
    text: `meta mark & ${hex(MARK_MASK)} ${op} ${hex(value)}`,
    json: match(op, { '&': [meta('mark'), MARK_MASK] }, value),
  };
}

/** `ct mark & 0xfff == 0x111` */
export function connMark(op: MatchOp, value: number): NftExpr {
  return {
    text: `ct mark & ${hex(MARK_MASK)} ${op} ${hex(value)}`,
    json: match(op, { '&': [ct('mark'), MARK_MASK] }, value),
  };
}

/** `meta skuid 1000`: the socket owner (host side). */
export function socketUid(uid: number): NftExpr {
  return { text: `meta skuid ${uid}`, json: match('==', meta('skuid'), uid) };
}

/** `fib saddr type local`: the source is one of this host's own addresses. */
export function localSource(): NftExpr {
  return {
    text: 'fib saddr type local',
    json: match('==', { fib: { result: 'type', flags: ['saddr'] } }, 'local'),
  };
}

export const accept: NftExpr = { text: 'accept', json: { accept: null } };
export const ret: NftExpr = { text: 'return', json: { return: null } };

/** `redirect to :15001` */
export function redirect(toPort: number): NftExpr {
  return { text: `redirect to :${toPort}`, json: { redirect: { port: toPort } } };
}

/** `jump istio-output` */
export function jump(chain: string): NftExpr {
  return { text: `jump ${chain}`, json: { jump: { target: chain } } };
}

/**
 * `ct mark set ct mark & ~mask | value` (iptables `CONNMARK --set-xmark value/mask`). nft folds
 * the constants when it loads the rule: `(m & 0xfffff000) | 0x111` is stored and listed as
 * `(m & 0xfffff111) | 0x111`, which is the same function; the JSON form is the folded one.
 */
export function setConnMark(value: number): NftExpr {
  const keep = ~MARK_MASK >>> 0;
  const folded = (keep | value) >>> 0;
  return {
    text: `ct mark set ct mark & ${hex(keep)} | ${hex(value)}`,
    json: { mangle: { key: ct('mark'), value: { '|': [{ '&': [ct('mark'), folded] }, value] } } },
  };
}

/** `meta mark set ct mark` (iptables `CONNMARK --restore-mark` with full masks). */
export function restoreMarkFromConn(): NftExpr {
  return { text: 'meta mark set ct mark', json: { mangle: { key: meta('mark'), value: ct('mark') } } };
}

/** `ct zone set 1` */
export function setConnZone(zone: number): NftExpr {
  return { text: `ct zone set ${zone}`, json: { mangle: { key: ct('zone'), value: zone } } };
}

/** `snat ip to 169.254.7.127` */
export function snat(proto: IpProto, to: string): NftExpr {
  return { text: `snat ${proto} to ${to}`, json: { snat: { family: proto, addr: to } } };
}
