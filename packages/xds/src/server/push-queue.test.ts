import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemTimers as timers } from '@ambient-mesh/runtime';
import { PushQueue, type PushBatch } from './push-queue.ts';

const ADDRESS = 'type.googleapis.com/istio.workload.Address';
const cs = (...addresses: string[]) => new Map([[ADDRESS, new Set(addresses)]]);

describe('PushQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('merges changes until the quiet period passes', () => {
    const batches: PushBatch[] = [];
    const q = new PushQueue({
      debounceAfterMs: 100,
      debounceMaxMs: 1000,
      timers,
      flush: b => batches.push(b),
    });
    q.enqueue(cs('a'));
    vi.advanceTimersByTime(60);
    q.enqueue(cs('b', 'a'));
    vi.advanceTimersByTime(99);
    expect(batches).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(batches).toHaveLength(1);
    expect([...batches[0]!.changes.get(ADDRESS)!]).toEqual(['a', 'b']);
    expect(batches[0]!.merged).toBe(2);
  });

  it('flushes at the max delay under continuous changes', () => {
    const batches: PushBatch[] = [];
    const q = new PushQueue({
      debounceAfterMs: 100,
      debounceMaxMs: 250,
      timers,
      flush: b => batches.push(b),
    });
    for (let i = 0; i < 10; i++) {
      q.enqueue(cs(`p${i}`));
      vi.advanceTimersByTime(50);
    }
    expect(batches.length).toBeGreaterThanOrEqual(2);
    // Enqueued at 0, 50, 100, 150 and 200 ms; the 250 ms cap flushes them together.
    expect(batches[0]!.merged).toBe(5);
  });

  it('ignores empty change sets and stops after close', () => {
    const batches: PushBatch[] = [];
    const q = new PushQueue({ debounceAfterMs: 10, debounceMaxMs: 10, timers, flush: b => batches.push(b) });
    q.enqueue(cs());
    q.enqueue(cs('x'));
    q.close();
    q.enqueue(cs('y'));
    vi.advanceTimersByTime(100);
    expect(batches).toHaveLength(0);
  });
});
