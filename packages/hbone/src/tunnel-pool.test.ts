import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HboneClosedError, HboneKeepaliveTimeoutError } from './errors.ts';
import { TunnelPool, poolKeyString } from './tunnel-pool.ts';
import type { PoolConnection, PoolKey } from './tunnel-pool.ts';

class FakeConnection implements PoolConnection {
  readonly id: number;
  peerLimit: number | undefined = undefined;
  closed: 'graceful' | 'destroyed' | undefined;
  answerPings = true;
  pings = 0;
  readonly #listeners: ((error?: Error) => void)[] = [];
  constructor(id: number) {
    this.id = id;
  }
  peerMaxConcurrentStreams(): number | undefined {
    return this.peerLimit;
  }
  ping(): Promise<void> {
    this.pings++;
    return this.answerPings ? Promise.resolve() : new Promise<void>(() => undefined);
  }
  close(): void {
    this.closed ??= 'graceful';
  }
  destroy(): void {
    this.closed ??= 'destroyed';
  }
  onClosed(listener: (error?: Error) => void): void {
    this.#listeners.push(listener);
  }
  /** Simulates a GOAWAY or socket close from the peer. */
  peerClosed(error?: Error): void {
    for (const l of [...this.#listeners]) l(error);
  }
}

const key = (over: Partial<PoolKey> = {}): PoolKey => ({
  sourceIdentity: 'spiffe://cluster.local/ns/a/sa/client',
  sourceCertificate: 'a1'.repeat(32),
  destinationIdentities: ['spiffe://cluster.local/ns/b/sa/server'],
  nextHop: '10.0.0.2:15008',
  sourceIp: '10.0.0.1',
  ...over,
});

function fakePool(options: { maxStreams?: number; failConnect?: boolean } = {}) {
  const made: FakeConnection[] = [];
  const errors: Error[] = [];
  const pool = new TunnelPool<FakeConnection>({
    connect: () => {
      if (options.failConnect === true) return Promise.reject(new Error('connect refused'));
      const conn = new FakeConnection(made.length);
      made.push(conn);
      return Promise.resolve(conn);
    },
    maxStreamsPerConnection: options.maxStreams ?? 100,
    onConnectionError: err => errors.push(err),
  });
  return { pool, made, errors };
}

describe('TunnelPool', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keys on identity, certificate, sorted destination identities, next hop and source IP', () => {
    const base = poolKeyString(
      key({ destinationIdentities: ['spiffe://x/ns/a/sa/1', 'spiffe://x/ns/a/sa/2'] }),
    );
    expect(
      poolKeyString(key({ destinationIdentities: ['spiffe://x/ns/a/sa/2', 'spiffe://x/ns/a/sa/1'] })),
    ).toBe(base);
    expect(poolKeyString(key({ sourceIp: '10.0.0.9' }))).not.toBe(poolKeyString(key()));
    expect(poolKeyString(key({ nextHop: '10.0.0.3:15008' }))).not.toBe(poolKeyString(key()));
    expect(poolKeyString(key({ sourceIdentity: 'spiffe://cluster.local/ns/a/sa/other' }))).not.toBe(
      poolKeyString(key()),
    );
    expect(poolKeyString(key({ sourceCertificate: 'b2'.repeat(32) }))).not.toBe(poolKeyString(key()));
  });

  it('shares one connection for equal keys and opens another for a different key', async () => {
    const { pool, made } = fakePool();
    const a = await pool.acquire(key());
    const b = await pool.acquire(key());
    const c = await pool.acquire(key({ sourceIp: '10.0.0.9' }));
    expect(a.connection).toBe(b.connection);
    expect(c.connection).not.toBe(a.connection);
    expect(made).toHaveLength(2);
    expect(pool.stats()).toEqual({ keys: 2, connections: 2, leases: 3 });
  });

  it('lets a burst of concurrent requests share one connection while it is still connecting', async () => {
    const { pool, made } = fakePool();
    const leases = await Promise.all(Array.from({ length: 50 }, () => pool.acquire(key())));
    expect(made).toHaveLength(1);
    expect(new Set(leases.map(l => l.connection)).size).toBe(1);
  });

  it('opens a new connection only when every connection is full, and reuses freed slots', async () => {
    const { pool, made } = fakePool({ maxStreams: 2 });
    const l1 = await pool.acquire(key());
    await pool.acquire(key());
    const l3 = await pool.acquire(key());
    expect(made).toHaveLength(2);
    expect(l3.connection).not.toBe(l1.connection);
    l1.release();
    l1.release(); // idempotent
    const l4 = await pool.acquire(key());
    expect(l4.connection).toBe(l1.connection);
    expect(made).toHaveLength(2);
  });

  it("respects the peer's SETTINGS_MAX_CONCURRENT_STREAMS when it is lower", async () => {
    const { pool, made } = fakePool({ maxStreams: 100 });
    const first = await pool.acquire(key());
    first.connection.peerLimit = 1;
    const second = await pool.acquire(key());
    expect(second.connection).not.toBe(first.connection);
    expect(made).toHaveLength(2);
  });

  it('releases an unused connection after the idle timeout, and not while it is in use', async () => {
    const { pool, made } = fakePool();
    const lease = await pool.acquire(key());
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(made[0]!.closed).toBeUndefined();
    lease.release();
    await vi.advanceTimersByTimeAsync(5 * 60_000 - 1);
    expect(made[0]!.closed).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(made[0]!.closed).toBe('graceful');
    expect(pool.stats().connections).toBe(0);
    await pool.acquire(key());
    expect(made).toHaveLength(2);
  });

  it('closes the extra connections of a burst 15 s after they go unused and keeps the last one for 5 min', async () => {
    const { pool, made } = fakePool({ maxStreams: 1 });
    const leases = [await pool.acquire(key()), await pool.acquire(key()), await pool.acquire(key())];
    expect(made).toHaveLength(3);
    for (const lease of leases) lease.release();
    await vi.advanceTimersByTimeAsync(15_000 - 1);
    expect(made.map(c => c.closed)).toEqual([undefined, undefined, undefined]);
    await vi.advanceTimersByTimeAsync(1);
    // The first two saw a sibling at their deadline; the last found none and stays warm.
    expect(made.map(c => c.closed)).toEqual(['graceful', 'graceful', undefined]);
    expect(pool.stats().connections).toBe(1);
    await vi.advanceTimersByTimeAsync(5 * 60_000 - 15_000 - 1);
    expect(made[2]!.closed).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(made[2]!.closed).toBe('graceful');
  });

  it('keeps a surplus connection that is used again before its 15 s are up', async () => {
    const { pool, made } = fakePool({ maxStreams: 1 });
    const busy = await pool.acquire(key());
    const burst = await pool.acquire(key());
    burst.release();
    await vi.advanceTimersByTimeAsync(10_000);
    const again = await pool.acquire(key());
    expect(again.connection).toBe(made[1]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(made.map(c => c.closed)).toEqual([undefined, undefined]);
    busy.release();
    again.release();
  });

  it('pings every 10 s and drops a connection whose PING stays unanswered for 20 s', async () => {
    const { pool, made, errors } = fakePool();
    await pool.acquire(key());
    const conn = made[0]!;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(conn.pings).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(conn.pings).toBe(2);
    conn.answerPings = false;
    await vi.advanceTimersByTimeAsync(10_000); // ping 3 sent, unanswered
    expect(conn.pings).toBe(3);
    await vi.advanceTimersByTimeAsync(19_999);
    expect(conn.closed).toBeUndefined();
    expect(conn.pings).toBe(3); // no second PING while one is outstanding
    await vi.advanceTimersByTimeAsync(1);
    expect(conn.closed).toBe('destroyed');
    expect(errors[0]).toBeInstanceOf(HboneKeepaliveTimeoutError);
    expect(pool.stats().connections).toBe(0);
  });

  it('stops using a connection the peer closed, while existing leases can still be released', async () => {
    const { pool, made } = fakePool();
    const lease = await pool.acquire(key());
    made[0]!.peerClosed();
    const next = await pool.acquire(key());
    expect(next.connection).not.toBe(lease.connection);
    lease.release();
    expect(pool.stats()).toEqual({ keys: 1, connections: 1, leases: 1 });
  });

  it('rejects every waiter when the connect fails, then tries again on the next request', async () => {
    const { pool } = fakePool({ failConnect: true });
    const results = await Promise.allSettled([pool.acquire(key()), pool.acquire(key())]);
    expect(results.map(r => r.status)).toEqual(['rejected', 'rejected']);
    expect(pool.stats()).toEqual({ keys: 0, connections: 0, leases: 0 });
    await expect(pool.acquire(key())).rejects.toThrow('connect refused');
  });

  it('closes every connection gracefully on close() and refuses new leases', async () => {
    const { pool, made } = fakePool();
    await pool.acquire(key());
    await pool.acquire(key({ nextHop: '10.0.0.3:15008' }));
    pool.close();
    expect(made.map(c => c.closed)).toEqual(['graceful', 'graceful']);
    await expect(pool.acquire(key())).rejects.toBeInstanceOf(HboneClosedError);
  });

  it('destroys a connection that arrives after the pool was closed', async () => {
    let resolve!: (c: FakeConnection) => void;
    const conn = new FakeConnection(0);
    const pool = new TunnelPool<FakeConnection>({ connect: () => new Promise(r => (resolve = r)) });
    const pending = pool.acquire(key());
    pool.destroy();
    resolve(conn);
    await expect(pending).rejects.toBeInstanceOf(HboneClosedError);
    expect(conn.closed).toBe('destroyed');
  });

  it('refuses a non-positive stream limit', () => {
    expect(
      () =>
        new TunnelPool({ connect: () => Promise.resolve(new FakeConnection(0)), maxStreamsPerConnection: 0 }),
    ).toThrow(RangeError);
  });
});
