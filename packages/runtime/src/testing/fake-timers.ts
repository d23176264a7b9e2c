/**
 * Hand-driven time for tests: nothing fires until `advance(ms)` (or `runAll()`), and `now()`
 * moves only with it. Timers due at the same time fire in the order they were set.
 */
import type { TimerHandle, Timers } from '../timers.ts';

interface Scheduled {
  readonly id: number;
  due: number;
  readonly callback: () => void;
  readonly everyMs: number | undefined;
}

class FakeHandle implements TimerHandle {
  readonly id: number;
  constructor(id: number) {
    this.id = id;
  }
  unref(): this {
    return this;
  }
}

export class FakeTimers implements Timers {
  #now: number;
  #nextId = 1;
  readonly #scheduled = new Map<number, Scheduled>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#scheduled.size;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.#schedule(callback, ms, undefined);
  }

  setInterval(callback: () => void, ms: number): TimerHandle {
    return this.#schedule(callback, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle instanceof FakeHandle) this.#scheduled.delete(handle.id);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.due > target) break;
      this.#now = next.due;
      if (next.everyMs === undefined) this.#scheduled.delete(next.id);
      else next.due += next.everyMs;
      next.callback();
    }
    this.#now = target;
  }

  /** Fires timers until none is left (intervals excluded after `limit` rounds). */
  runAll(limit = 1_000): void {
    for (let i = 0; i < limit; i++) {
      const next = this.#earliest();
      if (next === undefined) return;
      this.advance(next.due - this.#now);
    }
  }

  #schedule(callback: () => void, ms: number, everyMs: number | undefined): TimerHandle {
    const id = this.#nextId++;
    this.#scheduled.set(id, { id, due: this.#now + Math.max(0, ms), callback, everyMs });
    return new FakeHandle(id);
  }

  #earliest(): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const s of this.#scheduled.values()) {
      if (best === undefined || s.due < best.due || (s.due === best.due && s.id < best.id)) best = s;
    }
    return best;
  }
}
