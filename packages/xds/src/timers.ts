/**
 * Injected time for the server (debounce) and the client (reconnect backoff), and the backoff
 * itself: exponential, capped, with jitter, its randomness injectable so tests are exact.
 */

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Monotonic milliseconds. */
  now(): number;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: handle => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  now: () => performance.now(),
};

export interface BackoffOptions {
  /** First delay; default 10 ms (ztunnel's xDS client). */
  readonly initialMs?: number;
  /** Cap; default 15 s. */
  readonly maxMs?: number;
  /** Growth per attempt; default 2. */
  readonly multiplier?: number;
  /** Fraction of each delay taken off at random, 0..1; default 0.2. */
  readonly jitter?: number;
  /** Source of randomness in [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

/** Reconnect delays: `initial · multiplier^n` capped at `max`, each reduced by up to `jitter`. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #multiplier: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #next: number;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 10;
    this.#max = options.maxMs ?? 15_000;
    this.#multiplier = options.multiplier ?? 2;
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
    this.#random = options.random ?? Math.random;
    this.#next = this.#initial;
  }

  /** The delay before the next attempt; each call grows the following one. */
  nextDelayMs(): number {
    const base = this.#next;
    this.#next = Math.min(this.#max, base * this.#multiplier);
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  /** Back to the first delay (after a stream that worked). */
  reset(): void {
    this.#next = this.#initial;
  }
}
