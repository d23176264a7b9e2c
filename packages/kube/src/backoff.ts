/**
 * Capped exponential back-off with jitter, the delay an informer waits after a failed list or
 * watch. Jitter spreads the retries of many clients that failed together (an apiserver restart)
 * so they do not come back in lockstep.
 */

export interface BackoffOptions {
  /** The first delay (default 500 ms). */
  readonly initialMs?: number;
  /** The upper bound of the delay before jitter (default 30 s). */
  readonly maxMs?: number;
  /** Growth per failure (default 2). */
  readonly factor?: number;
  /** Fraction of the delay added at random, 0..1 (default 0.2: up to +20 %). */
  readonly jitter?: number;
  /** A number in [0, 1), injectable for tests (default Math.random). */
  readonly random?: () => number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = Math.max(0, options.initialMs ?? 500);
    this.#maxMs = Math.max(this.#initialMs, options.maxMs ?? 30_000);
    this.#factor = Math.max(1, options.factor ?? 2);
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * this.#factor ** this.#failures);
    this.#failures++;
    return Math.round(base * (1 + this.#jitter * this.#random()));
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.#failures = 0;
  }
}
