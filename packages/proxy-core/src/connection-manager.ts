/**
 * The connection manager of one proxy (upstream ztunnel's `connection_manager.rs` plus the
 * `ConnectionResult` bookkeeping): the single owner of every connection the proxy carries.
 *
 * - One completion path: a connection is refused (`refuse`), relayed (`relay`) or adopted after
 *   another component took over its bytes (`adopt`, e.g. the HBONE server relaying a tunnel); in
 *   every case the sink hears `completed` exactly once, from `#complete`.
 * - Tracking: relayed and adopted connections stay in `#live` until they end; those carrying a
 *   policy context are re-checked by `reevaluate()` and closed when now denied.
 * - Pending: a connection accepted before the proxy can serve it waits through `pending()`,
 *   which `drain()` aborts.
 * - Drain: stop waiting, let live connections finish until a deadline, then close the rest.
 *
 * It knows neither the app's state nor its metrics: policy, reporting and time are injected.
 */
import type { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import { relay } from '@ambient-mesh/hbone';
import type { ConnectionAddresses, ConnectionSink, ResponseFlag } from './connection-sink.ts';
import { ClientGoneError, ProxyDrainingError } from './errors.ts';
import { policyChangeClosure } from './policy-check.ts';
import type { PolicyCheck, PolicyVerdict } from './policy-check.ts';

export interface ConnectionManagerOptions<C, P> {
  readonly sink: ConnectionSink<C>;
  /** Authorizes policy contexts; without it every connection is allowed. */
  readonly authorize?: PolicyCheck<P>;
  /** Milliseconds for durations; default `Date.now`. */
  readonly now?: () => number;
  /**
   * Closes a relayed or adopted connection after this long without a byte either way (measured
   * on its client socket, or the adopted upstream socket). 0 or unset: never.
   */
  readonly idleTimeoutMs?: number;
}

/** The error an idle connection is reported with. */
export function idleClosure(idleTimeoutMs: number): string {
  return `idle for ${idleTimeoutMs} ms: closed by the connection idle timeout`;
}

/** A connection whose streams are both up. */
export interface Established<P> {
  /** When the proxy accepted the client (`now()` at accept), for the duration. */
  readonly started: number;
  /** Set for connections subject to policy: re-checked by `reevaluate()`. */
  readonly policy?: P | undefined;
}

export interface RelayStreams<P> extends Established<P> {
  /** The client side (the accepted socket, or an HBONE stream). */
  readonly client: Duplex;
  /** The server side (a dialled socket, or an outbound HBONE tunnel). */
  readonly upstream: Duplex;
}

export interface AdoptedUpstream<P> extends Established<P> {
  /** The dialled upstream socket whose bytes another component relays; it ends the connection. */
  readonly upstream: Socket;
}

export interface DrainOptions {
  /** Settles when live connections have had long enough; the rest are then closed. */
  readonly deadline: Promise<unknown>;
  /** The error logged for each connection closed at the deadline. */
  readonly reason: string;
  /** Other work to wait for alongside the connections (e.g. an HBONE server's GOAWAY). */
  readonly alsoWaitFor?: readonly Promise<unknown>[];
}

export type DrainOutcome = 'drained' | 'timeout';

interface Live<C, P> {
  readonly connection: C;
  readonly started: number;
  readonly policy: P | undefined;
  /** The reason given by `close()`, which the completion reports as the error. */
  closedBy: string | undefined;
  completed: boolean;
  readonly destroy: () => void;
}

const ALLOWED: PolicyVerdict = { allowed: true, reason: 'no-policy-check' };

export class ConnectionManager<C, P = never> {
  readonly #sink: ConnectionSink<C>;
  readonly #authorize: PolicyCheck<P> | undefined;
  readonly #now: () => number;
  readonly #idleTimeoutMs: number;
  readonly #live = new Set<Live<C, P>>();
  readonly #pending = new Set<AbortController>();
  #idle: (() => void)[] = [];
  #draining = false;

  constructor(options: ConnectionManagerOptions<C, P>) {
    this.#sink = options.sink;
    this.#authorize = options.authorize;
    this.#now = options.now ?? Date.now;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
  }

  /** Connections currently relayed or adopted. */
  get size(): number {
    return this.#live.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  now(): number {
    return this.#now();
  }

  /** The injected policy check (allowed when none was given). */
  authorize(context: P): PolicyVerdict {
    return this.#authorize === undefined ? ALLOWED : this.#authorize(context);
  }

  /** A connection given up before it could be described. */
  failed(addresses: ConnectionAddresses, error: string): void {
    this.#sink.failed(addresses, error);
  }

  /**
   * Waits on behalf of an accepted socket that cannot be served yet (e.g. its workload is not
   * known). When the wait fails, the client leaves, or the proxy drains, the failure is logged
   * with `addresses`, the socket destroyed, and the result is undefined.
   */
  async pending<T>(
    socket: Duplex,
    addresses: ConnectionAddresses,
    wait: (signal: AbortSignal) => Promise<T>,
  ): Promise<T | undefined> {
    const controller = new AbortController();
    const onClose = (): void => {
      controller.abort(new ClientGoneError());
    };
    socket.once('close', onClose);
    this.#pending.add(controller);
    try {
      this.#refuseWhenDraining();
      const value = await wait(controller.signal);
      // The drain may have begun during the wait.
      this.#refuseWhenDraining();
      return value;
    } catch (err) {
      this.#sink.failed(addresses, errorMessage(err));
      socket.destroy();
      return undefined;
    } finally {
      socket.off('close', onClose);
      this.#pending.delete(controller);
    }
  }

  /** A connection refused before it was established: reported once, with no bytes. */
  refuse(connection: C, started: number, flag: ResponseFlag, error: string): void {
    this.#complete(
      { connection, started, policy: undefined, closedBy: undefined, completed: false, destroy: noop },
      0,
      0,
      error,
      flag,
    );
  }

  /**
   * Relays `client` ⇄ `upstream` until both directions ended or one failed, tracked meanwhile;
   * resolves once the connection is reported. Both streams must allow half-open.
   */
  relay(connection: C, streams: RelayStreams<P>): Promise<void> {
    const { client, upstream } = streams;
    const live = this.#open(connection, streams, () => {
      upstream.destroy();
      client.destroy();
    });
    this.#watchIdle(live, client);
    // `sent` went into the upstream (from the client), `received` came from it (to the client).
    // A promise chain, not an await: nothing of the caller's stays suspended while it relays.
    return relay(upstream, client).then(({ sent, received, error }) => {
      this.#complete(live, sent, received, error === undefined ? undefined : errorMessage(error));
    });
  }

  /**
   * Tracks an upstream socket whose bytes another component relays; the connection ends (and is
   * reported) when the socket closes.
   */
  adopt(connection: C, adopted: AdoptedUpstream<P>): void {
    const { upstream } = adopted;
    const live = this.#open(connection, adopted, () => {
      upstream.destroy();
    });
    this.#watchIdle(live, upstream);
    // 'close' comes once: `on` spares the `once` wrapper a long-lived connection would keep.
    upstream.on('close', () => {
      this.#complete(live, upstream.bytesWritten, upstream.bytesRead, undefined);
    });
  }

  /** Re-checks every tracked connection with a policy context; closes the denied ones. */
  reevaluate(): number {
    let closed = 0;
    for (const live of [...this.#live]) {
      if (live.policy === undefined) continue;
      const verdict = this.authorize(live.policy);
      if (verdict.allowed) continue;
      this.#close(live, policyChangeClosure(verdict));
      closed++;
    }
    return closed;
  }

  /** Closes every tracked connection, reporting `reason` as its error. */
  closeAll(reason: string): void {
    for (const live of [...this.#live]) this.#close(live, reason);
  }

  /**
   * Aborts pending waits, then lets tracked connections (including ones adopted meanwhile) finish
   * until `deadline`; what is still open then is closed with `reason`. Later `pending()` calls
   * fail at once.
   */
  async drain(options: DrainOptions): Promise<DrainOutcome> {
    this.#draining = true;
    for (const controller of [...this.#pending]) controller.abort(new ProxyDrainingError());
    const finished = Promise.all([this.#whenIdle(), ...(options.alsoWaitFor ?? [])]).then(
      () => 'drained' as const,
    );
    const outcome = await Promise.race([finished, options.deadline.then(() => 'timeout' as const)]);
    if (outcome === 'timeout') this.closeAll(options.reason);
    return outcome;
  }

  #refuseWhenDraining(): void {
    if (this.#draining) throw new ProxyDrainingError();
  }

  #open(connection: C, established: Established<P>, destroy: () => void): Live<C, P> {
    const live: Live<C, P> = {
      connection,
      started: established.started,
      policy: established.policy,
      closedBy: undefined,
      completed: false,
      destroy,
    };
    this.#live.add(live);
    this.#sink.opened(connection);
    return live;
  }

  /**
   * A socket's inactivity timer sees bytes both ways, so one socket of the connection is enough.
   * (An HBONE stream as the client has no such timer; its upstream is then watched by `adopt`.)
   */
  #watchIdle(live: Live<C, P>, stream: Duplex): void {
    if (this.#idleTimeoutMs <= 0 || !(stream instanceof Socket)) return;
    const ms = this.#idleTimeoutMs;
    stream.setTimeout(ms, () => {
      if (!live.completed) this.#close(live, idleClosure(ms));
    });
  }

  #close(live: Live<C, P>, reason: string): void {
    live.closedBy ??= reason;
    live.destroy();
  }

  /** The one completion path: untrack, then report exactly once. */
  #complete(
    live: Live<C, P>,
    fromClient: number,
    toClient: number,
    error: string | undefined,
    refused?: ResponseFlag,
  ): void {
    if (live.completed) return;
    live.completed = true;
    this.#live.delete(live);
    this.#sink.completed(live.connection, {
      fromClient,
      toClient,
      durationMs: this.#now() - live.started,
      error: live.closedBy ?? error,
      refused,
    });
    if (this.#live.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #whenIdle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise(resolve => this.#idle.push(resolve));
  }
}

function noop(): void {
  // A refused connection has nothing left to destroy.
}
