/**
 * The cluster HTTP/2 pool against a real h2c server on loopback: streams per connection (the
 * configured limit and the peer's SETTINGS), `max_requests` at attach time, pending requests
 * served in turn, `max_connections` counted as `upstream_cx_overflow`, per-connection request
 * limits, a failed connection failing its waiting requests, and an aborted wait leaving the queue.
 */
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session, Http2Server, ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../config/types.ts';
import { H2ClusterPool } from './h2-pool.ts';
import type { H2Acquired, H2Lease, H2PoolLimits } from './h2-pool.ts';

const endpoint = (port: number, address = '127.0.0.1'): Endpoint => ({
  address,
  port,
  hboneAddress: address,
  hbonePort: 15008,
  weight: 1,
  healthy: true,
  identity: undefined,
  workload: undefined,
  plaintext: true,
});

const limits = (over: Partial<H2PoolLimits> = {}): H2PoolLimits => ({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxConcurrentStreams: 2_147_483_647,
  maxRequestsPerConnection: 0,
  ...over,
});

function lease(a: H2Acquired): H2Lease {
  if (a.kind !== 'stream') throw new Error(`expected a stream, got an overflow (${a.limit})`);
  return a;
}

/** Whether `p` has settled (after the pending callbacks ran). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve));
  return done;
}

describe('the cluster HTTP/2 pool', () => {
  let server: Http2Server;
  let limited: Http2Server;
  let port = 0;
  let limitedPort = 0;
  const serverSessions: ServerHttp2Session[] = [];
  const pools: H2ClusterPool[] = [];

  const pool = (overflows?: { n: number }): H2ClusterPool => {
    const p = new H2ClusterPool({
      dial: e =>
        new Promise<ClientHttp2Session>((resolve, reject) => {
          const s = h2connect(`http://${e.address}:${e.port}`);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        }),
      onConnectionOverflow: () => {
        if (overflows !== undefined) overflows.n++;
      },
    });
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    server = createH2Server();
    server.on('session', s => serverSessions.push(s));
    limited = createH2Server({ settings: { maxConcurrentStreams: 1 } });
    limited.on('session', s => serverSessions.push(s));
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>(resolve => limited.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    limitedPort = (limited.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const p of pools) p.close();
    for (const s of serverSessions) s.destroy();
    await new Promise<void>(resolve =>
      server.close(() => {
        resolve();
      }),
    );
    await new Promise<void>(resolve =>
      limited.close(() => {
        resolve();
      }),
    );
  });

  it('multiplexes up to max_requests streams on one connection; the next is an overflow, until one ends', async () => {
    const p = pool();
    const signal = new AbortController().signal;
    const l = limits({ maxRequests: 2 });
    const a = lease(await p.acquire(endpoint(port), l, signal));
    const b = lease(await p.acquire(endpoint(port), l, signal));
    expect(a.session).toBe(b.session);
    expect(await p.acquire(endpoint(port), l, signal)).toEqual({ kind: 'overflow', limit: 'requests' });
    a.release();
    a.release(); // idempotent
    const c = lease(await p.acquire(endpoint(port), l, signal));
    expect(p.stats).toEqual({ connections: 1, activeStreams: 2, pending: 0 });
    b.release();
    c.release();
    expect(p.connectionsOpened).toBe(1);
  });

  it('max_concurrent_streams 1 and max_connections 1: one stream, then waiting requests (cx overflow), then pending overflow', async () => {
    const overflows = { n: 0 };
    const p = pool(overflows);
    const signal = new AbortController().signal;
    const l = limits({ maxConcurrentStreams: 1, maxConnections: 1, maxPendingRequests: 2 });
    const first = lease(await p.acquire(endpoint(port), l, signal));
    const second = p.acquire(endpoint(port), l, signal);
    const third = p.acquire(endpoint(port), l, signal);
    expect(await p.acquire(endpoint(port), l, signal)).toEqual({ kind: 'overflow', limit: 'pending' });
    expect(await settled(second)).toBe(false);
    expect(p.stats.pending).toBe(2);
    expect(overflows.n).toBeGreaterThanOrEqual(1);
    first.release();
    const s2 = lease(await second);
    expect(s2.session).toBe(first.session);
    expect(await settled(third)).toBe(false);
    s2.release();
    lease(await third).release();
    expect(p.connectionsOpened).toBe(1);
  });

  it("takes the peer's SETTINGS_MAX_CONCURRENT_STREAMS as the connection's limit", async () => {
    const p = pool();
    const signal = new AbortController().signal;
    const l = limits({ maxConnections: 1 });
    const first = lease(await p.acquire(endpoint(limitedPort), l, signal));
    // The server's SETTINGS arrive with the connection preface.
    await new Promise<void>(resolve => {
      if (first.session.remoteSettings.maxConcurrentStreams === 1) resolve();
      else
        first.session.once('remoteSettings', () => {
          resolve();
        });
    });
    const second = p.acquire(endpoint(limitedPort), l, signal);
    expect(await settled(second)).toBe(false);
    first.release();
    lease(await second).release();
  });

  it('max_requests_per_connection 2: the third stream goes on a new connection; the old one closes when done', async () => {
    const p = pool();
    const signal = new AbortController().signal;
    const l = limits({ maxRequestsPerConnection: 2 });
    const a = lease(await p.acquire(endpoint(port), l, signal));
    const b = lease(await p.acquire(endpoint(port), l, signal));
    const c = lease(await p.acquire(endpoint(port), l, signal));
    expect(c.session).not.toBe(a.session);
    expect(p.connectionsOpened).toBe(2);
    a.release();
    b.release();
    await new Promise<void>(resolve => {
      if (a.session.closed) resolve();
      else
        a.session.once('close', () => {
          resolve();
        });
    });
    c.release();
  });

  it('fails the requests waiting for a connection that cannot be opened; an aborted wait leaves the queue', async () => {
    const p = pool();
    const signal = new AbortController().signal;
    // Nothing listens on port 1.
    await expect(p.acquire(endpoint(1), limits(), signal)).rejects.toThrow();
    expect(p.stats).toEqual({ connections: 0, activeStreams: 0, pending: 0 });
    const l = limits({ maxConcurrentStreams: 1, maxConnections: 1 });
    const held = lease(await p.acquire(endpoint(port), l, signal));
    const abort = new AbortController();
    const waiting = p.acquire(endpoint(port), l, abort.signal);
    expect(p.stats.pending).toBe(1);
    abort.abort(new Error('route timeout'));
    await expect(waiting).rejects.toThrow('route timeout');
    expect(p.stats.pending).toBe(0);
    held.release();
    p.close();
    await expect(p.acquire(endpoint(port), l, signal)).rejects.toThrow(/pool is closed/);
  });
});
