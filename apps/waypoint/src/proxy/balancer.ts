/**
 * Per-cluster load balancing and circuit-breaker accounting, owned by the data path.
 *
 * `pickEndpoint` is pure (given the balancer's counters and a random source): healthy endpoints
 * only (all of them when none is healthy, as Envoy's panic mode), previously tried hosts avoided
 * when another is left. Round robin keeps one cursor per cluster; least request takes the less
 * loaded of two random picks; ring hash and Maglev map a request hash onto a ring of virtual
 * nodes (weight × 64 per endpoint), so the same key keeps the same endpoint while the set holds.
 *
 * Outlier detection (consecutive errors) keeps per-host counters here too: a host that reaches a
 * threshold is ejected at once, for the base ejection time × its ejection count, unless the
 * cluster's maximum share of ejected hosts is reached. Ejection ends by time (checked at each
 * pick), so no timer runs.
 */
import type { ClusterConfig, Endpoint, OutlierDetection } from '../config/types.ts';

/** What one upstream attempt came to, for outlier detection. */
export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number }
  /** A local-origin failure: the tunnel could not be opened, was reset, or the try timed out. */
  | { readonly kind: 'local-failure' };

/** Outlier detection's view of one host. */
interface HostHealth {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Ejected while `now < ejectedUntil`. */
  ejectedUntil: number;
  /** Times ejected: the next ejection lasts this many + 1 base ejection times. */
  ejections: number;
}

/**
 * Pure: whether `result` brings the host to an ejection, given its counters after the result.
 * Envoy counts a local-origin failure as a 5xx and as a gateway failure (errors not split).
 */
export function countResult(
  health: Pick<HostHealth, 'consecutive5xx' | 'consecutiveGateway'>,
  result: AttemptResult,
  od: OutlierDetection,
): { consecutive5xx: number; consecutiveGateway: number; eject: boolean } {
  const status = result.kind === 'response' ? result.status : 503;
  const is5xx = status >= 500;
  const isGateway = status >= 502 && status <= 504;
  const consecutive5xx = is5xx ? health.consecutive5xx + 1 : 0;
  const consecutiveGateway = isGateway ? health.consecutiveGateway + 1 : 0;
  const eject =
    (od.consecutive5xx > 0 && consecutive5xx >= od.consecutive5xx) ||
    (od.consecutiveGatewayFailure > 0 && consecutiveGateway >= od.consecutiveGatewayFailure);
  return { consecutive5xx, consecutiveGateway, eject };
}

/** Pure: whether one more host may be ejected (Envoy's check: ejected share below the maximum). */
export function mayEject(ejected: number, total: number, maxEjectionPercent: number): boolean {
  return total > 0 && (ejected * 100) / total < maxEjectionPercent;
}

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
  readonly overflows = { requests: 0, pending: 0, retries: 0, connections: 0 };
  /** Outlier detection per endpoint key. */
  readonly #health = new Map<string, HostHealth>();
  /** Ejections done, and ones a threshold called for but the maximum percentage prevented. */
  readonly ejections = { enforced: 0, overflow: 0 };

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

  /** Whether outlier detection has `e` ejected at `now` (ms, monotonic). */
  isEjected(e: Endpoint, now: number): boolean {
    const h = this.#health.get(endpointKey(e));
    return h !== undefined && now < h.ejectedUntil;
  }

  /** How many of `endpoints` are ejected at `now`. */
  ejectedCount(endpoints: readonly Endpoint[], now: number): number {
    return endpoints.filter(e => this.isEjected(e, now)).length;
  }

  /**
   * Records an attempt's result on `e` for outlier detection. Ejects the host (returns true) once
   * a consecutive-error threshold is reached, unless the cluster's maximum share of ejected
   * hosts is reached; a success resets the host's counters.
   */
  record(
    e: Endpoint,
    result: AttemptResult,
    od: OutlierDetection | undefined,
    endpoints: readonly Endpoint[],
    now: number,
  ): boolean {
    if (od === undefined) return false;
    const key = endpointKey(e);
    let h = this.#health.get(key);
    if (h === undefined) {
      h = { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, ejections: 0 };
      this.#health.set(key, h);
    }
    // Results of requests that were in flight when the host was ejected do not count again.
    if (now < h.ejectedUntil) return false;
    const counted = countResult(h, result, od);
    h.consecutive5xx = counted.consecutive5xx;
    h.consecutiveGateway = counted.consecutiveGateway;
    if (!counted.eject) return false;
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    if (!mayEject(this.ejectedCount(endpoints, now), endpoints.length, od.maxEjectionPercent)) {
      this.ejections.overflow++;
      return false;
    }
    h.ejections++;
    const duration = Math.min(
      od.baseEjectionTimeMs * h.ejections,
      Math.max(od.baseEjectionTimeMs, od.maxEjectionTimeMs),
    );
    h.ejectedUntil = now + duration;
    this.ejections.enforced++;
    return true;
  }

  /** Forgets hosts that left the cluster (called with the current endpoints). */
  retainHealth(endpoints: readonly Endpoint[]): void {
    const keys = new Set(endpoints.map(endpointKey));
    for (const key of this.#health.keys()) if (!keys.has(key)) this.#health.delete(key);
  }

  pick(
    cluster: ClusterConfig,
    endpoints: readonly Endpoint[],
    options: {
      readonly hash: number | undefined;
      readonly exclude: ReadonlySet<string>;
      readonly random: () => number;
      /** Monotonic ms for outlier ejections (default `performance.now()`). */
      readonly now?: number;
    },
  ): Endpoint | undefined {
    const now = options.now ?? performance.now();
    const healthy = endpoints.filter(e => e.healthy);
    const serving = healthy.filter(e => !this.isEjected(e, now));
    // Ejected hosts are left out; when nothing else is left, all are used (Envoy's panic mode).
    const pool0 = serving.length > 0 ? serving : healthy.length > 0 ? healthy : endpoints;
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
