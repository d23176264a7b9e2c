/**
 * The inbound HBONE server (docs/protocols.md#hbone-server, #hbone-http2-settings): TLS 1.3 with a required client
 * certificate, HTTP/2, one CONNECT stream per tunnel.
 *
 * It serves on a listener it is given (a `net.Server`, or a listening socket's fd), because
 * ztunnel creates its listeners inside each pod's network namespace. Each stream goes through
 * one state machine:
 *
 *   received ──(not CONNECT / bad :authority)──▶ rejected(400)
 *      │
 *   deciding ──(hook: 400/401/503, or hook failed → 503)──▶ rejected
 *      │ hook: 200 + connect()
 *   connecting ──(dial failed → 503; stream went away → upstream destroyed)──▶ rejected / closed
 *      │ upstream connected, stream still alive
 *   open (200 sent, relay both ways, half-close) ──▶ closed
 *
 * No byte of the stream is read before `open` (CVE-2025-64763: nothing is forwarded before the
 * tunnel is accepted); a rejected stream's body is discarded. Responses check `stream.destroyed`
 * first, every session has an `error` listener, and abuse (floods, oversized headers) ends only
 * the abusive session: nothing here throws into the event loop.
 */
import { createSecureServer } from 'node:http2';
import type { Http2SecureServer, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { Server as NetServer } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '@ambient-mesh/errors';
import { parseAuthority } from './authority.ts';
import type { Authority } from './authority.ts';
import { createCounters } from './counters.ts';
import type { HboneCounters } from './counters.ts';
import {
  HboneConnectHookError,
  HboneHandshakeError,
  HboneIdleSessionError,
  HboneKeepaliveTimeoutError,
  HboneListenerError,
  HbonePeerRejectedError,
  HboneServerFailureError,
  HboneSessionError,
  HboneStreamError,
  HboneTlsConfigError,
  HboneUpstreamConnectError,
} from './errors.ts';
import type { HboneServerError } from './errors.ts';
import { checkIdentity, spiffeIds, tlsContextOptions } from './identity.ts';
import type { HboneIdentity } from './identity.ts';
import { relay } from './relay.ts';
import type { RelayResult } from './relay.ts';
import {
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
  SERVER_SESSION_OPTIONS,
  tuneSession,
} from './settings.ts';
import { systemTimers } from './timers.ts';
import type { TimerHandle, Timers } from './timers.ts';

export interface SocketAddressInfo {
  readonly address: string;
  readonly port: number;
}

/** What the hook learns about a CONNECT. */
export interface ConnectRequest {
  readonly authority: Authority;
  /** The `:authority` as received. */
  readonly rawAuthority: string;
  /** The peer's SPIFFE ID (the first `spiffe://` URI SAN of its verified leaf certificate). */
  readonly peerIdentity: string;
  /** Regular request headers (no pseudo-headers), e.g. `baggage`, `forwarded`, `traceparent`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Where the TCP connection arrived (the pod IP in ztunnel). */
  readonly localAddress: SocketAddressInfo;
  readonly remoteAddress: SocketAddressInfo;
}

/**
 * Per-tunnel callbacks of an accepted CONNECT: bytes as they are relayed, and the end of the
 * relay (also when the tunnel went away while the upstream was being dialled).
 */
export interface ConnectObserver {
  /** Bytes read from the tunnel (the client's), as they arrive. */
  readonly fromClient?: (bytes: number) => void;
  /** Bytes read from the upstream and relayed to the client, as they arrive. */
  readonly toClient?: (bytes: number) => void;
  /** The relay ended (`error` set when it was cut short); called once. */
  readonly closed?: (result: RelayResult) => void;
}

/** The hook's answer. 200 needs an upstream: it is dialled before the 200 is sent. */
export type ConnectDecision =
  | {
      readonly status: 200;
      readonly connect: (signal: AbortSignal) => Promise<Duplex>;
      readonly observe?: ConnectObserver;
    }
  | { readonly status: 400 | 401 | 503; readonly reason?: string };

export type ConnectHook = (request: ConnectRequest) => ConnectDecision | Promise<ConnectDecision>;

/** A listener to serve on: an existing `net.Server` (owned by the caller), or a listening fd. */
export type HboneListener = NetServer | { readonly fd: number };

export interface HboneServerOptions {
  readonly identity: HboneIdentity;
  readonly listener: HboneListener;
  readonly onConnect: ConnectHook;
  readonly counters?: HboneCounters;
  /**
   * Told about rejected handshakes, session errors and failed tunnels, always as a typed hbone
   * error with a stable `code` (the original Node/OpenSSL error is its `cause`). Never required.
   */
  readonly onError?: (error: HboneServerError) => void;
  /** Longest a TLS handshake may take (default 10 s); a client that stalls it is disconnected. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Closes a session (GOAWAY, then the connection) that has carried no CONNECT stream for this
   * long: since it was established, or since its last stream ended. 0 or unset: never.
   */
  readonly idleSessionTimeoutMs?: number;
  /** PING every this often (default 10 s)... */
  readonly keepaliveIntervalMs?: number;
  /** ... and drop the session when one stays unanswered this long (default 20 s). */
  readonly keepaliveTimeoutMs?: number;
  readonly timers?: Timers;
}

/** The states of one CONNECT stream (see the diagram at the top of this file). */
const StreamState = {
  Received: 'received',
  Deciding: 'deciding',
  Connecting: 'connecting',
  Open: 'open',
  Rejected: 'rejected',
  Closed: 'closed',
} as const;
type StreamState = (typeof StreamState)[keyof typeof StreamState];

const kPeer = Symbol('hbone.peer');

interface SessionInfo {
  readonly peerIdentity: string;
  readonly localAddress: SocketAddressInfo;
  readonly remoteAddress: SocketAddressInfo;
}

export class HboneServer {
  readonly counters: HboneCounters;
  readonly #h2: Http2SecureServer;
  readonly #hook: ConnectHook;
  readonly #onError: ((error: HboneServerError) => void) | undefined;
  readonly #listener: NetServer;
  readonly #ownsListener: boolean;
  readonly #sessions = new Set<Http2Session>();
  readonly #timers: Timers;
  readonly #keepaliveIntervalMs: number;
  readonly #keepaliveTimeoutMs: number;
  readonly #idleSessionTimeoutMs: number;
  #trustDomain: string;
  #closed = false;

  constructor(options: HboneServerOptions) {
    this.counters = options.counters ?? createCounters();
    this.#hook = options.onConnect;
    this.#onError = options.onError;
    this.#timers = options.timers ?? systemTimers;
    this.#keepaliveIntervalMs = options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS;
    this.#keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS;
    this.#idleSessionTimeoutMs = options.idleSessionTimeoutMs ?? 0;
    this.#trustDomain = checkIdentity(options.identity).id.trustDomain;
    try {
      this.#h2 = createSecureServer({
        ...SERVER_SESSION_OPTIONS,
        ...tlsContextOptions(options.identity),
        requestCert: true,
        // A chain that does not verify (untrusted, expired) ends the connection in the handshake.
        rejectUnauthorized: true,
        handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      });
    } catch (err) {
      throw new HboneTlsConfigError(errorMessage(err), err);
    }
    this.#h2.prependListener('secureConnection', this.#onSecureConnection);
    this.#h2.on('session', session => {
      this.#onSession(session);
    });
    this.#h2.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.counters.connectionErrors++;
      // Node destroys a socket whose client chain failed verification and reports only a hang-up.
      const reason = socket.authorizationError as Error | string | null | undefined;
      this.#report(
        reason === null || reason === undefined
          ? new HboneHandshakeError(`${err.message}${codeOf(err)} from ${remoteOf(socket)}`, err)
          : new HbonePeerRejectedError(`certificate verification failed (${String(reason)})`, err),
      );
    });
    this.#h2.on('unknownProtocol', (socket: TLSSocket) => {
      socket.destroy();
    });
    this.#h2.on('error', (err: Error) => {
      this.#report(new HboneServerFailureError(`${err.message}${codeOf(err)}`, err));
    });

    if (options.listener instanceof NetServer) {
      this.#listener = options.listener;
      this.#ownsListener = false;
    } else if (Number.isInteger(options.listener.fd) && options.listener.fd >= 0) {
      this.#listener = new NetServer();
      this.#ownsListener = true;
      this.#listener.on('error', err => {
        this.#report(new HboneListenerError(`fd ${(options.listener as { fd: number }).fd}`, err));
      });
      this.#listener.listen({ fd: options.listener.fd });
    } else {
      throw new HboneListenerError('expected a net.Server or { fd } with a non-negative integer fd');
    }
    this.#listener.on('connection', this.#onConnection);
  }

  /** Swaps the certificate chain, key and roots for new handshakes (rotation). */
  updateIdentity(identity: HboneIdentity): void {
    const trustDomain = checkIdentity(identity).id.trustDomain;
    try {
      this.#h2.setSecureContext(tlsContextOptions(identity));
    } catch (err) {
      throw new HboneTlsConfigError(errorMessage(err), err);
    }
    this.#trustDomain = trustDomain;
  }

  /** Number of live HTTP/2 sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Stops taking connections and sends GOAWAY on every session; open tunnels run to their end.
   * Resolves when every session closed. Closes the listener only if the server created it (fd).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listener.off('connection', this.#onConnection);
    if (this.#ownsListener) this.#listener.close();
    const closing = [...this.#sessions].map(
      s =>
        new Promise<void>(resolve => {
          if (s.closed || s.destroyed) {
            resolve();
            return;
          }
          s.close(resolve);
        }),
    );
    await Promise.all(closing);
  }

  /** Tears down every session and tunnel at once. */
  destroy(): void {
    this.#closed = true;
    this.#listener.off('connection', this.#onConnection);
    if (this.#ownsListener) this.#listener.close();
    for (const s of this.#sessions) s.destroy();
  }

  readonly #onConnection = (socket: Socket): void => {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    // The TLS server wraps the raw socket and runs the handshake.
    this.#h2.emit('connection', socket);
  };

  #report(error: HboneServerError): void {
    try {
      this.#onError?.(error);
    } catch {
      // A failing observer must not break the data path.
    }
  }

  /**
   * Runs before node:http2 creates the session (prepended listener), so a refused peer never
   * sees our SETTINGS: its socket is destroyed and the session that follows is stillborn.
   */
  readonly #onSecureConnection = (socket: TLSSocket): void => {
    const peerCert = socket.getPeerX509Certificate();
    // OpenSSL verified the chain; ztunnel additionally wants a URI SAN in our trust domain.
    const ids = peerCert === undefined ? [] : spiffeIds(peerCert.raw);
    let refusal: string | undefined;
    if (this.#closed) refusal = 'the server is closing';
    else if (peerCert === undefined || ids[0] === undefined)
      refusal = 'no SPIFFE URI SAN in the client certificate';
    else if (!ids.some(id => id.trustDomain === this.#trustDomain)) {
      refusal = `no SPIFFE URI SAN in trust domain ${this.#trustDomain} (got [${ids.join(', ')}])`;
    }
    if (refusal !== undefined || ids[0] === undefined) {
      this.counters.connectionErrors++;
      this.#report(new HbonePeerRejectedError(refusal ?? 'no SPIFFE identity'));
      socket.destroy();
      return;
    }
    const info: SessionInfo = {
      peerIdentity: ids[0].uri,
      localAddress: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      remoteAddress: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    };
    (socket as TLSSocket & { [kPeer]?: SessionInfo })[kPeer] = info;
  };

  #onSession(session: Http2Session): void {
    // session.socket is a proxy of the TLS socket; the property read passes through.
    const info = (session.socket as (TLSSocket & { [kPeer]?: SessionInfo }) | undefined)?.[kPeer];
    const who = info === undefined ? 'a client' : `${info.peerIdentity} at ${info.remoteAddress.address}`;
    session.on('error', err => {
      this.counters.connectionErrors++;
      this.#report(new HboneSessionError(who, `${err.message}${codeOf(err)}`, err));
    });
    if (info === undefined || session.socket.destroyed) {
      session.destroy();
      return;
    }
    this.#sessions.add(session);
    this.counters.connectionsOpened++;
    session.once('close', () => {
      this.#sessions.delete(session);
      this.counters.connectionsClosed++;
    });
    tuneSession(session);
    this.#keepalive(session, info);
    const idle = this.#idleWatch(session, info);
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      idle.streamOpened();
      // 'close' comes once: `on` spares the `once` wrapper a long-lived tunnel would keep.
      stream.on('close', () => {
        idle.streamClosed();
      });
      this.#onStream(stream, headers, info).catch((err: unknown) => {
        // Unreachable by design (#onStream handles its own failures); kept as a last guard.
        this.#report(new HboneServerFailureError(`BUG: CONNECT handling threw: ${errorMessage(err)}`, err));
        stream.destroy();
      });
    });
  }

  /** Closes the session once it has had no stream for `idleSessionTimeoutMs`. */
  #idleWatch(session: Http2Session, info: SessionInfo): { streamOpened(): void; streamClosed(): void } {
    const ms = this.#idleSessionTimeoutMs;
    if (ms <= 0) return { streamOpened: () => undefined, streamClosed: () => undefined };
    let streams = 0;
    let timer: TimerHandle | undefined;
    const arm = (): void => {
      timer = this.#timers.setTimeout(() => {
        timer = undefined;
        if (streams > 0 || session.closed || session.destroyed) return;
        const peer = `${info.peerIdentity} at ${info.remoteAddress.address}:${info.remoteAddress.port}`;
        this.#report(new HboneIdleSessionError(peer, ms));
        // GOAWAY: the client's pool opens a new connection for its next tunnel.
        session.close();
      }, ms);
    };
    const disarm = (): void => {
      if (timer !== undefined) this.#timers.clearTimeout(timer);
      timer = undefined;
    };
    arm();
    session.once('close', disarm);
    return {
      streamOpened: () => {
        streams++;
        disarm();
      },
      streamClosed: () => {
        streams--;
        if (streams === 0 && !session.closed && !session.destroyed) arm();
      },
    };
  }

  /** PINGs the client like ztunnel does; a PING unanswered for the timeout ends the session. */
  #keepalive(session: Http2Session, info: SessionInfo): void {
    let deadline: TimerHandle | undefined;
    let next: TimerHandle | undefined;
    const tick = (): void => {
      next = this.#timers.setTimeout(tick, this.#keepaliveIntervalMs);
      if (deadline !== undefined) return; // the previous PING is still unanswered
      deadline = this.#timers.setTimeout(() => {
        deadline = undefined;
        this.counters.connectionErrors++;
        const peer = `${info.peerIdentity} at ${info.remoteAddress.address}:${info.remoteAddress.port}`;
        this.#report(new HboneKeepaliveTimeoutError(peer, this.#keepaliveTimeoutMs));
        session.destroy();
      }, this.#keepaliveTimeoutMs);
      try {
        session.ping(err => {
          if (err !== null || deadline === undefined) return;
          this.#timers.clearTimeout(deadline);
          deadline = undefined;
        });
      } catch {
        // The session is closing; its close handler clears the timers.
      }
    };
    next = this.#timers.setTimeout(tick, this.#keepaliveIntervalMs);
    session.once('close', () => {
      if (next !== undefined) this.#timers.clearTimeout(next);
      if (deadline !== undefined) this.#timers.clearTimeout(deadline);
    });
  }

  async #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, info: SessionInfo): Promise<void> {
    let state: StreamState = StreamState.Received;
    stream.on('error', err => {
      if (state !== StreamState.Open) this.#report(new HboneStreamError(`${err.message}${codeOf(err)}`, err));
    });
    const early = watchEarlyClose(stream);

    const reject = (status: 400 | 401 | 503): void => {
      state = StreamState.Rejected;
      this.counters.streamsRejected++;
      if (stream.destroyed || stream.closed || stream.headersSent) return;
      stream.respond({ ':status': status }, { endStream: true });
      // Discard whatever the client sent; its END_STREAM then closes the stream without a reset.
      stream.resume();
    };

    if (headers[':method'] !== 'CONNECT') {
      reject(400);
      return;
    }
    const rawAuthority = headers[':authority'];
    const parsed = typeof rawAuthority === 'string' ? parseAuthority(rawAuthority) : undefined;
    if (parsed === undefined || !parsed.ok) {
      reject(400);
      return;
    }

    state = StreamState.Deciding;
    let decision: ConnectDecision;
    try {
      decision = await this.#hook({
        authority: parsed.authority,
        rawAuthority: rawAuthority as string,
        peerIdentity: info.peerIdentity,
        headers: plainHeaders(headers),
        localAddress: info.localAddress,
        remoteAddress: info.remoteAddress,
      });
    } catch (err) {
      this.#report(new HboneConnectHookError(rawAuthority as string, errorMessage(err), err));
      reject(503);
      return;
    }
    if (decision.status !== 200) {
      reject(decision.status);
      return;
    }

    state = StreamState.Connecting;
    let upstream: Duplex;
    try {
      upstream = await decision.connect(early.signal);
    } catch (err) {
      this.#report(new HboneUpstreamConnectError(rawAuthority as string, errorMessage(err), err));
      reject(503);
      return;
    }
    const observe = decision.observe;
    if (stream.destroyed || stream.closed || early.signal.aborted) {
      state = StreamState.Closed;
      upstream.destroy();
      observe?.closed?.({ sent: 0, received: 0, error: new Error('the tunnel closed while connecting') });
      return;
    }

    early.stop();
    state = StreamState.Open;
    stream.respond({ ':status': 200 });
    this.counters.streamsOpened++;
    // Not awaited: the relay lasts as long as the tunnel, and a suspended #onStream would keep
    // every local of the CONNECT's handling (its headers, the decision) alive that long.
    void relay(stream, upstream, {
      counters: this.counters,
      ...(observe?.fromClient === undefined ? {} : { onTunnelData: observe.fromClient }),
      ...(observe?.toClient === undefined ? {} : { onSocketData: observe.toClient }),
    }).then(result => {
      state = StreamState.Closed;
      this.#relayed(result, observe);
    });
  }

  #relayed(result: RelayResult, observe: ConnectObserver | undefined): void {
    observe?.closed?.(result);
    this.counters.streamsClosed++;
    if (result.error !== undefined) {
      const e = result.error;
      this.#report(e instanceof HboneStreamError ? e : new HboneStreamError(`${e.message}${codeOf(e)}`, e));
    }
  }
}

/**
 * Cancels the CONNECT's hook and upstream dial when the client leaves first. Stopped once the
 * tunnel is open, after which nothing holds the controller: a long-lived tunnel keeps none, and its
 * close builds no abort reason.
 */
function watchEarlyClose(stream: ServerHttp2Stream): { readonly signal: AbortSignal; stop(): void } {
  const abort = new AbortController();
  const onClose = (): void => {
    abort.abort(new HboneStreamError('the client closed the tunnel before it was open'));
  };
  stream.on('close', onClose);
  return {
    signal: abort.signal,
    stop: () => {
      stream.off('close', onClose);
    },
  };
}

/** ` (CODE)` for a Node/OpenSSL error that carries a code, so reports keep it in their text. */
function codeOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? ` (${code})` : '';
}

function remoteOf(socket: TLSSocket): string {
  return `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
}

/** Regular headers as single strings (repeated values joined per RFC 9110, never concatenated blindly). */
function plainHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function createHboneServer(options: HboneServerOptions): HboneServer {
  return new HboneServer(options);
}
