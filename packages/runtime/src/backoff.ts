/**
 * Capped exponential backoff with optional jitter, for reconnect and retry loops. Randomness is
 * injected so tests get exact delays.
 */

export interface BackoffOptions {
  /** The first delay. */
  readonly initialMs: number;
  /** No delay is longer than this (jitter included). */
  readonly maxMs: number;
  /** Growth per attempt; default 2. */
  readonly multiplier?: number;
  /**
   * Spread, 0..1: each delay is drawn uniformly from `[d * (1 - jitter), d]`, so many clients
   * that lost the same server do not come back in step. Default 0 (exact delays).
   */
  readonly jitter?: number;
  /** A number in [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #multiplier: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #next: number;
  #attempts = 0;

  constructor(options: BackoffOptions = { initialMs: 10, maxMs: 15_000 }) {
    this.#initialMs = options.initialMs;
    this.#maxMs = options.maxMs;
    this.#multiplier = options.multiplier ?? 2;
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 0));
    this.#random = options.random ?? Math.random;
    this.#next = this.#initialMs;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.#attempts;
  }

  /** The delay before the next attempt; each call grows the following one. */
  nextDelayMs(): number {
    const base = this.#next;
    this.#next = Math.min(this.#maxMs, Math.round(this.#next * this.#multiplier));
    this.#attempts += 1;
    if (this.#jitter === 0) return base;
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  reset(): void {
    this.#next = this.#initialMs;
    this.#attempts = 0;
  }
}
