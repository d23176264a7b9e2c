/**
 * The outbound HBONE connection pool (docs/protocols.md#hbone-pool).
 *
 * Invariants (who owns which connection):
 * - The pool owns every connection it created, from the `connect` call until the connection is
 *   closed. Nobody else closes a pooled connection; callers only hold *leases* on it (one lease
 *   per CONNECT stream) and give them back with `release()`.
 * - Connections are grouped by the full pool key (source identity and the SHA-256 fingerprint of
 *   the source's leaf certificate, sorted destination identities, next hop, source IP). A
 *   connection serves only requests whose key is equal in full: two identities that share an id
 *   but hold different certificates (a rotation, another issuer) never share a connection.
 * - A connection carries at most `min(maxStreamsPerConnection, peer's SETTINGS_MAX_CONCURRENT_STREAMS)`
 *   leases. A new connection is opened only when every usable connection of the key is full;
 *   there is no upper bound on connections per key. A connection still connecting takes leases
 *   too, so a burst of requests shares one handshake.
 * - A connection leaves the key's list exactly once, on the first of: idle release (no lease for
 *   `idleTimeoutMs`; `surplusIdleTimeoutMs` while the key has another connection, so a burst's
 *   extra connections close soon and one stays warm), keepalive failure (a PING unanswered for
 *   `keepaliveTimeoutMs`), the peer's GOAWAY or close, a failed connect, or `close()` of the pool.
 *   After that it takes no new leases; streams already open on it run to their end (a graceful
 *   close is a GOAWAY).
 * - Timers (idle, keepalive) belong to the connection record and are cleared when it leaves the
 *   list; all state changes go through `transition()`.
 */
import { HboneClosedError, HboneKeepaliveTimeoutError } from './errors.ts';
import {
  CLIENT_MAX_STREAMS_PER_CONNECTION,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
  POOL_IDLE_TIMEOUT_MS,
  POOL_SURPLUS_IDLE_TIMEOUT_MS,
} from './settings.ts';
import { systemTimers } from './timers.ts';
import type { TimerHandle, Timers } from './timers.ts';

/** The full identity of a pooled connection; keys must be equal in full to share one. */
export interface PoolKey {
  /** SPIFFE ID the connection presents. */
  readonly sourceIdentity: string;
  /** SHA-256 of the presented leaf certificate's DER (lowercase hex); what makes two sources equal. */
  readonly sourceCertificate: string;
  /** SPIFFE IDs any of which the peer may present (order does not matter). */
  readonly destinationIdentities: readonly string[];
  /** `ip:port` the TCP connection goes to (the destination pod, a waypoint or a gateway). */
  readonly nextHop: string;
  /** Source IP of the connection; '' when unspecified. */
  readonly sourceIp: string;
}

/** One multiplexed connection as the pool sees it. */
export interface PoolConnection {
  /** Peer's stream limit, once known; undefined before its SETTINGS arrived. */
  peerMaxConcurrentStreams(): number | undefined;
  /** Sends a PING; resolves when it is acknowledged, rejects if the connection fails. */
  ping(): Promise<void>;
  /** Graceful close: GOAWAY, let open streams finish. */
  close(): void;
  /** Immediate close. */
  destroy(error?: Error): void;
  /** Registers the listener called once when the connection stops taking new streams. */
  onClosed(listener: (error?: Error) => void): void;
}

export interface TunnelPoolOptions<C extends PoolConnection> {
  /** Opens a new connection for a key (TCP, TLS, HTTP/2). */
  readonly connect: (key: PoolKey) => Promise<C>;
  readonly maxStreamsPerConnection?: number;
  readonly idleTimeoutMs?: number;
  /** How long an unused connection stays while its key has another one (default 15 s). */
  readonly surplusIdleTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  readonly timers?: Timers;
  /** Told when a pooled connection is dropped because of an error (keepalive, peer reset). */
  readonly onConnectionError?: (error: Error, key: PoolKey) => void;
}

/** A claim on one stream slot of a pooled connection. */
export interface Lease<C extends PoolConnection> {
  readonly connection: C;
  /** Gives the slot back; idempotent. Call when the stream closed (or failed to open). */
  release(): void;
}

export interface PoolStats {
  readonly keys: number;
  readonly connections: number;
  readonly leases: number;
}

const ConnState = {
  Connecting: 'connecting',
  Ready: 'ready',
  Gone: 'gone',
} as const;
type ConnState = (typeof ConnState)[keyof typeof ConnState];

interface ConnRecord<C> {
  readonly keyString: string;
  readonly key: PoolKey;
  state: ConnState;
  /** Set once connected. */
  conn: C | undefined;
  readonly ready: Promise<C>;
  /** Leases handed out and not released. */
  leases: number;
  idleTimer: TimerHandle | undefined;
  keepaliveTimer: TimerHandle | undefined;
  /** Running while a PING is unanswered. */
  pingDeadline: TimerHandle | undefined;
}

/** The canonical string of a pool key (destination identities sorted). */
export function poolKeyString(key: PoolKey): string {
  return JSON.stringify([
    key.sourceIdentity,
    key.sourceCertificate,
    [...key.destinationIdentities].sort(),
    key.nextHop,
    key.sourceIp,
  ]);
}

export class TunnelPool<C extends PoolConnection> {
  readonly #connect: (key: PoolKey) => Promise<C>;
  readonly #maxStreams: number;
  readonly #idleTimeoutMs: number;
  readonly #surplusIdleTimeoutMs: number;
  readonly #keepaliveIntervalMs: number;
  readonly #keepaliveTimeoutMs: number;
  readonly #timers: Timers;
  readonly #onConnectionError: ((error: Error, key: PoolKey) => void) | undefined;
  /** Usable connections per key string; a record is in here iff its state is not Gone. */
  readonly #byKey = new Map<string, ConnRecord<C>[]>();
  #closed = false;

  constructor(options: TunnelPoolOptions<C>) {
    this.#connect = options.connect;
    this.#maxStreams = options.maxStreamsPerConnection ?? CLIENT_MAX_STREAMS_PER_CONNECTION;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS;
    this.#surplusIdleTimeoutMs = Math.min(
      options.surplusIdleTimeoutMs ?? POOL_SURPLUS_IDLE_TIMEOUT_MS,
      this.#idleTimeoutMs,
    );
    this.#keepaliveIntervalMs = options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS;
    this.#keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS;
    this.#timers = options.timers ?? systemTimers;
    this.#onConnectionError = options.onConnectionError;
    if (!Number.isInteger(this.#maxStreams) || this.#maxStreams < 1) {
      throw new RangeError(`maxStreamsPerConnection must be a positive integer, got ${this.#maxStreams}`);
    }
  }

  /** Claims a stream slot on a connection for `key`, opening a connection when all are full. */
  async acquire(key: PoolKey): Promise<Lease<C>> {
    if (this.#closed) throw new HboneClosedError('the HBONE connection pool');
    const keyString = poolKeyString(key);
    const list = this.#byKey.get(keyString) ?? [];
    let record = list.find(r => r.leases < this.#limit(r));
    if (record === undefined) {
      record = this.#open(key, keyString);
      list.push(record);
      this.#byKey.set(keyString, list);
    }
    this.#take(record);
    let conn: C;
    try {
      conn = await record.ready;
    } catch (err) {
      record.leases--;
      throw err;
    }
    let released = false;
    const owner = record;
    return {
      connection: conn,
      release: () => {
        if (released) return;
        released = true;
        this.#give(owner);
      },
    };
  }

  /** Closes every connection gracefully and refuses new leases. */
  close(): void {
    this.#closed = true;
    for (const list of [...this.#byKey.values()]) {
      for (const record of [...list]) this.#retire(record, undefined, 'close');
    }
  }

  /** Destroys every connection at once. */
  destroy(): void {
    this.#closed = true;
    for (const list of [...this.#byKey.values()]) {
      for (const record of [...list]) this.#retire(record, undefined, 'destroy');
    }
  }

  stats(): PoolStats {
    let connections = 0;
    let leases = 0;
    for (const list of this.#byKey.values()) {
      connections += list.length;
      for (const r of list) leases += r.leases;
    }
    return { keys: this.#byKey.size, connections, leases };
  }

  #limit(record: ConnRecord<C>): number {
    const peer = record.conn?.peerMaxConcurrentStreams();
    return peer === undefined ? this.#maxStreams : Math.max(1, Math.min(this.#maxStreams, peer));
  }

  #open(key: PoolKey, keyString: string): ConnRecord<C> {
    const record: ConnRecord<C> = {
      keyString,
      key,
      state: ConnState.Connecting,
      conn: undefined,
      ready: this.#connect(key).then(
        conn => {
          if (record.state === ConnState.Gone) {
            // The pool was closed while connecting: the connection was never usable.
            conn.destroy();
            throw new HboneClosedError('the HBONE connection pool');
          }
          record.conn = conn;
          this.#transition(record, ConnState.Ready);
          conn.onClosed(error => {
            this.#retire(record, error, 'none');
          });
          return conn;
        },
        (err: unknown) => {
          this.#retire(record, undefined, 'none');
          throw err;
        },
      ),
      leases: 0,
      idleTimer: undefined,
      keepaliveTimer: undefined,
      pingDeadline: undefined,
    };
    // Waiters handle the rejection; this keeps an unobserved failure from being reported twice.
    record.ready.catch(() => undefined);
    return record;
  }

  #take(record: ConnRecord<C>): void {
    record.leases++;
    if (record.idleTimer !== undefined) {
      this.#timers.clearTimeout(record.idleTimer);
      record.idleTimer = undefined;
    }
  }

  #give(record: ConnRecord<C>): void {
    record.leases--;
    if (record.leases === 0 && record.state === ConnState.Ready) this.#armIdle(record);
  }

  /**
   * Releases an unused connection after the idle timeout. While its key has another connection it
   * is surplus (the rest of a burst's connections) and goes after `surplusIdleTimeoutMs`: each idle
   * connection keeps its TLS and HTTP/2 state, and a burst of 9,000 tunnels leaves 90 of them on
   * each side. The last one of a key stays warm for the full idle timeout.
   */
  #armIdle(record: ConnRecord<C>): void {
    if (record.idleTimer !== undefined) this.#timers.clearTimeout(record.idleTimer);
    const surplus = this.#hasSibling(record);
    const first = surplus ? this.#surplusIdleTimeoutMs : this.#idleTimeoutMs;
    record.idleTimer = this.#timers.setTimeout(() => {
      record.idleTimer = undefined;
      if (record.leases !== 0) return;
      if (!surplus || this.#hasSibling(record)) {
        this.#retire(record, undefined, 'close');
        return;
      }
      // Its siblings went first: this one is the key's warm connection for the rest of the time.
      record.idleTimer = this.#timers.setTimeout(() => {
        record.idleTimer = undefined;
        if (record.leases === 0) this.#retire(record, undefined, 'close');
      }, this.#idleTimeoutMs - first);
    }, first);
  }

  /** Whether the record's key has another connection in service (connecting or ready). */
  #hasSibling(record: ConnRecord<C>): boolean {
    const list = this.#byKey.get(record.keyString);
    return list !== undefined && list.some(r => r !== record);
  }

  #armKeepalive(record: ConnRecord<C>): void {
    record.keepaliveTimer = this.#timers.setTimeout(() => {
      record.keepaliveTimer = undefined;
      if (record.state !== ConnState.Ready) return;
      this.#armKeepalive(record);
      if (record.pingDeadline !== undefined) return; // previous PING still unanswered
      const conn = record.conn!;
      record.pingDeadline = this.#timers.setTimeout(() => {
        record.pingDeadline = undefined;
        const error = new HboneKeepaliveTimeoutError(record.key.nextHop, this.#keepaliveTimeoutMs);
        this.#retire(record, error, 'destroy');
      }, this.#keepaliveTimeoutMs);
      conn.ping().then(
        () => {
          if (record.pingDeadline !== undefined) this.#timers.clearTimeout(record.pingDeadline);
          record.pingDeadline = undefined;
        },
        () => {
          // A failed PING means the session is failing; its close is reported through onClosed.
        },
      );
    }, this.#keepaliveIntervalMs);
  }

  /** The single place a record changes state; runs the entry actions of the new state. */
  #transition(record: ConnRecord<C>, to: ConnState): boolean {
    const from = record.state;
    if (from === ConnState.Gone || from === to) return false;
    record.state = to;
    switch (to) {
      case ConnState.Ready:
        this.#armKeepalive(record);
        if (record.leases === 0) this.#armIdle(record);
        break;
      case ConnState.Gone: {
        for (const t of [record.idleTimer, record.keepaliveTimer, record.pingDeadline]) {
          if (t !== undefined) this.#timers.clearTimeout(t);
        }
        record.idleTimer = record.keepaliveTimer = record.pingDeadline = undefined;
        const list = this.#byKey.get(record.keyString);
        if (list !== undefined) {
          const at = list.indexOf(record);
          if (at >= 0) list.splice(at, 1);
          if (list.length === 0) this.#byKey.delete(record.keyString);
        }
        break;
      }
      case ConnState.Connecting:
        break;
    }
    return true;
  }

  /** Takes a record out of service, then closes its connection as asked. */
  #retire(record: ConnRecord<C>, error: Error | undefined, action: 'close' | 'destroy' | 'none'): void {
    if (!this.#transition(record, ConnState.Gone)) return;
    if (error !== undefined) this.#onConnectionError?.(error, record.key);
    const conn = record.conn;
    if (conn === undefined) return; // still connecting: the `ready` handler destroys it on arrival
    if (action === 'close') conn.close();
    else if (action === 'destroy') conn.destroy(error);
  }
}
