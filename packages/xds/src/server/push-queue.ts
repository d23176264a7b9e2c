/**
 * Debounces resource changes into pushes: changed names are merged per type URL until
 * `debounceAfterMs` pass without a new change, or `debounceMaxMs` after the first, then flushed
 * once. Timers are injected.
 */
import { systemTimers, type TimerHandle, type Timers } from '../timers.ts';

/** Names whose resource changed or disappeared, per type URL. */
export type ResourceChanges = ReadonlyMap<string, ReadonlySet<string>>;

export interface PushBatch {
  readonly changes: ResourceChanges;
  /** When the first change of the batch was queued (`timers.now()`). */
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
  #changes = new Map<string, Set<string>>();
  #firstAt = 0;
  #merged = 0;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(opts: PushQueueOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
  }

  /** Queues changed names per type URL; empty sets are ignored. */
  enqueue(changes: ResourceChanges): void {
    if (this.#closed) return;
    let any = false;
    for (const names of changes.values()) if (names.size > 0) any = true;
    if (!any) return;
    const now = this.#timers.now();
    if (this.#merged === 0) this.#firstAt = now;
    this.#merged++;
    for (const [typeUrl, names] of changes) {
      if (names.size === 0) continue;
      let merged = this.#changes.get(typeUrl);
      if (merged === undefined) {
        merged = new Set();
        this.#changes.set(typeUrl, merged);
      }
      for (const n of names) merged.add(n);
    }
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
    const batch: PushBatch = { changes: this.#changes, firstQueuedAt: this.#firstAt, merged: this.#merged };
    this.#changes = new Map();
    this.#merged = 0;
    this.#opts.flush(batch);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
