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
 * Buckets are keyed by the config object: a listener or route update gives new buckets, as a
 * new Envoy filter instance would.
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

  /** Takes one token if there is one (after the fills due by `now`). */
  consume(now: number): boolean {
    const { maxTokens, tokensPerFill, fillIntervalMs } = this.bucket;
    const fills = Math.floor((now - this.#lastFill) / fillIntervalMs);
    if (fills > 0) {
      this.#tokens = Math.min(maxTokens, this.#tokens + fills * tokensPerFill);
      this.#lastFill += fills * fillIntervalMs;
    }
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

export interface RateLimitCounters {
  /** A request found no token (`<stat_prefix>.http_local_rate_limit.rate_limited`). */
  limited(statPrefix: string, enforced: boolean): void;
}

export class LocalRateLimiter {
  readonly #buckets = new WeakMap<LocalRateLimitConfig, TokenBucket>();
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(options: { readonly now?: () => number; readonly random?: () => number } = {}) {
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
    counters?: RateLimitCounters,
  ): RateLimitDecision {
    for (const filter of chain.localRateLimits ?? []) {
      if (filter.beforeAuth !== beforeAuth) continue;
      const config = route?.localRateLimit?.get(filter.name) ?? filter.config;
      const d = this.#decideOne(config, counters);
      if (d.kind === 'limited') return d;
    }
    return PASS;
  }

  #decideOne(config: LocalRateLimitConfig, counters: RateLimitCounters | undefined): RateLimitDecision {
    if (config.bucket === undefined) return PASS;
    if (!this.#draw(config.enabledPerMillion)) return PASS;
    let bucket = this.#buckets.get(config);
    const now = this.#now();
    if (bucket === undefined) {
      bucket = new TokenBucket(config.bucket, now);
      this.#buckets.set(config, bucket);
    }
    if (bucket.consume(now)) return PASS;
    const enforced = this.#draw(config.enforcedPerMillion);
    counters?.limited(config.statPrefix, enforced);
    if (!enforced) return PASS;
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
