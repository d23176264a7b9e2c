/**
 * The inbound HBONE side of a proxy (upstream ztunnel's `inbound.rs`): sockets accepted on 15008
 * are served by an `HboneServer` made once the proxy's identity is known, and each CONNECT goes
 * through one decision before the upstream is dialled:
 *
 *   classify (the app describes the destination; unknown → 503)
 *   → authority is ip:port (else 400) and equals the arrival address (else 400 `IPMismatch`,
 *     unless the destination accepts any, e.g. an application tunnel or a waypoint)
 *   → not a port of the proxy itself (503 `SelfCall`)
 *   → policy (401, counted `DENY`)
 *   → 200 with a dial (a failed dial is counted `CONNECT`), the upstream adopted by the
 *     connection manager, which reports it when it closes.
 *
 * What is app-specific comes in through narrow capabilities: `classify` (from the app's state),
 * `secureContext` (its certificates), `dial` (its sockets) and the manager's sink and policy check.
 */
import type { Server, Socket } from 'node:net';
import { Server as NetServer } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import { formatSocketAddress, HboneServer } from '@ambient-mesh/hbone';
import type { ConnectDecision, ConnectRequest, HboneIdentity, HboneServerOptions } from '@ambient-mesh/hbone';
import type { ConnectionManager } from './connection-manager.ts';
import type { ConnectionAddresses } from './connection-sink.ts';
import { ResponseFlag } from './connection-sink.ts';
import { ProxyDrainingError } from './errors.ts';
import { policyRejection } from './policy-check.ts';

/** The proxy's serving identity: its certificate, awaited and then kept up to date. */
export interface SecureContextProvider {
  /** The identity to serve with; waits (bounded by the provider) and rejects with why not. */
  identity(signal: AbortSignal): Promise<HboneIdentity>;
  /**
   * Tells about each new certificate of that identity (a renewal, or a new one after the
   * previous expired); returns the unsubscribe function. The server subscribes before it asks
   * for `identity()`, so a certificate that arrives while it waits is not missed.
   */
  onRenewed(listener: (identity: HboneIdentity) => void): () => void;
}

/** Where a CONNECT is going: its authority. */
export interface InboundTarget {
  readonly ip: string;
  readonly port: number;
}

/** The app's answer about a CONNECT's destination. */
export type InboundClassification<C, P> =
  | {
      readonly kind: 'unknown';
      /** Logged with the connection's addresses; the CONNECT is answered 503. */
      readonly error: string;
    }
  | {
      readonly kind: 'known';
      /** The app's description for the sink (labels, access-log fields). */
      readonly connection: C;
      /** The policy context of the connection to `target`. */
      readonly policy: (target: InboundTarget) => P;
      /** Accept an authority IP other than the arrival address (application tunnels, waypoints). */
      readonly anyAuthorityIp?: boolean;
    };

export interface DialRequest extends InboundTarget {
  /** The client's address: an app that keeps the source IP dials from it. */
  readonly sourceIp: string;
}

export interface InboundHboneOptions<C, P> {
  readonly connections: ConnectionManager<C, P>;
  readonly secureContext: SecureContextProvider;
  readonly classify: (request: ConnectRequest) => InboundClassification<C, P>;
  /** Dials the destination; rejects (and cleans up) on failure, timeout or abort. */
  readonly dial: (request: DialRequest, signal: AbortSignal) => Promise<Socket>;
  /** The proxy's own ports: a CONNECT to one is a self-call. */
  readonly proxyPorts: ReadonlySet<number>;
  /** Names the proxy in access-log errors (`self-call to <name> port 15001`); default `proxy`. */
  readonly proxyName?: string;
  /** Told about rejected handshakes and failed sessions. */
  readonly onError?: (error: Error) => void;
  /** Passed to the `HboneServer` (counters, keepalive, timers). */
  readonly server?: Partial<Omit<HboneServerOptions, 'identity' | 'listener' | 'onConnect' | 'onError'>>;
}

function socketAddress(socket: Socket, side: 'remote' | 'local'): string {
  const ip = side === 'remote' ? socket.remoteAddress : socket.localAddress;
  const port = side === 'remote' ? socket.remotePort : socket.localPort;
  return ip === undefined || port === undefined ? 'unknown' : formatSocketAddress(ip, port);
}

function requestAddresses(request: ConnectRequest): ConnectionAddresses {
  return {
    src: formatSocketAddress(request.remoteAddress.address, request.remoteAddress.port),
    dst: formatSocketAddress(request.localAddress.address, request.localAddress.port),
    direction: 'inbound',
  };
}

export class InboundHbone<C, P> {
  readonly #o: InboundHboneOptions<C, P>;
  /** Never listens: accepted sockets reach the HBONE server through it. */
  readonly #feed: Server = new NetServer();
  #server: HboneServer | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(options: InboundHboneOptions<C, P>) {
    this.#o = options;
  }

  /** Serves an accepted socket; the first one waits (through the manager) for the identity. */
  async accept(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    if (this.#server === undefined) {
      const addresses: ConnectionAddresses = {
        src: socketAddress(socket, 'remote'),
        dst: socketAddress(socket, 'local'),
        direction: 'inbound',
      };
      const server = await this.#o.connections.pending(socket, addresses, signal => this.#create(signal));
      if (server === undefined || socket.destroyed) return;
    }
    // A closed server no longer takes sockets from the feed.
    if (this.#closed) socket.destroy();
    else this.#feed.emit('connection', socket);
  }

  /** GOAWAY to every session; resolves when they all closed. */
  close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    return this.#server?.close() ?? Promise.resolve();
  }

  destroy(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#server?.destroy();
  }

  /** The decision for one CONNECT (see the top of this file). */
  decide(request: ConnectRequest): ConnectDecision {
    const { connections } = this.#o;
    const started = connections.now();
    const classified = this.#o.classify(request);
    if (classified.kind === 'unknown') {
      connections.failed(requestAddresses(request), classified.error);
      return { status: 503, reason: 'unknown local workload' };
    }
    const { connection } = classified;
    const authority = request.authority;
    if (authority.kind !== 'ip') {
      connections.failed(
        requestAddresses(request),
        `hostname authority ${request.rawAuthority} is not supported`,
      );
      return { status: 400, reason: 'hostname authorities are not supported' };
    }
    if (authority.ip !== request.localAddress.address && classified.anyAuthorityIp !== true) {
      connections.failed(
        requestAddresses(request),
        `ip mismatch: ${authority.ip} != ${request.localAddress.address}`,
      );
      return { status: 400, reason: 'IPMismatch' };
    }
    if (this.#o.proxyPorts.has(authority.port)) {
      connections.failed(
        requestAddresses(request),
        `self-call to ${this.#o.proxyName ?? 'proxy'} port ${authority.port}`,
      );
      return { status: 503, reason: 'SelfCall' };
    }
    const target: InboundTarget = { ip: authority.ip, port: authority.port };
    const policy = classified.policy(target);
    const verdict = connections.authorize(policy);
    if (!verdict.allowed) {
      connections.refuse(connection, started, ResponseFlag.denied, policyRejection(verdict));
      return { status: 401, reason: 'policy rejection' };
    }
    return {
      status: 200,
      connect: async signal => {
        let upstream: Socket;
        try {
          upstream = await this.#o.dial({ ...target, sourceIp: request.remoteAddress.address }, signal);
        } catch (err) {
          connections.refuse(connection, started, ResponseFlag.connectFailed, errorMessage(err));
          throw err;
        }
        // The HBONE server relays the tunnel; the manager tracks and reports it by its upstream.
        connections.adopt(connection, { upstream, started, policy });
        return upstream;
      },
    };
  }

  /**
   * Makes the server with the first identity; later sockets (and concurrent waits) reuse it.
   * Renewals are followed from before the first identity is asked for: one that lands between
   * the answer and the server's creation would otherwise leave the server on the previous
   * certificate until the next renewal, which can be when that certificate expires.
   */
  async #create(signal: AbortSignal): Promise<HboneServer> {
    if (this.#server !== undefined) return this.#server;
    let renewed: HboneIdentity | undefined;
    const unsubscribe = this.#o.secureContext.onRenewed(identity => {
      renewed = identity;
      if (this.#server !== undefined && this.#unsubscribe === unsubscribe) this.#update(identity);
    });
    let identity: HboneIdentity;
    try {
      identity = await this.#o.secureContext.identity(signal);
    } catch (err) {
      unsubscribe();
      throw err;
    }
    // A concurrent wait made the server first, or the proxy closed meanwhile.
    const made = this.#made();
    if (made !== undefined || this.#closed) {
      unsubscribe();
      if (made !== undefined) return made;
      throw new ProxyDrainingError();
    }
    this.#server = new HboneServer({
      ...this.#o.server,
      identity,
      listener: this.#feed,
      onConnect: request => this.decide(request),
      onError: err => this.#o.onError?.(err),
    });
    this.#unsubscribe = unsubscribe;
    // Events come in order, so the last one seen is at least as new as `identity`.
    if (renewed !== undefined && renewed !== identity) this.#update(renewed);
    return this.#server;
  }

  /** The server if made (read after an await: a concurrent wait may have made it). */
  #made(): HboneServer | undefined {
    return this.#server;
  }

  #update(identity: HboneIdentity): void {
    try {
      this.#server?.updateIdentity(identity);
    } catch (err) {
      // Keep serving the current certificate; the next renewal tries again.
      this.#o.onError?.(err instanceof Error ? err : new Error(errorMessage(err)));
    }
  }
}
