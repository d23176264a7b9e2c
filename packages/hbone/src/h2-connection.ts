/**
 * One outbound HBONE connection: TCP from an injected socket factory, TLS 1.3 with our identity
 * and a URI-SAN check of the peer, then an HTTP/2 session with HBONE's settings. The pool owns
 * these; `openTunnel` sends one CONNECT and resolves once the server answered 200.
 */
import { connect as h2Connect, constants as h2 } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders, Settings } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { errorMessage } from '@ambient-mesh/errors';
import type { HboneCounters } from './counters.ts';
import {
  HboneConnectFailedError,
  HboneConnectRejectedError,
  HboneConnectTimeoutError,
  HbonePeerIdentityError,
  HboneSessionClosedError,
  HboneStreamError,
  HboneStreamRefusedError,
} from './errors.ts';
import { presentsExpectedIdentity, secureContextFor, uriSans } from './identity.ts';
import type { HboneIdentity } from './identity.ts';
import { ALPN_PROTOCOLS, CLIENT_SESSION_OPTIONS, tuneSession } from './settings.ts';
import type { Timers } from './timers.ts';
import type { PoolConnection } from './tunnel-pool.ts';

export interface SocketFactoryRequest {
  readonly host: string;
  readonly port: number;
  /** The pool key's source IP ('' when unspecified); a factory may bind to it. */
  readonly sourceIp: string;
}

/**
 * Creates the TCP socket towards a next hop (connecting or connected). ztunnel's factory
 * creates it inside the source pod's network namespace, with its socket mark.
 */
export type SocketFactory = (request: SocketFactoryRequest) => Socket;

export const defaultSocketFactory: SocketFactory = ({ host, port }) =>
  netConnect({ host, port, noDelay: true });

export interface H2ConnectionParams {
  readonly nextHop: string;
  readonly sourceIp: string;
  readonly identity: HboneIdentity;
  readonly expectedIdentities: readonly string[];
  readonly socketFactory: SocketFactory;
  readonly timeoutMs: number;
  readonly timers: Timers;
  readonly counters: HboneCounters;
}

function splitHostPort(nextHop: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(nextHop) ?? /^([^:[\]]+):(\d{1,5})$/.exec(nextHop);
  if (m === null) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

export class H2Connection implements PoolConnection {
  readonly nextHop: string;
  readonly session: ClientHttp2Session;
  readonly #counters: HboneCounters;
  readonly #timers: Timers;
  readonly #timeoutMs: number;
  readonly #closedListeners: ((error?: Error) => void)[] = [];
  #peerLimit: number | undefined;
  #closed = false;
  #error: Error | undefined;

  private constructor(
    nextHop: string,
    session: ClientHttp2Session,
    params: Pick<H2ConnectionParams, 'counters' | 'timers' | 'timeoutMs'>,
  ) {
    this.nextHop = nextHop;
    this.session = session;
    this.#counters = params.counters;
    this.#timers = params.timers;
    this.#timeoutMs = params.timeoutMs;
    const limit = session.remoteSettings.maxConcurrentStreams;
    this.#peerLimit = limit;
    session.on('remoteSettings', (settings: Settings) => {
      this.#peerLimit = settings.maxConcurrentStreams;
    });
    session.on('error', (err: Error) => {
      // Callers (the pool's onConnectionError) see typed errors only; the original is the cause.
      this.#error = new HboneSessionClosedError(nextHop, err.message, err);
      this.#counters.connectionErrors++;
    });
    session.on('goaway', (code: number) => {
      this.#markClosed(
        code === h2.NGHTTP2_NO_ERROR
          ? undefined
          : new HboneSessionClosedError(nextHop, `GOAWAY with code ${code}`),
      );
    });
    session.once('close', () => {
      this.#counters.connectionsClosed++;
      this.#markClosed(this.#error);
    });
  }

  /** Establishes a connection: resolves once the server's SETTINGS arrived (it accepted our certificate). */
  static open(params: H2ConnectionParams): Promise<H2Connection> {
    const where = splitHostPort(params.nextHop);
    if (where === undefined) {
      return Promise.reject(
        new HboneConnectFailedError(params.nextHop, 'next hop must be ip:port or [ipv6]:port'),
      );
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      let tcp: Socket | undefined;
      let tlsSocket: TLSSocket | undefined;
      let session: ClientHttp2Session | undefined;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        params.timers.clearTimeout(timer);
        params.counters.connectionErrors++;
        if (session !== undefined) session.destroy();
        tlsSocket?.destroy();
        tcp?.destroy();
        reject(error);
      };
      const timer = params.timers.setTimeout(() => {
        fail(new HboneConnectTimeoutError(`HBONE connection to ${params.nextHop}`, params.timeoutMs));
      }, params.timeoutMs);
      try {
        tcp = params.socketFactory({ host: where.host, port: where.port, sourceIp: params.sourceIp });
      } catch (err) {
        params.timers.clearTimeout(timer);
        settled = true;
        reject(
          new HboneConnectFailedError(params.nextHop, `socket factory failed: ${errorMessage(err)}`, err),
        );
        return;
      }
      let identityError: HbonePeerIdentityError | undefined;
      try {
        tlsSocket = tlsConnect({
          socket: tcp,
          secureContext: secureContextFor(params.identity),
          ALPNProtocols: [...ALPN_PROTOCOLS],
          rejectUnauthorized: true,
          // No SNI (ztunnel disables it); identity is checked on the URI SAN, not a hostname.
          checkServerIdentity: (_host: string, cert: PeerCertificate) => {
            if (presentsExpectedIdentity(cert.raw, params.expectedIdentities)) return undefined;
            identityError = new HbonePeerIdentityError(params.expectedIdentities, uriSans(cert.raw));
            return identityError;
          },
        });
      } catch (err) {
        fail(new HboneConnectFailedError(params.nextHop, errorMessage(err), err));
        return;
      }
      tlsSocket.on('error', (err: Error) => {
        fail(identityError ?? new HboneConnectFailedError(params.nextHop, `TLS: ${err.message}`, err));
      });
      tlsSocket.once('secureConnect', () => {
        if (settled) return;
        if (tlsSocket.alpnProtocol !== 'h2') {
          fail(new HboneConnectFailedError(params.nextHop, 'the peer did not negotiate ALPN h2'));
          return;
        }
        const tls = tlsSocket;
        session = h2Connect(`https://${params.nextHop}`, {
          ...CLIENT_SESSION_OPTIONS,
          createConnection: () => tls,
        });
        const s = session;
        const onSetupError = (err: Error): void => {
          fail(new HboneConnectFailedError(params.nextHop, `HTTP/2: ${err.message}`, err));
        };
        const onSetupClose = (): void => {
          fail(
            new HboneConnectFailedError(params.nextHop, 'closed during setup (was our certificate refused?)'),
          );
        };
        s.on('error', onSetupError);
        s.once('close', onSetupClose);
        s.once('remoteSettings', () => {
          if (settled) return;
          settled = true;
          params.timers.clearTimeout(timer);
          s.off('error', onSetupError);
          s.off('close', onSetupClose);
          tuneSession(s);
          params.counters.connectionsOpened++;
          resolve(new H2Connection(params.nextHop, s, params));
        });
      });
    });
  }

  peerMaxConcurrentStreams(): number | undefined {
    return this.#peerLimit;
  }

  ping(): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        const sent = this.session.ping(err => {
          if (err === null) resolve();
          else reject(err);
        });
        if (!sent) reject(new HboneSessionClosedError(this.nextHop, 'too many outstanding PINGs'));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(errorMessage(err)));
      }
    });
  }

  close(): void {
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }

  destroy(error?: Error): void {
    if (error !== undefined) this.#error = error;
    this.session.destroy();
  }

  onClosed(listener: (error?: Error) => void): void {
    if (this.#closed) listener(this.#error);
    else this.#closedListeners.push(listener);
  }

  /**
   * Sends a CONNECT for `authority`; resolves with the stream once the server answered 200.
   * Any other status rejects with HboneConnectRejectedError, after ending our side cleanly.
   */
  openTunnel(authority: string, headers: Readonly<Record<string, string>>): Promise<ClientHttp2Stream> {
    return new Promise((resolve, reject) => {
      if (this.#closed || this.session.closed || this.session.destroyed) {
        // Nothing was sent: the caller may send the CONNECT again on another connection.
        reject(new HboneStreamRefusedError(authority, this.nextHop));
        return;
      }
      let stream: ClientHttp2Stream;
      try {
        const outgoing: OutgoingHttpHeaders = { ...headers, ':method': 'CONNECT', ':authority': authority };
        stream = this.session.request(outgoing, { endStream: false });
      } catch (err) {
        reject(new HboneStreamError(`cannot send CONNECT ${authority}: ${errorMessage(err)}`, err));
        return;
      }
      let settled = false;
      const done = (error?: Error): void => {
        if (settled) return;
        settled = true;
        this.#timers.clearTimeout(timer);
        stream.off('response', onResponse);
        stream.off('error', onError);
        stream.off('close', onClose);
        if (error === undefined) {
          resolve(stream);
          return;
        }
        reject(error);
      };
      const onResponse = (responseHeaders: Record<string, unknown>): void => {
        const status = Number(responseHeaders[':status']);
        if (status === 200) {
          done();
          return;
        }
        this.#counters.streamsRejected++;
        // Half-close and drain: a reset here would count against the server's rapid-reset budget.
        stream.on('error', ignore);
        stream.end();
        stream.resume();
        done(new HboneConnectRejectedError(authority, status));
      };
      // REFUSED_STREAM, sent by the peer or applied by nghttp2 to streams above a GOAWAY's last
      // stream id, means the peer never processed the CONNECT.
      const refused = (): boolean => stream.rstCode === h2.NGHTTP2_REFUSED_STREAM;
      const onError = (err: Error): void => {
        done(
          refused()
            ? new HboneStreamRefusedError(authority, this.nextHop)
            : new HboneStreamError(`CONNECT ${authority} failed: ${err.message}`, err),
        );
      };
      const onClose = (): void => {
        if (refused()) {
          done(new HboneStreamRefusedError(authority, this.nextHop));
          return;
        }
        done(
          this.#error === undefined
            ? new HboneStreamError(
                `CONNECT ${authority} was reset before a response (code ${stream.rstCode})`,
              )
            : new HboneSessionClosedError(this.nextHop, this.#error.message, this.#error),
        );
      };
      const timer = this.#timers.setTimeout(() => {
        stream.on('error', ignore);
        stream.close(h2.NGHTTP2_CANCEL);
        done(new HboneConnectTimeoutError(`CONNECT ${authority}`, this.#timeoutMs));
      }, this.#timeoutMs);
      stream.once('response', onResponse);
      stream.once('error', onError);
      stream.once('close', onClose);
    });
  }

  #markClosed(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of [...this.#closedListeners]) l(error);
    this.#closedListeners.length = 0;
  }
}

function ignore(): void {
  // Errors of a stream we are abandoning carry no information for the caller.
}
