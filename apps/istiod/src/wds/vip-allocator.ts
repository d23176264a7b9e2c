/**
 * VIP auto-allocation for ServiceEntries, as upstream's IP allocation controller does it: each
 * host that gets VIPs (see `allocatableHosts`) gets the next free IPv4 address of 240.240.0.0/16
 * and the next free IPv6 address of 2001:2::/48, written into `status.addresses` as
 * `{host, value}`. Addresses already in a status are kept; one held by a user-specified address or
 * by an older entry is a conflict, and the newer holder is given fresh addresses.
 *
 * The allocator only decides; the WDS index (its single writer) applies the decision and the
 * status writer patches it. An entry's Service carries the addresses once they are in its status.
 */
import { bytesToIp, formatIp, ipToBytes } from './ip.ts';
import { allocatableHosts, wantsAutoAllocation, type ValidServiceEntry } from './service-entry.ts';

export const IPV4_PREFIX = '240.240.0.0/16';
export const IPV6_PREFIX = '2001:2::/48';

export interface AllocatedAddress {
  readonly host: string;
  readonly value: string;
}

interface Holder {
  readonly key: string;
  readonly createdAt: number;
  /** From spec.addresses: never moved. */
  readonly user: boolean;
}

class PrefixPool {
  readonly #base: Uint8Array;
  readonly #hostBits: number;
  readonly #size: bigint;
  #next = 1n;

  constructor(prefix: string) {
    const [ip, bits] = prefix.split('/') as [string, string];
    this.#base = ipToBytes(ip)!;
    this.#hostBits = this.#base.length * 8 - Number(bits);
    this.#size = 1n << BigInt(this.#hostBits);
  }

  contains(ip: string): boolean {
    const bytes = ipToBytes(ip);
    if (bytes?.length !== this.#base.length) return false;
    const prefixBits = bytes.length * 8 - this.#hostBits;
    for (let bit = 0; bit < prefixBits; bit++) {
      const i = bit >> 3;
      const mask = 0x80 >> (bit & 7);
      if ((bytes[i]! & mask) !== (this.#base[i]! & mask)) return false;
    }
    return true;
  }

  /** The next address not `used`, from the last one given (wrapping once); undefined when full. */
  next(used: (ip: string) => boolean): string | undefined {
    // Skip the network address (offset 0) and, for IPv4, the broadcast address.
    const last = this.#base.length === 4 ? this.#size - 2n : this.#size - 1n;
    let offset = this.#next;
    for (let wrapped = false; ;) {
      if (offset > last) {
        if (wrapped) return undefined;
        wrapped = true;
        offset = 1n;
      }
      const ip = this.#at(offset);
      offset++;
      if (!used(ip)) {
        this.#next = offset;
        return ip;
      }
    }
  }

  #at(offset: bigint): string {
    const out = Uint8Array.from(this.#base);
    let rest = offset;
    for (let i = out.length - 1; i >= 0 && rest > 0n; i--) {
      out[i] = out[i]! | Number(rest & 0xffn);
      rest >>= 8n;
    }
    return out.length === 4 ? bytesToIp(out) : formatIp(out);
  }
}

/** What an entry's `status.addresses` should become; `changed` false when it already is. */
export interface AllocationPlan {
  readonly addresses: readonly AllocatedAddress[];
  readonly changed: boolean;
  /** Other entries that lost an address to this one and must be planned again. */
  readonly displaced: readonly string[];
}

export class VipAllocator {
  readonly #v4 = new PrefixPool(IPV4_PREFIX);
  readonly #v6 = new PrefixPool(IPV6_PREFIX);
  /** Address (canonical text) → who holds it. */
  readonly #holders = new Map<string, Holder>();
  /** Entry key → the addresses it holds. */
  readonly #held = new Map<string, Set<string>>();
  /** Entry key → addresses decided but not yet seen in its status (the write is on its way). */
  readonly #pending = new Map<string, Map<string, string[]>>();

  /** Forgets an entry's addresses (it was deleted). */
  release(key: string, forget = true): void {
    if (forget) this.#pending.delete(key);
    for (const ip of this.#held.get(key) ?? []) {
      if (this.#holders.get(ip)?.key === key) this.#holders.delete(ip);
    }
    this.#held.delete(key);
  }

  /** The entry holding an address, if any. */
  holderOf(ip: string): string | undefined {
    return this.#holders.get(canonical(ip))?.key;
  }

  /**
   * Records the entry's user addresses and status addresses, and decides its status addresses.
   * Entries that do not get VIPs keep whatever their status holds (`changed` false).
   */
  plan(se: ValidServiceEntry): AllocationPlan {
    this.release(se.key, false);
    const pending = this.#pending.get(se.key);
    const displaced = new Set<string>();
    const take = (ip: string, user: boolean): boolean => {
      const text = canonical(ip);
      const holder = this.#holders.get(text);
      if (holder !== undefined && holder.key !== se.key) {
        const mineWins = user ? !holder.user : !holder.user && older(se, holder);
        if (!mineWins) return false;
        displaced.add(holder.key);
        this.#held.get(holder.key)?.delete(text);
      }
      this.#holders.set(text, { key: se.key, createdAt: se.createdAt, user });
      let held = this.#held.get(se.key);
      if (held === undefined) this.#held.set(se.key, (held = new Set()));
      held.add(text);
      return true;
    };
    for (const ip of se.addresses) take(ip, true);
    const current = [...se.allocated].flatMap(([host, ips]) => ips.map(value => ({ host, value })));
    if (!wantsAutoAllocation(se)) return { addresses: current, changed: false, displaced: [...displaced] };
    const out: AllocatedAddress[] = [];
    for (const host of allocatableHosts(se)) {
      const existing = se.allocated.get(host) ?? pending?.get(host) ?? [];
      const kept = existing.filter(ip => take(ip, false));
      const hasV4 = kept.some(ip => ipToBytes(ip)?.length === 4);
      const hasV6 = kept.some(ip => ipToBytes(ip)?.length === 16);
      const fresh: string[] = [];
      const used = (ip: string): boolean => this.#holders.has(ip);
      if (!hasV4) {
        const ip = this.#v4.next(used);
        if (ip !== undefined && take(ip, false)) fresh.push(ip);
      }
      if (!hasV6) {
        const ip = this.#v6.next(used);
        if (ip !== undefined && take(ip, false)) fresh.push(ip);
      }
      // IPv4 first, as upstream writes them.
      const ips = [...kept, ...fresh].sort((a, b) => ipToBytes(a)!.length - ipToBytes(b)!.length);
      for (const value of ips) out.push({ host, value });
    }
    const changed = !sameAddresses(current, out);
    if (changed) {
      const byHost = new Map<string, string[]>();
      for (const a of out) byHost.set(a.host, [...(byHost.get(a.host) ?? []), a.value]);
      this.#pending.set(se.key, byHost);
    } else {
      this.#pending.delete(se.key);
    }
    return { addresses: out, changed, displaced: [...displaced] };
  }

  /** Whether an address is inside one of the allocation ranges. */
  static inRange(ip: string): boolean {
    return POOLS.some(p => p.contains(ip));
  }
}

const POOLS = [new PrefixPool(IPV4_PREFIX), new PrefixPool(IPV6_PREFIX)];

function older(se: ValidServiceEntry, holder: Holder): boolean {
  return se.createdAt !== holder.createdAt ? se.createdAt < holder.createdAt : se.key < holder.key;
}

function canonical(ip: string): string {
  const bytes = ipToBytes(ip);
  if (bytes === undefined) return ip;
  return bytes.length === 4 ? bytesToIp(bytes) : formatIp(bytes);
}

function sameAddresses(a: readonly AllocatedAddress[], b: readonly AllocatedAddress[]): boolean {
  if (a.length !== b.length) return false;
  const key = (x: AllocatedAddress): string => `${x.host} ${canonical(x.value)}`;
  const left = a.map(key).sort();
  const right = b.map(key).sort();
  return left.every((k, i) => k === right[i]);
}
