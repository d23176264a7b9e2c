/**
 * Envoy's HTTP local rate limit filter (`envoy.filters.http.local_ratelimit`): one token bucket
 * per config instance — the filter's own, or a route's `typed_per_filter_config` that replaces it
 * for that route's requests (a route config of a filter the chain does not run is ignored, as
 * Envoy does). A bucket starts full and gets `tokens_per_fill` tokens every `fill_interval`, up
 * to `max_tokens`. Per request and filter: not enabled (`filter_enabled`) passes; a token passes;
 * no token is answered `status` (429) with the body `local_rate_limited`, the
 * `response_headers_to_add` and the response flag `RL` — when enforced (`filter_enforced`), else
 * the request passes and is only counted.
 *
 * Buckets are keyed by where the config sits (the filter chain, the filter's name, the route's
 * name for a route's own config) and by the bucket's settings, not by the config
 * object: istiod re-sends unchanged routes on unrelated pushes, and that must not refill a
 * spent bucket. A changed `token_bucket` gets a new (full) bucket. Buckets that have refilled
 * to the brim are dropped now and then: a full bucket is a fresh one.
 *
 * Counters as Envoy's (`<stat_prefix>.http_local_rate_limit.{enabled,ok,rate_limited,enforced}`).
 */
import type { HttpChain, LocalRateLimitConfig, Route } from '../config/types.ts';

/** Envoy's local reply body and response code details. */
export const RATE_LIMITED_BODY = 'local_rate_limited';

export class TokenBucket {
  readonly bucket: NonNullable<LocalRateLimitConfig['bucket']>;
  #tokens: number;
  #lastFill: number;

  constructor(bucket: NonNullable<LocalRateLimitConfig['bucket']>, now: number) {
    this.bucket = bucket;
    this.#tokens = bucket.maxTokens;
    this.#lastFill = now;
  }

  #refill(now: number): void {
    const { maxTokens, tokensPerFill, fillIntervalMs } = this.bucket;
    const fills = Math.floor((now - this.#lastFill) / fillIntervalMs);
    if (fills > 0) {
      this.#tokens = Math.min(maxTokens, this.#tokens + fills * tokensPerFill);
      this.#lastFill += fills * fillIntervalMs;
    }
  }

  /** Whether the bucket is full at `now` (then it is the same as a new one). */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.bucket.maxTokens;
  }

  /** Takes one token if there is one (after the fills due by `now`). */
  consume(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  get tokens(): number {
    return this.#tokens;
  }
}

export type RateLimitDecision =
  | { readonly kind: 'pass' }
  | {
      readonly kind: 'limited';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly statPrefix: string;
    };

const PASS: RateLimitDecision = Object.freeze({ kind: 'pass' });

/** Envoy's `<stat_prefix>.http_local_rate_limit.*` counters. */
export type RateLimitStat = 'enabled' | 'ok' | 'rate_limited' | 'enforced';

export interface RateLimitCounters {
  /**
   * One count of `stat` for the config with `statPrefix`: `enabled` (the filter ran), then `ok`
   * (a token) or `rate_limited` (none), and `enforced` when a limited request was answered.
   */
  count(statPrefix: string, stat: RateLimitStat): void;
}

/** Where a config's bucket lives: its place in the config and its bucket settings. */
function bucketKey(
  chain: string,
  filter: string,
  route: string | undefined,
  config: LocalRateLimitConfig,
): string {
  const b = config.bucket!;
  return [
    chain,
    filter,
    route ?? '',
    config.statPrefix,
    `${b.maxTokens}/${b.tokensPerFill}/${b.fillIntervalMs}`,
  ].join('\u0000');
}

export class LocalRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  /** Bucket count after the last sweep of full buckets: the next sweep is at twice as many. */
  #swept = 64;
  readonly #counters: RateLimitCounters | undefined;
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(
    options: {
      readonly now?: () => number;
      readonly random?: () => number;
      readonly counters?: RateLimitCounters;
    } = {},
  ) {
    this.#counters = options.counters;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
  }

  /**
   * Runs the chain's rate limit filters of one stage (`beforeAuth`: those ahead of the JWT and
   * RBAC filters) in filter order; the first that limits answers.
   */
  decide(
    chain: HttpChain,
    route: Route | undefined,
    beforeAuth: boolean,
    /** The filter chain's identity (listener and chain name); default its HCM stat prefix. */
    chainKey: string = chain.statPrefix,
  ): RateLimitDecision {
    for (const filter of chain.localRateLimits ?? []) {
      if (filter.beforeAuth !== beforeAuth) continue;
      const own = route?.localRateLimit?.get(filter.name);
      const config = own ?? filter.config;
      if (config.bucket === undefined) continue;
      const d = this.#decideOne(config, () =>
        bucketKey(chainKey, filter.name, own === undefined ? undefined : route?.name, config),
      );
      if (d.kind === 'limited') return d;
    }
    return PASS;
  }

  /** Buckets held (for tests). */
  get size(): number {
    return this.#buckets.size;
  }

  #bucketFor(key: string, config: LocalRateLimitConfig, now: number): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket !== undefined) return bucket;
    if (this.#buckets.size >= this.#swept * 2) {
      for (const [k, b] of this.#buckets) if (b.full(now)) this.#buckets.delete(k);
      this.#swept = Math.max(64, this.#buckets.size);
    }
    bucket = new TokenBucket(config.bucket!, now);
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #decideOne(config: LocalRateLimitConfig, key: () => string): RateLimitDecision {
    if (!this.#draw(config.enabledPerMillion)) return PASS;
    const counters = this.#counters;
    counters?.count(config.statPrefix, 'enabled');
    const now = this.#now();
    if (this.#bucketFor(key(), config, now).consume(now)) {
      counters?.count(config.statPrefix, 'ok');
      return PASS;
    }
    counters?.count(config.statPrefix, 'rate_limited');
    const enforced = this.#draw(config.enforcedPerMillion);
    if (!enforced) return PASS;
    counters?.count(config.statPrefix, 'enforced');
    const headers: Record<string, string> = {};
    for (const h of config.responseHeaders.add) {
      if (h.mode === 'overwrite' || headers[h.name] === undefined) headers[h.name] = h.value;
      else if (h.mode === 'append') headers[h.name] = `${headers[h.name]},${h.value}`;
    }
    return { kind: 'limited', status: config.status, headers, statPrefix: config.statPrefix };
  }

  #draw(perMillion: number): boolean {
    return perMillion >= 1_000_000 || (perMillion > 0 && this.#random() * 1_000_000 < perMillion);
  }
}
