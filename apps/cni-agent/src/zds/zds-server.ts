/**
 * The server side of ZDS (docs/protocols.md#zds), without sockets: per-ztunnel connection state,
 * the snapshot, routing of Adds and Dels, and Ack bookkeeping. The transport (`zds-listener.ts`)
 * feeds it `ZdsPeer`s and received records.
 *
 * Per connection (state dies with the connection):
 *   awaiting-hello --hello--> snapshot --SnapshotSent acked--> ready --close--> closed
 * - ztunnel's bare `ZdsHello` must arrive within 5 s.
 * - Then the snapshot goes out, one message at a time: `Add` (+ netns fd) for each enrolled pod
 *   whose netns is open, `Keep` for each enrolled pod whose netns could not be opened, then
 *   `SnapshotSent`.
 * - Afterwards `Add`s go to the newest connection only; `Del`s go to every connection.
 * - Exactly one message is in flight per connection; its Ack must come within 5 s.
 * - Anything unexpected (garbage, an unsolicited message, fds from ztunnel, a truncated record,
 *   a missing Ack) is a protocol error: that connection is closed, the others are untouched.
 *
 * The server never owns netns fds: it reads them from the `WorkloadSource` at the moment it sends,
 * so an fd closed by an un-enrolment is never sent.
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '@ambient-mesh/errors';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { ZdsMessageTooLargeError, ZdsProtocolError, ZdsTimeoutError } from '../errors.ts';
import type { Logger } from '@ambient-mesh/runtime';
import { systemTimers } from '@ambient-mesh/runtime';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';

/** Both sides read into a 1024-byte buffer: every message must stay below 1 KiB. */
export const ZDS_MAX_MESSAGE = 1024;
export const ZDS_ACK_TIMEOUT_MS = 5_000;
export const ZDS_HELLO_TIMEOUT_MS = 5_000;

/** One connected ztunnel, as the transport provides it. */
export interface ZdsPeer {
  /** Sends one record with `fds` as SCM_RIGHTS; throws when the socket is broken. */
  send(data: Uint8Array, fds: readonly number[]): void;
  /** Closes the socket; the transport then calls `ZdsConnectionHandle.closed()`. */
  close(): void;
}

/** One record received from a ztunnel. */
export interface ZdsInboundMessage {
  readonly data: Uint8Array;
  /** Received fds; the server closes them through `closeFd` (ztunnel must never send any). */
  readonly fds: readonly number[];
  readonly truncated: boolean;
}

/** What the server knows about an enrolled pod when it sends. */
export interface ZdsWorkload {
  readonly uid: string;
  readonly info: zds.WorkloadInfoInit;
  /** The open netns fd, or `null` when the netns could not be opened (sent as Keep in a snapshot). */
  readonly netnsFd: number | null;
}

/** The enrolled pods (the reconciler's registry). */
export interface WorkloadSource {
  uids(): readonly string[];
  lookup(uid: string): ZdsWorkload | undefined;
}

export type ZdsResult =
  | { readonly status: 'acked'; readonly connection: number }
  | { readonly status: 'nacked'; readonly connection: number; readonly error: string }
  | { readonly status: 'no-ztunnel' }
  | { readonly status: 'failed'; readonly connection: number; readonly error: string };

export interface SnapshotReport {
  readonly connection: number;
  /** Uids whose snapshot Add ztunnel acked (their proxies run). */
  readonly added: readonly string[];
  /** Uids sent as Keep. */
  readonly kept: readonly string[];
  /** Uids whose Add or Keep was NACKed, with the error. */
  readonly rejected: readonly { readonly uid: string; readonly error: string }[];
}

interface ServerEvents {
  connected: [number];
  disconnected: [number, string];
  snapshot: [SnapshotReport];
}

export interface ZdsServerOptions {
  readonly workloads: WorkloadSource;
  readonly logger: Logger;
  readonly closeFd: (fd: number) => void;
  readonly timers?: Timers;
  readonly ackTimeoutMs?: number;
  readonly helloTimeoutMs?: number;
}

/** Fed by the transport for one accepted connection. */
export interface ZdsConnectionHandle {
  readonly id: number;
  receive(message: ZdsInboundMessage): void;
  /** The socket closed (EOF, error, or after `peer.close()`). */
  closed(reason?: string): void;
}

type Outcome =
  { readonly acked: true } | { readonly acked: false; readonly error: string; readonly nack: boolean };

interface Outgoing {
  /** Builds the record at send time; `null` skips it (the workload went away). */
  readonly build: () => { readonly request: zds.WorkloadRequestInit; readonly fds: readonly number[] } | null;
  readonly done: (outcome: Outcome | null) => void;
}

type State = 'awaiting-hello' | 'snapshot' | 'ready' | 'closed';

class Connection {
  readonly id: number;
  state: State = 'awaiting-hello';
  readonly queue: Outgoing[] = [];
  inflight: { readonly item: Outgoing; readonly timer: TimerHandle } | undefined;
  helloTimer: TimerHandle | undefined;
  readonly peer: ZdsPeer;

  constructor(id: number, peer: ZdsPeer) {
    this.id = id;
    this.peer = peer;
  }
}

export class ZdsServer extends EventEmitter<ServerEvents> {
  readonly #options: ZdsServerOptions;
  readonly #timers: Timers;
  readonly #ackTimeoutMs: number;
  readonly #helloTimeoutMs: number;
  /** In accept order: the last one is the newest. */
  readonly #connections: Connection[] = [];
  #nextId = 1;

  constructor(options: ZdsServerOptions) {
    super();
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? ZDS_ACK_TIMEOUT_MS;
    this.#helloTimeoutMs = options.helloTimeoutMs ?? ZDS_HELLO_TIMEOUT_MS;
  }

  /** Connected ztunnels (any state). */
  get connectionCount(): number {
    return this.#connections.length;
  }

  /** Connections that finished their snapshot. */
  get readyCount(): number {
    return this.#connections.filter(c => c.state === 'ready').length;
  }

  /** Registers a new ztunnel connection. */
  accept(peer: ZdsPeer): ZdsConnectionHandle {
    const conn = new Connection(this.#nextId++, peer);
    this.#connections.push(conn);
    conn.helloTimer = this.#timers.setTimeout(() => {
      this.#fail(conn, new ZdsTimeoutError('its hello', this.#helloTimeoutMs));
    }, this.#helloTimeoutMs);
    this.#options.logger.info({ connection: conn.id }, 'ztunnel connected over ZDS');
    this.emit('connected', conn.id);
    return {
      id: conn.id,
      receive: message => {
        this.#receive(conn, message);
      },
      closed: reason => {
        this.#closed(conn, reason ?? 'connection closed');
      },
    };
  }

  /** Sends Add (+ the pod's netns fd) to the newest ztunnel and resolves with its answer. */
  add(uid: string): Promise<ZdsResult> {
    const conn = this.#connections.at(-1);
    if (conn === undefined) return Promise.resolve({ status: 'no-ztunnel' });
    return this.#request(conn, () => {
      const w = this.#options.workloads.lookup(uid);
      if (w?.netnsFd == null) return null;
      return { request: { add: { uid, workloadInfo: w.info } }, fds: [w.netnsFd] };
    });
  }

  /** Sends Del to every connected ztunnel. */
  del(uid: string): Promise<ZdsResult[]> {
    return Promise.all(
      this.#connections.map(conn => this.#request(conn, () => ({ request: { del: { uid } }, fds: [] }))),
    );
  }

  /** Closes every connection. */
  close(): void {
    for (const conn of [...this.#connections]) conn.peer.close();
    for (const conn of [...this.#connections]) this.#closed(conn, 'server closed');
  }

  #request(conn: Connection, build: Outgoing['build']): Promise<ZdsResult> {
    return new Promise<ZdsResult>(resolve => {
      this.#enqueue(conn, {
        build,
        done: outcome => {
          if (outcome === null) {
            resolve({ status: 'failed', connection: conn.id, error: 'the workload is no longer enrolled' });
          } else if (outcome.acked) resolve({ status: 'acked', connection: conn.id });
          else if (outcome.nack) resolve({ status: 'nacked', connection: conn.id, error: outcome.error });
          else resolve({ status: 'failed', connection: conn.id, error: outcome.error });
        },
      });
    });
  }

  #enqueue(conn: Connection, item: Outgoing, front = false): void {
    if (conn.state === 'closed') {
      item.done({ acked: false, nack: false, error: 'ztunnel connection closed' });
      return;
    }
    if (front) conn.queue.unshift(item);
    else conn.queue.push(item);
    this.#pump(conn);
  }

  /** Sends the next queued message when nothing is in flight and the snapshot has started. */
  #pump(conn: Connection): void {
    for (let guard = 0; guard < 100_000; guard++) {
      if (conn.state === 'closed' || conn.state === 'awaiting-hello' || conn.inflight !== undefined) return;
      const item = conn.queue.shift();
      if (item === undefined) return;
      const built = item.build();
      if (built === null) {
        item.done(null);
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = WorkloadRequestCodec.encode(built.request);
        if (bytes.length >= ZDS_MAX_MESSAGE) throw new ZdsMessageTooLargeError(bytes.length, ZDS_MAX_MESSAGE);
      } catch (err) {
        this.#options.logger.error({ connection: conn.id, err: errorMessage(err) }, 'ZDS message not sent');
        item.done({ acked: false, nack: false, error: errorMessage(err) });
        continue;
      }
      try {
        conn.peer.send(bytes, built.fds);
      } catch (err) {
        item.done({ acked: false, nack: false, error: `send failed: ${errorMessage(err)}` });
        this.#fail(conn, new ZdsProtocolError('send failed', err));
        return;
      }
      const timer = this.#timers.setTimeout(() => {
        this.#fail(conn, new ZdsTimeoutError('an Ack', this.#ackTimeoutMs));
      }, this.#ackTimeoutMs);
      conn.inflight = { item, timer };
    }
  }

  #receive(conn: Connection, message: ZdsInboundMessage): void {
    for (const fd of message.fds) {
      try {
        this.#options.closeFd(fd);
      } catch {
        // Already closed: nothing to release.
      }
    }
    if (conn.state === 'closed') return;
    if (message.truncated) {
      this.#fail(conn, new ZdsProtocolError(`a record longer than ${ZDS_MAX_MESSAGE} bytes`));
      return;
    }
    if (message.fds.length > 0) {
      this.#fail(conn, new ZdsProtocolError('ztunnel sent file descriptors'));
      return;
    }
    if (conn.state === 'awaiting-hello') {
      this.#onHello(conn, message.data);
      return;
    }
    const inflight = conn.inflight;
    if (inflight === undefined) {
      this.#fail(conn, new ZdsProtocolError('an unsolicited message'));
      return;
    }
    let response: zds.WorkloadResponse;
    try {
      response = WorkloadResponseCodec.decode(message.data);
    } catch (err) {
      this.#fail(conn, new ZdsProtocolError('a WorkloadResponse that does not decode', err));
      return;
    }
    if (response.ack === undefined) {
      this.#fail(conn, new ZdsProtocolError('a WorkloadResponse without an Ack'));
      return;
    }
    this.#timers.clearTimeout(inflight.timer);
    conn.inflight = undefined;
    const error = response.ack.error;
    inflight.item.done(error === '' ? { acked: true } : { acked: false, nack: true, error });
    this.#pump(conn);
  }

  #onHello(conn: Connection, data: Uint8Array): void {
    let hello: zds.ZdsHello;
    try {
      hello = ZdsHelloCodec.decode(data);
    } catch (err) {
      this.#fail(conn, new ZdsProtocolError('a hello that does not decode', err));
      return;
    }
    if (hello.version !== zds.Version.V1) {
      this.#fail(conn, new ZdsProtocolError(`hello with version ${hello.version}, expected V1`));
      return;
    }
    if (conn.helloTimer !== undefined) this.#timers.clearTimeout(conn.helloTimer);
    conn.helloTimer = undefined;
    conn.state = 'snapshot';
    this.#options.logger.info(
      { connection: conn.id, version: hello.version },
      'ztunnel hello; sending snapshot',
    );
    this.#queueSnapshot(conn);
  }

  #queueSnapshot(conn: Connection): void {
    const added: string[] = [];
    const kept: string[] = [];
    const rejected: { uid: string; error: string }[] = [];
    const items: Outgoing[] = [];
    for (const uid of this.#options.workloads.uids()) {
      let sentAsKeep = false;
      items.push({
        build: () => {
          const w = this.#options.workloads.lookup(uid);
          if (w === undefined) return null;
          if (w.netnsFd === null) {
            sentAsKeep = true;
            return { request: { keep: { uid } }, fds: [] };
          }
          return { request: { add: { uid, workloadInfo: w.info } }, fds: [w.netnsFd] };
        },
        done: outcome => {
          if (outcome === null) return;
          if (outcome.acked) (sentAsKeep ? kept : added).push(uid);
          else rejected.push({ uid, error: outcome.error });
        },
      });
    }
    items.push({
      build: () => ({ request: { snapshotSent: {} }, fds: [] }),
      done: outcome => {
        if (conn.state === 'closed' || outcome === null) return;
        if (!outcome.acked) {
          this.#fail(conn, new ZdsProtocolError(`SnapshotSent was not acked: ${outcome.error}`));
          return;
        }
        conn.state = 'ready';
        this.#options.logger.info(
          { connection: conn.id, added: added.length, kept: kept.length, rejected: rejected.length },
          'ZDS snapshot acked',
        );
        this.emit('snapshot', { connection: conn.id, added, kept, rejected });
      },
    });
    // The snapshot goes before anything queued while waiting for the hello.
    conn.queue.unshift(...items);
    this.#pump(conn);
  }

  #fail(conn: Connection, err: Error): void {
    if (conn.state === 'closed') return;
    this.#options.logger.warn({ connection: conn.id, err: err.message }, 'closing ztunnel ZDS connection');
    this.#closed(conn, err.message);
    conn.peer.close();
  }

  #closed(conn: Connection, reason: string): void {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    if (conn.helloTimer !== undefined) this.#timers.clearTimeout(conn.helloTimer);
    const index = this.#connections.indexOf(conn);
    if (index >= 0) this.#connections.splice(index, 1);
    const pending = conn.inflight === undefined ? [] : [conn.inflight.item];
    if (conn.inflight !== undefined) this.#timers.clearTimeout(conn.inflight.timer);
    conn.inflight = undefined;
    pending.push(...conn.queue.splice(0));
    for (const item of pending)
      item.done({ acked: false, nack: false, error: `ztunnel connection closed: ${reason}` });
    this.#options.logger.info({ connection: conn.id, reason }, 'ztunnel disconnected from ZDS');
    this.emit('disconnected', conn.id, reason);
  }
}
