/**
 * The HTTP/2 connection pool of one cluster, with Envoy's circuit-breaker semantics for HTTP/2
 * upstreams (h2c/gRPC to the backend):
 *
 * - a request takes a stream on a ready connection to its endpoint that has room: fewer open
 *   streams than `max_concurrent_streams` (the cluster's `http2_protocol_options`, lowered by
 *   the peer's SETTINGS) and streams left under `max_requests_per_connection`;
 * - attaching a stream checks `max_requests` (open streams over the whole cluster): beyond it the
 *   request fails with overflow (503 `UO`; Envoy counts it as `upstream_rq_pending_overflow`);
 * - a request that finds no room waits (pending) unless `max_pending_requests` requests already
 *   wait: overflow. A pending request makes the pool open a connection when the connecting ones
 *   cannot take all the waiting requests and the cluster has fewer than `max_connections`
 *   connections; at the limit it counts `upstream_cx_overflow` and waits for room (an endpoint
 *   with no connection at all still gets one, as Envoy does, so its requests are not stuck);
 * - a connection that got GOAWAY, failed, or served `max_requests_per_connection` streams takes
 *   no new stream and closes once its streams are done.
 *
 * Pending requests get the first stream that frees up on their endpoint, first come first
 * served; a failed connection fails the requests waiting for it (a connect failure), and an
 * aborted request (route timeout, client gone) leaves the queue.
 */
import type { ClientHttp2Session, Settings } from 'node:http2';
import type { Endpoint } from '../config/types.ts';
import { poolKey } from './upstream.ts';

/** The limits in force (from the cluster's config at the time of the request). */
export interface H2PoolLimits {
  /** `max_connections`: connections of the cluster, over all its endpoints. */
  readonly maxConnections: number;
  /** `max_pending_requests`: requests waiting for a stream, over the cluster. */
  readonly maxPendingRequests: number;
  /** `max_requests`: open streams, over the cluster. */
  readonly maxRequests: number;
  /** `http2_protocol_options.max_concurrent_streams`: open streams per connection. */
  readonly maxConcurrentStreams: number;
  /** `max_requests_per_connection`: streams per connection over its life; 0: unlimited. */
  readonly maxRequestsPerConnection: number;
}

/** A stream slot on a connection; `release` once the stream closed (idempotent). */
export interface H2Lease {
  readonly kind: 'stream';
  readonly session: ClientHttp2Session;
  readonly release: () => void;
}

/** Which circuit breaker refused the request. */
export type H2Overflow = { readonly kind: 'overflow'; readonly limit: 'pending' | 'requests' };

export type H2Acquired = H2Lease | H2Overflow;

export interface H2PoolOptions {
  /** Opens a new HTTP/2 session to `endpoint` (HBONE tunnel or plain TCP, h2c inside). */
  readonly dial: (endpoint: Endpoint) => Promise<ClientHttp2Session>;
  /** `max_connections` kept a needed connection from opening (`upstream_cx_overflow`). */
  readonly onConnectionOverflow?: () => void;
}

interface Conn {
  readonly key: string;
  /** Undefined while connecting. */
  session: ClientHttp2Session | undefined;
  /** Open streams allowed at once: the configured limit, lowered by the peer's SETTINGS. */
  capacity: number;
  active: number;
  /** Streams it may still take over its life. */
  remaining: number;
  /** Takes no new stream (GOAWAY, error, per-connection limit); closes when idle. */
  draining: boolean;
}

interface Waiter {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly resolve: (a: H2Acquired) => void;
  readonly reject: (err: unknown) => void;
  readonly cleanup: () => void;
}

export class PoolClosedError extends Error {
  readonly code = 'WAYPOINT_H2_POOL_CLOSED';
  constructor() {
    super('the upstream HTTP/2 pool is closed (the waypoint is shutting down)');
  }
}

const OVERFLOW_PENDING: H2Overflow = Object.freeze({ kind: 'overflow', limit: 'pending' });
const OVERFLOW_REQUESTS: H2Overflow = Object.freeze({ kind: 'overflow', limit: 'requests' });

export class H2ClusterPool {
  readonly #options: H2PoolOptions;
  /** Every connection not yet closed: connecting, ready, busy and draining. */
  readonly #conns = new Set<Conn>();
  /** Requests waiting for a stream, oldest first. */
  #waiters: Waiter[] = [];
  #activeStreams = 0;
  #limits: H2PoolLimits | undefined;
  #closed = false;
  /** Connections opened so far (for tests and stats). */
  connectionsOpened = 0;

  constructor(options: H2PoolOptions) {
    this.#options = options;
  }

  /** Open connections (connecting and draining ones too), open streams, waiting requests. */
  get stats(): { readonly connections: number; readonly activeStreams: number; readonly pending: number } {
    return {
      connections: this.#conns.size,
      activeStreams: this.#activeStreams,
      pending: this.#waiters.length,
    };
  }

  /**
   * A stream slot for a request to `endpoint`: at once when a connection has room, after waiting
   * (pending) otherwise, or an overflow. Rejects when the connection it waited for failed (a
   * connect failure) or `signal` aborted.
   */
  acquire(endpoint: Endpoint, limits: H2PoolLimits, signal: AbortSignal): Promise<H2Acquired> {
    if (this.#closed) return Promise.reject(new PoolClosedError());
    signal.throwIfAborted();
    this.#limits = limits;
    const key = poolKey(endpoint);
    const ready = this.#readyConn(key);
    if (ready !== undefined) return Promise.resolve(this.#attach(ready));
    if (this.#waiters.length >= limits.maxPendingRequests) return Promise.resolve(OVERFLOW_PENDING);
    return new Promise<H2Acquired>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters = this.#waiters.filter(w => w !== waiter);
        reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      const waiter: Waiter = {
        key,
        endpoint,
        resolve,
        reject,
        cleanup: () => {
          signal.removeEventListener('abort', onAbort);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#maybeConnect(key, endpoint);
    });
  }

  /** Fails the waiting requests and closes every connection at once. */
  close(): void {
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      w.cleanup();
      w.reject(new PoolClosedError());
    }
    for (const c of this.#conns) c.session?.destroy();
    this.#conns.clear();
  }

  #limitsNow(): H2PoolLimits {
    return this.#limits!;
  }

  #usable(c: Conn): c is Conn & { session: ClientHttp2Session } {
    if (c.session === undefined || c.draining) return false;
    if (c.session.closed || c.session.destroyed) {
      c.draining = true;
      return false;
    }
    return true;
  }

  #readyConn(key: string): (Conn & { session: ClientHttp2Session }) | undefined {
    for (const c of this.#conns)
      if (c.key === key && this.#usable(c) && c.active < c.capacity && c.remaining > 0) return c;
    return undefined;
  }

  #attach(c: Conn & { session: ClientHttp2Session }): H2Acquired {
    if (this.#activeStreams >= this.#limitsNow().maxRequests) return OVERFLOW_REQUESTS;
    c.active++;
    c.remaining--;
    this.#activeStreams++;
    if (c.remaining <= 0) c.draining = true;
    let released = false;
    return {
      kind: 'stream',
      session: c.session,
      release: () => {
        if (released) return;
        released = true;
        c.active--;
        this.#activeStreams--;
        if (c.draining && c.active === 0) this.#retire(c);
        this.#dispatch();
      },
    };
  }

  /** Hands freed or new room to the waiting requests, oldest first; opens connections they need. */
  #dispatch(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      const ready = this.#readyConn(w.key);
      if (ready === undefined) {
        still.push(w);
        continue;
      }
      w.cleanup();
      w.resolve(this.#attach(ready));
    }
    this.#waiters = still;
    const seen = new Set<string>();
    for (const w of still) {
      if (seen.has(w.key)) continue;
      seen.add(w.key);
      this.#maybeConnect(w.key, w.endpoint);
    }
  }

  /** Opens a connection to `key` when its waiting requests exceed what the connecting ones take. */
  #maybeConnect(key: string, endpoint: Endpoint): void {
    const limits = this.#limitsNow();
    let waiting = 0;
    for (const w of this.#waiters) if (w.key === key) waiting++;
    let connecting = 0;
    let live = 0;
    for (const c of this.#conns) {
      if (c.key !== key || c.draining) continue;
      live++;
      if (c.session === undefined) connecting += Math.min(c.capacity, c.remaining);
    }
    if (waiting <= connecting) return;
    const allowed = this.#conns.size < limits.maxConnections;
    if (!allowed) this.#options.onConnectionOverflow?.();
    // As Envoy: an endpoint without any connection gets one even at the cluster's limit.
    if (!allowed && live > 0) return;
    this.#open(key, endpoint, limits);
  }

  #open(key: string, endpoint: Endpoint, limits: H2PoolLimits): void {
    const conn: Conn = {
      key,
      session: undefined,
      capacity: Math.max(1, limits.maxConcurrentStreams),
      active: 0,
      remaining: limits.maxRequestsPerConnection > 0 ? limits.maxRequestsPerConnection : Infinity,
      draining: false,
    };
    this.#conns.add(conn);
    this.connectionsOpened++;
    this.#options.dial(endpoint).then(
      session => {
        if (this.#closed || !this.#conns.has(conn)) {
          session.destroy();
          return;
        }
        conn.session = session;
        session.on('remoteSettings', (settings: Settings) => {
          const peer = settings.maxConcurrentStreams;
          if (peer !== undefined) conn.capacity = Math.max(1, Math.min(limits.maxConcurrentStreams, peer));
          this.#dispatch();
        });
        session.on('goaway', () => {
          conn.draining = true;
          if (conn.active === 0) this.#retire(conn);
          this.#dispatch();
        });
        session.on('error', () => {
          conn.draining = true;
        });
        session.once('close', () => {
          this.#conns.delete(conn);
          this.#dispatch();
        });
        this.#dispatch();
      },
      (err: unknown) => {
        this.#conns.delete(conn);
        // The requests waiting on this endpoint fail as a connect failure, unless another
        // connection on its way can take them.
        const others = [...this.#conns].some(c => c.key === key && !c.draining);
        if (!others) {
          const failed = this.#waiters.filter(w => w.key === key);
          this.#waiters = this.#waiters.filter(w => w.key !== key);
          for (const w of failed) {
            w.cleanup();
            w.reject(err);
          }
        }
        this.#dispatch();
      },
    );
  }

  /** Closes a draining connection gracefully (its streams are done). */
  #retire(c: Conn): void {
    c.draining = true;
    const s = c.session;
    if (s !== undefined && !s.closed && !s.destroyed) s.close();
  }
}
