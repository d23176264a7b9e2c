/**
 * The outbound HBONE client: `connect()` opens one CONNECT tunnel on a pooled connection and
 * resolves with the tunnel as a Duplex once the server answered 200.
 *
 * Errors: `connect()` rejects only with the typed errors of errors.ts (codes `HBONE_*`), and
 * `onConnectionError` receives only those too.
 *
 * Layering: HboneClient (request shaping, counters) → TunnelPool (who owns which connection,
 * see tunnel-pool.ts) → H2Connection (one TLS/HTTP/2 session). Tunnels end with END_STREAM:
 * call `end()` on the returned stream to half-close, and read until `end` for the peer's half.
 */
import type { ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { formatAuthority } from './authority.ts';
import type { Authority } from './authority.ts';
import { createCounters } from './counters.ts';
import type { HboneCounters } from './counters.ts';
import { HboneInvalidHeaderError, HbonePeerIdentityError, HboneStreamRefusedError } from './errors.ts';
import { H2Connection, defaultSocketFactory } from './h2-connection.ts';
import type { SocketFactory } from './h2-connection.ts';
import { checkIdentity, spiffeIdStrings } from './identity.ts';
import type { HboneIdentity, SpiffeIdLike } from './identity.ts';
import { relay } from './relay.ts';
import type { RelayResult } from './relay.ts';
import { CONNECT_TIMEOUT_MS } from './settings.ts';
import { systemTimers } from './timers.ts';
import type { Timers } from './timers.ts';
import { buildTraceparent, newTraceparent } from './traceparent.ts';
import { TunnelPool } from './tunnel-pool.ts';
import type { Lease, PoolKey, PoolStats } from './tunnel-pool.ts';

export interface HboneClientOptions {
  /** Creates TCP sockets towards next hops (default: `net.connect`, Nagle off). */
  readonly socketFactory?: SocketFactory;
  /** Bound on TCP + TLS + HTTP/2 setup, and on the wait for the CONNECT's response. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Default 100 (ztunnel's `POOL_MAX_STREAMS_PER_CONNECTION`). */
  readonly maxStreamsPerConnection?: number;
  /** Default 5 minutes. */
  readonly idleTimeoutMs?: number;
  /** Default 10 s. */
  readonly keepaliveIntervalMs?: number;
  /** Default 20 s. */
  readonly keepaliveTimeoutMs?: number;
  readonly timers?: Timers;
  readonly counters?: HboneCounters;
  /** Told when a pooled connection is dropped because of an error. */
  readonly onConnectionError?: (error: Error, key: PoolKey) => void;
}

export interface HboneConnectOptions {
  /** The `:authority`: the tunnel's destination (not the next hop). */
  readonly target: string | Authority;
  /** `ip:port` (or `[ipv6]:port`) to connect to, usually `<pod or waypoint IP>:15008`. */
  readonly nextHop: string;
  /**
   * Our identity: presented to the server. Its `id` must be a URI SAN of its leaf certificate
   * (else HBONE_IDENTITY_MISMATCH); the id and the leaf's fingerprint are part of the pool key.
   */
  readonly identity: HboneIdentity;
  /** The server must present one of these SPIFFE IDs (URI text or `SpiffeId`) as a URI SAN. */
  readonly expectedIdentities: readonly SpiffeIdLike[];
  /** Source IP, part of the pool key (ztunnel: the source pod's IP). */
  readonly sourceIp?: string;
  /** Extra request headers, e.g. `baggage`, `forwarded`; a fresh `traceparent` is added if absent. */
  readonly headers?: Readonly<Record<string, string>>;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FORBIDDEN_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
]);

export class HboneClient {
  readonly counters: HboneCounters;
  readonly #pool: TunnelPool<H2Connection>;
  readonly #timeoutMs: number;
  /** Per pool key: the connect parameters of the request that made the key's first connection. */
  readonly #connectParams = new Map<PoolKey, HboneConnectOptions>();

  constructor(options: HboneClientOptions = {}) {
    this.counters = options.counters ?? createCounters();
    this.#timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const timers = options.timers ?? systemTimers;
    const socketFactory = options.socketFactory ?? defaultSocketFactory;
    this.#pool = new TunnelPool<H2Connection>({
      connect: key => {
        const request = this.#connectParams.get(key)!;
        return H2Connection.open({
          nextHop: key.nextHop,
          sourceIp: key.sourceIp,
          identity: request.identity,
          expectedIdentities: key.destinationIdentities,
          socketFactory,
          timeoutMs: this.#timeoutMs,
          timers,
          counters: this.counters,
        });
      },
      ...(options.maxStreamsPerConnection === undefined
        ? {}
        : { maxStreamsPerConnection: options.maxStreamsPerConnection }),
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      ...(options.keepaliveIntervalMs === undefined
        ? {}
        : { keepaliveIntervalMs: options.keepaliveIntervalMs }),
      ...(options.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: options.keepaliveTimeoutMs }),
      timers,
      ...(options.onConnectionError === undefined ? {} : { onConnectionError: options.onConnectionError }),
    });
  }

  /**
   * Opens a tunnel to `target` through `nextHop`. Resolves with the tunnel stream after the 200;
   * rejects with a typed error (HboneConnectRejectedError carries the status).
   */
  async connect(options: HboneConnectOptions): Promise<Duplex> {
    const authority = typeof options.target === 'string' ? options.target : formatAuthority(options.target);
    const headers = checkedHeaders(options.headers ?? {});
    if (options.expectedIdentities.length === 0) throw new HbonePeerIdentityError([], []);
    const source = checkIdentity(options.identity);
    const key: PoolKey = {
      sourceIdentity: source.id.uri,
      sourceCertificate: source.fingerprint,
      destinationIdentities: spiffeIdStrings(options.expectedIdentities),
      nextHop: options.nextHop,
      sourceIp: options.sourceIp ?? '',
    };
    const open = async (): Promise<{ stream: ClientHttp2Stream; lease: Lease<H2Connection> }> => {
      this.#connectParams.set(key, options);
      let lease;
      try {
        lease = await this.#pool.acquire(key);
      } finally {
        this.#connectParams.delete(key);
      }
      try {
        return { stream: await lease.connection.openTunnel(authority, headers), lease };
      } catch (err) {
        lease.release();
        throw err;
      }
    };
    let opened;
    try {
      opened = await open();
    } catch (err) {
      // The peer never processed the CONNECT, so it is safe to send once more. After a GOAWAY
      // the pool has already retired that connection, and the retry goes out on another one.
      if (!(err instanceof HboneStreamRefusedError)) throw err;
      this.counters.streamsRetried++;
      opened = await open();
    }
    const { stream, lease } = opened;
    this.counters.streamsOpened++;
    releaseOnClose(stream, lease, this.counters);
    return stream;
  }

  /** Joins a tunnel from `connect()` to a socket, counting bytes into this client's counters. */
  relay(tunnel: Duplex, socket: Duplex): Promise<RelayResult> {
    return relay(tunnel, socket, { counters: this.counters });
  }

  stats(): PoolStats {
    return this.#pool.stats();
  }

  /** GOAWAY on every pooled connection; open tunnels finish, new `connect()` calls fail. */
  close(): void {
    this.#pool.close();
  }

  destroy(): void {
    this.#pool.destroy();
  }
}

/**
 * Gives the tunnel's pool slot back when it closes. A function of its own, so the listener (which
 * lives as long as the tunnel) holds only these three, not `connect()`'s options and headers.
 */
function releaseOnClose(
  stream: ClientHttp2Stream,
  lease: Lease<H2Connection>,
  counters: HboneCounters,
): void {
  // 'close' comes once: `on` spares the `once` wrapper a long-lived tunnel would keep.
  stream.on('close', () => {
    counters.streamsClosed++;
    lease.release();
  });
}

function checkedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || FORBIDDEN_HEADERS.has(name)) {
      throw new HboneInvalidHeaderError(
        name,
        'header names must be lowercase tokens, not connection-specific',
      );
    }
    if (/[\0\r\n]/.test(value)) throw new HboneInvalidHeaderError(name, 'value contains NUL, CR or LF');
    out[name] = value;
  }
  if (!('traceparent' in out)) out.traceparent = buildTraceparent(newTraceparent());
  return out;
}

export function createHboneClient(options: HboneClientOptions = {}): HboneClient {
  return new HboneClient(options);
}
