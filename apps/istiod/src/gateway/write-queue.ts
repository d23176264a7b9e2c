/**
 * A keyed write queue for the gateway controller's writers: the latest task per key wins, a few
 * run at once, a transient failure (`isTransient`: 429, 5xx, unreachable, conflict) is retried with
 * capped exponential back-off, anything else is reported once and dropped (the next event for
 * that key enqueues afresh). Never throws into the caller.
 */
import { isConflict, isNotFound, isTransient } from '@ambient-mesh/kube';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';

export interface WriteQueueOptions {
  readonly timers: Timers;
  readonly concurrency?: number;
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A task failed for good (after retries, or a permanent error). */
  readonly onGiveUp: (key: string, err: unknown, attempts: number) => void;
}

type Task = () => Promise<void>;

export class WriteQueue {
  readonly #opts: WriteQueueOptions;
  readonly #pending = new Map<string, { task: Task; attempt: number }>();
  readonly #running = new Set<string>();
  readonly #timers = new Map<string, TimerHandle>();
  readonly #idle: (() => void)[] = [];
  #closed = false;

  constructor(opts: WriteQueueOptions) {
    this.#opts = opts;
  }

  enqueue(key: string, task: Task): void {
    if (this.#closed) return;
    this.#pending.set(key, { task, attempt: 1 });
    const t = this.#timers.get(key);
    if (t !== undefined) {
      this.#opts.timers.clearTimeout(t);
      this.#timers.delete(key);
    }
    this.#pump();
  }

  /** Resolves when nothing is pending, running or waiting to retry (tests). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise(resolve => this.#idle.push(resolve));
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) this.#opts.timers.clearTimeout(t);
    this.#timers.clear();
    this.#pending.clear();
    this.#settle();
  }

  #isIdle(): boolean {
    return this.#pending.size === 0 && this.#running.size === 0 && this.#timers.size === 0;
  }

  #settle(): void {
    if (!this.#isIdle()) return;
    for (const r of this.#idle.splice(0)) r();
  }

  #pump(): void {
    const limit = this.#opts.concurrency ?? 4;
    for (const [key, entry] of this.#pending) {
      if (this.#running.size >= limit) return;
      if (this.#running.has(key) || this.#timers.has(key)) continue;
      this.#pending.delete(key);
      this.#running.add(key);
      void this.#run(key, entry.task, entry.attempt);
    }
  }

  async #run(key: string, task: Task, attempt: number): Promise<void> {
    try {
      await task();
    } catch (err) {
      const retryable = (isTransient(err) || isConflict(err)) && !isNotFound(err);
      const max = this.#opts.maxAttempts ?? 6;
      if (!this.#closed && retryable && attempt < max && !this.#pending.has(key)) {
        const delay = Math.min(
          this.#opts.maxDelayMs ?? 5000,
          (this.#opts.baseDelayMs ?? 200) * 2 ** (attempt - 1),
        );
        this.#timers.set(
          key,
          this.#opts.timers.setTimeout(() => {
            this.#timers.delete(key);
            if (!this.#pending.has(key)) this.#pending.set(key, { task, attempt: attempt + 1 });
            this.#pump();
          }, delay),
        );
      } else if (!this.#pending.has(key) && !isNotFound(err)) {
        this.#opts.onGiveUp(key, err, attempt);
      }
    } finally {
      this.#running.delete(key);
      this.#pump();
      this.#settle();
    }
  }
}
