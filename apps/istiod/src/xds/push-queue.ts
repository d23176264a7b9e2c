/**
 * Debounces WDS changes into pushes: changes are merged until `debounceAfterMs` pass without a
 * new one, or `debounceMaxMs` after the first, then flushed once. Timers are injected.
 */
import type { ChangeSet } from '../wds/wds-index.ts';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  now: () => performance.now(),
};

export interface PushBatch extends ChangeSet {
  /** When the first change of the batch was queued (timers.now()). */
  readonly firstQueuedAt: number;
  /** How many change sets were merged. */
  readonly merged: number;
}

export interface PushQueueOptions {
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  readonly timers?: Timers;
  readonly flush: (batch: PushBatch) => void;
}

export class PushQueue {
  readonly #opts: PushQueueOptions;
  readonly #timers: Timers;
  #addresses = new Set<string>();
  #authorizations = new Set<string>();
  #firstAt = 0;
  #merged = 0;
  #timer: unknown;
  #closed = false;

  constructor(opts: PushQueueOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
  }

  enqueue(changes: ChangeSet): void {
    if (this.#closed || (changes.addresses.size === 0 && changes.authorizations.size === 0)) return;
    const now = this.#timers.now();
    if (this.#merged === 0) this.#firstAt = now;
    this.#merged++;
    for (const n of changes.addresses) this.#addresses.add(n);
    for (const n of changes.authorizations) this.#authorizations.add(n);
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    const untilMax = this.#firstAt + this.#opts.debounceMaxMs - now;
    const wait = Math.max(0, Math.min(this.#opts.debounceAfterMs, untilMax));
    this.#timer = this.#timers.setTimeout(() => {
      this.flushNow();
    }, wait);
  }

  /** Flushes pending changes immediately (no-op when nothing is pending). */
  flushNow(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#merged === 0) return;
    const batch: PushBatch = {
      addresses: this.#addresses,
      authorizations: this.#authorizations,
      firstQueuedAt: this.#firstAt,
      merged: this.#merged,
    };
    this.#addresses = new Set();
    this.#authorizations = new Set();
    this.#merged = 0;
    this.#opts.flush(batch);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
