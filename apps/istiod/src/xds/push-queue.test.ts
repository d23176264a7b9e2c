// The debounce itself (quiet period, max delay, close) is tested in @ambient-mesh/xds; these tests
// cover what istiod adds on top: WDS change sets in, WDS push batches out.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypeUrls } from '../wds/wds-index.ts';
import { PushQueue, systemTimers, toResourceChanges, type PushBatch } from './push-queue.ts';

const cs = (addresses: string[], authorizations: string[] = []) => ({
  addresses: new Set(addresses),
  authorizations: new Set(authorizations),
});

describe('istiod PushQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('splits a WDS change set by type URL', () => {
    const changes = toResourceChanges(cs(['ns/svc'], ['ns/policy']));
    expect([...changes.keys()]).toEqual([TypeUrls.ADDRESS, TypeUrls.AUTHORIZATION]);
    expect([...changes.get(TypeUrls.ADDRESS)!]).toEqual(['ns/svc']);
    expect([...changes.get(TypeUrls.AUTHORIZATION)!]).toEqual(['ns/policy']);
  });

  it('flushes one WDS batch with the addresses and authorizations of every merged change set', () => {
    const batches: PushBatch[] = [];
    const q = new PushQueue({
      debounceAfterMs: 100,
      debounceMaxMs: 1000,
      timers: systemTimers,
      flush: b => batches.push(b),
    });
    q.enqueue(cs(['a']));
    vi.advanceTimersByTime(50);
    q.enqueue(cs(['b'], ['p']));
    vi.advanceTimersByTime(100);
    expect(batches).toHaveLength(1);
    expect([...batches[0]!.addresses]).toEqual(['a', 'b']);
    expect([...batches[0]!.authorizations]).toEqual(['p']);
    expect(batches[0]!.merged).toBe(2);
  });

  it('flushNow sends what is pending at once, with empty sets for types that did not change', () => {
    const batches: PushBatch[] = [];
    const q = new PushQueue({
      debounceAfterMs: 1000,
      debounceMaxMs: 5000,
      timers: systemTimers,
      flush: b => batches.push(b),
    });
    q.flushNow();
    expect(batches).toHaveLength(0);
    q.enqueue(cs([], ['ns/deny']));
    q.flushNow();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.addresses.size).toBe(0);
    expect([...batches[0]!.authorizations]).toEqual(['ns/deny']);
    q.close();
  });
});
