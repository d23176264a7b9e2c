/**
 * The ZDS client (docs/protocols.md#zds): connects to the CNI agent's SOCK_SEQPACKET socket, sends the bare hello
 * (`08 01`), then answers every WorkloadRequest with exactly one WorkloadResponse, in order.
 *
 * The transport is injected (`ZdsConnector`); the default one uses `@ambient-mesh/netns`. Message
 * decoding, fd checks and the 1 KiB limit live here; the semantics live in `WorkloadStateManager`.
 * A read/decode failure or protocol error is NACKed, then the connection is dropped and re-made
 * with backoff (10 ms doubling to 15 s).
 */
import { errorMessage } from '@ambient-mesh/errors';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec } from '@ambient-mesh/xds-types';
import { ZdsProtocolError } from '../errors.ts';
import type { Logger } from '@ambient-mesh/runtime';
import { Backoff, systemTimers } from '@ambient-mesh/runtime';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';
import type { NetnsHandle, WorkloadStateManager, ZdsReply, ZdsRequest } from './state-manager.ts';

/** Both sides read into a 1024-byte buffer; anything longer is a protocol error. */
export const ZDS_MAX_MESSAGE = 1024;

export interface ZdsMessage {
  readonly data: Buffer;
  readonly fds: readonly number[];
  readonly truncated: boolean;
}

/** One SEQPACKET connection, as the client sees it. */
export interface ZdsConnection {
  send(data: Uint8Array): void;
  onMessage(listener: (message: ZdsMessage) => void): void;
  onClose(listener: (err?: Error) => void): void;
  close(): void;
}

export interface ZdsConnector {
  connect(path: string): ZdsConnection;
  /** Wraps a received netns fd; the handle closes it. */
  netns(fd: number): NetnsHandle;
  /** Closes a received fd that is not used. */
  closeFd(fd: number): void;
}

export interface ZdsClientOptions {
  readonly path: string;
  readonly connector: ZdsConnector;
  readonly manager: WorkloadStateManager;
  readonly logger: Logger;
  readonly timers?: Timers;
}

type Decoded =
  { readonly ok: true; readonly request: ZdsRequest } | { readonly ok: false; readonly error: string };

export class ZdsClient {
  readonly #options: ZdsClientOptions;
  readonly #timers: Timers;
  readonly #backoff = new Backoff({ initialMs: 10, maxMs: 15_000 });
  #connection: ZdsConnection | undefined;
  #retry: TimerHandle | undefined;
  #stopped = true;
  /** Replies go out in request order, so requests are chained. */
  #chain: Promise<void> = Promise.resolve();

  constructor(options: ZdsClientOptions) {
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retry !== undefined) this.#timers.clearTimeout(this.#retry);
    this.#retry = undefined;
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined) {
      connection.close();
      this.#options.manager.connectionClosed();
    }
  }

  #connect(): void {
    const { connector, path, logger, manager } = this.#options;
    let connection: ZdsConnection;
    try {
      connection = connector.connect(path);
      connection.send(ZdsHelloCodec.encode({ version: 1 }));
    } catch (err) {
      logger.warn({ path, error: errorMessage(err) }, 'cannot reach the CNI agent over ZDS; retrying');
      this.#scheduleReconnect();
      return;
    }
    this.#connection = connection;
    this.#chain = Promise.resolve();
    manager.connectionOpened();
    logger.info({ path }, 'ZDS connected; hello sent');
    connection.onMessage(message => {
      this.#chain = this.#chain.then(() => this.#onMessage(connection, message));
    });
    connection.onClose(err => {
      this.#onClosed(connection, err);
    });
  }

  async #onMessage(connection: ZdsConnection, message: ZdsMessage): Promise<void> {
    if (this.#connection !== connection) {
      for (const fd of message.fds) this.#options.connector.closeFd(fd);
      return;
    }
    this.#backoff.reset();
    const decoded = this.#decode(message);
    let reply: ZdsReply;
    if (decoded.ok) {
      this.#options.logger.debug({ request: decoded.request.kind }, 'ZDS request');
      reply = await this.#options.manager.handle(decoded.request);
    } else {
      reply = { ack: false, error: decoded.error, fatal: true };
    }
    if (this.#connection !== connection) return;
    try {
      connection.send(WorkloadResponseCodec.encode({ ack: { error: reply.ack ? '' : reply.error } }));
    } catch (err) {
      this.#onClosed(connection, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!reply.ack) {
      const error = new ZdsProtocolError(reply.error);
      if (reply.fatal) {
        this.#options.logger.error({ error: error.message }, 'ZDS NACK; dropping the connection');
        connection.close();
        this.#onClosed(connection, error);
      } else {
        this.#options.logger.warn({ error: reply.error }, 'ZDS NACK; the proxy stays pending and is retried');
      }
    }
  }

  #decode(message: ZdsMessage): Decoded {
    const closeAll = (): void => {
      for (const fd of message.fds) this.#options.connector.closeFd(fd);
    };
    if (message.truncated || message.data.length > ZDS_MAX_MESSAGE) {
      closeAll();
      return {
        ok: false,
        error: `message longer than ${ZDS_MAX_MESSAGE} bytes or with truncated ancillary data`,
      };
    }
    let request;
    try {
      request = WorkloadRequestCodec.decode(message.data);
    } catch (err) {
      closeAll();
      return { ok: false, error: `cannot decode WorkloadRequest: ${errorMessage(err)}` };
    }
    if (request.add !== undefined) {
      if (message.fds.length !== 1) {
        closeAll();
        return {
          ok: false,
          error: `add for ${request.add.uid} must carry exactly one netns fd, got ${message.fds.length}`,
        };
      }
      const info = request.add.workloadInfo ?? undefined;
      let netns: NetnsHandle;
      try {
        netns = this.#options.connector.netns(message.fds[0] ?? -1);
      } catch (err) {
        closeAll();
        return { ok: false, error: `add for ${request.add.uid}: unusable netns fd: ${errorMessage(err)}` };
      }
      return { ok: true, request: { kind: 'add', uid: request.add.uid, info, netns } };
    }
    if (message.fds.length > 0) {
      closeAll();
      return { ok: false, error: 'only an add may carry a file descriptor' };
    }
    if (request.keep !== undefined) return { ok: true, request: { kind: 'keep', uid: request.keep.uid } };
    if (request.del !== undefined) return { ok: true, request: { kind: 'del', uid: request.del.uid } };
    if (request.snapshotSent !== undefined) return { ok: true, request: { kind: 'snapshot-sent' } };
    return { ok: false, error: 'empty WorkloadRequest' };
  }

  #onClosed(connection: ZdsConnection, err?: Error): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    this.#options.manager.connectionClosed();
    this.#options.logger.warn(
      err === undefined ? {} : { error: err.message },
      'ZDS connection closed; reconnecting',
    );
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const handle = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#stopped) this.#connect();
    }, this.#backoff.nextDelayMs());
    handle.unref?.();
    this.#retry = handle;
  }
}
