/**
 * Injected time: components take a `Timers` so tests can use fake timers or drive time by hand.
 * Also the capped exponential backoff shared by the xDS and ZDS reconnect loops.
 */

export interface TimerHandle {
  unref?(): unknown;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  now(): number;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: handle => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  now: () => Date.now(),
};

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier?: number;
}

/** Reconnect backoff: 10 ms doubling to 15 s by default (§4.1, ztunnel's xDS client). */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #next: number;

  constructor(options: BackoffOptions = { initialMs: 10, maxMs: 15_000 }) {
    this.#options = { multiplier: 2, ...options };
    this.#next = this.#options.initialMs;
  }

  /** The delay before the next attempt; each call grows the following one. */
  nextDelayMs(): number {
    const delay = this.#next;
    this.#next = Math.min(this.#options.maxMs, Math.round(this.#next * this.#options.multiplier));
    return delay;
  }

  reset(): void {
    this.#next = this.#options.initialMs;
  }
}
