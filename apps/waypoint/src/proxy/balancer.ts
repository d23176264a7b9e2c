/**
 * Per-cluster load balancing and circuit-breaker accounting, owned by the data path.
 *
 * `pickEndpoint` is pure (given the balancer's counters and a random source): healthy endpoints
 * only (all of them when none is healthy, as Envoy's panic mode), previously tried hosts avoided
 * when another is left. Round robin keeps one cursor per cluster; least request takes the less
 * loaded of two random picks; ring hash and Maglev map a request hash onto a ring of virtual
 * nodes (weight × 64 per endpoint), so the same key keeps the same endpoint while the set holds.
 */
import type { ClusterConfig, Endpoint } from '../config/types.ts';

export function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}`;
}

/** FNV-1a, 32 bits. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

interface Ring {
  readonly points: Uint32Array;
  readonly owners: readonly Endpoint[];
}

const rings = new WeakMap<readonly Endpoint[], Ring>();

function ringOf(endpoints: readonly Endpoint[]): Ring {
  let ring = rings.get(endpoints);
  if (ring !== undefined) return ring;
  const entries: { point: number; owner: Endpoint }[] = [];
  for (const e of endpoints) {
    const replicas = 64 * Math.max(1, e.weight);
    for (let i = 0; i < replicas; i++) entries.push({ point: hash32(`${endpointKey(e)}_${i}`), owner: e });
  }
  entries.sort((a, b) => a.point - b.point);
  ring = { points: Uint32Array.from(entries.map(e => e.point)), owners: entries.map(e => e.owner) };
  rings.set(endpoints, ring);
  return ring;
}

export class ClusterBalancer {
  readonly name: string;
  #cursor = 0;
  /** Requests in flight per endpoint key. */
  readonly #active = new Map<string, number>();
  /** Requests in flight on the cluster (for `max_requests`). */
  activeRequests = 0;
  /** Retries in flight (for `max_retries`). */
  activeRetries = 0;
  /** Counters for `/stats`: overflows by threshold. */
  readonly overflows = { requests: 0, pending: 0, retries: 0 };

  constructor(name: string) {
    this.name = name;
  }

  activeOn(e: Endpoint): number {
    return this.#active.get(endpointKey(e)) ?? 0;
  }

  started(e: Endpoint): void {
    this.#active.set(endpointKey(e), this.activeOn(e) + 1);
  }

  finished(e: Endpoint): void {
    const n = this.activeOn(e) - 1;
    if (n <= 0) this.#active.delete(endpointKey(e));
    else this.#active.set(endpointKey(e), n);
  }

  pick(
    cluster: ClusterConfig,
    endpoints: readonly Endpoint[],
    options: {
      readonly hash: number | undefined;
      readonly exclude: ReadonlySet<string>;
      readonly random: () => number;
    },
  ): Endpoint | undefined {
    const healthy = endpoints.filter(e => e.healthy);
    const pool0 = healthy.length > 0 ? healthy : endpoints;
    const fresh = pool0.filter(e => !options.exclude.has(endpointKey(e)));
    const pool = fresh.length > 0 ? fresh : pool0;
    if (pool.length === 0) return undefined;
    switch (cluster.lbPolicy) {
      case 'ring-hash':
      case 'maglev': {
        if (options.hash === undefined) return pool[Math.floor(options.random() * pool.length)];
        const ring = ringOf(pool === endpoints ? endpoints : pool);
        let lo = 0;
        let hi = ring.points.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (ring.points[mid]! < options.hash) lo = mid + 1;
          else hi = mid;
        }
        return ring.owners[lo % ring.owners.length];
      }
      case 'random':
        return weightedRandom(pool, options.random());
      case 'least-request': {
        const a = pool[Math.floor(options.random() * pool.length)]!;
        const b = pool[Math.floor(options.random() * pool.length)]!;
        return this.activeOn(b) < this.activeOn(a) ? b : a;
      }
      case 'round-robin': {
        const e = pool[this.#cursor % pool.length];
        this.#cursor = (this.#cursor + 1) % 1_000_000_007;
        return e;
      }
    }
  }
}

function weightedRandom(pool: readonly Endpoint[], random: number): Endpoint | undefined {
  const total = pool.reduce((s, e) => s + Math.max(0, e.weight), 0);
  if (total <= 0) return pool[Math.floor(random * pool.length)];
  let point = random * total;
  for (const e of pool) {
    if (point < e.weight) return e;
    point -= e.weight;
  }
  return pool[pool.length - 1];
}
