/**
 * Timers a test advances by hand: `pending` shows what waits and for how long, `fire()` runs the
 * earliest. No real time passes, so back-off delays are asserted exactly.
 */
import type { Timers } from '../timers.ts';

interface Pending {
  readonly id: number;
  readonly at: number;
  readonly ms: number;
  readonly fn: () => void;
}

export class ManualTimers implements Timers {
  #now = 0;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** Every delay asked for, in order. */
  readonly delays: number[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#pending.set(id, { id, at: this.#now + ms, ms, fn });
    this.delays.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  now(): number {
    return this.#now;
  }

  /** Timers waiting now. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Moves the clock to the earliest timer and runs it; answers its delay, or undefined when none. */
  fire(): number | undefined {
    const next = [...this.#pending.values()].sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (next === undefined) return undefined;
    this.#pending.delete(next.id);
    this.#now = Math.max(this.#now, next.at);
    next.fn();
    return next.ms;
  }

  /** Moves the clock without running anything. */
  advance(ms: number): void {
    this.#now += ms;
  }
}
