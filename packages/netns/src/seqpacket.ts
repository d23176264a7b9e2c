/**
 * AF_UNIX SOCK_SEQPACKET sockets carrying one record per send, optionally with SCM_RIGHTS fds:
 * the ZDS transport between the CNI node agent (server) and ztunnel (client).
 *
 * libuv cannot wrap SEQPACKET fds, so readiness comes from a uv_poll on Node's loop. Each
 * readiness callback drains the socket until EAGAIN. An exception thrown by a `'message'` or
 * `'connection'` listener surfaces as an uncaught exception of the process (it is never
 * swallowed). Received fds belong to the listener, which must close them; when nobody listens
 * they are closed here.
 */
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { InvalidArgumentError, SocketClosedError } from './errors.ts';
import { native } from './native.ts';
import type { NativeWatchHandle } from './native.ts';
import { callNative, hasErrnoCode, translateError } from './syscall-errors.ts';

/** One received record. */
export interface SeqpacketMessage {
  readonly data: Buffer;
  /** Descriptors that came with the record (SCM_RIGHTS), close-on-exec. The listener owns them. */
  readonly fds: readonly number[];
  /** The record was longer than `maxMessageSize`, or descriptors were dropped (MSG_CTRUNC). */
  readonly truncated: boolean;
  /** The record's real length in bytes. */
  readonly size: number;
}

/** The peer process of a connected socket as the kernel recorded it at connect (SO_PEERCRED). */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface SeqpacketSocketOptions {
  /** Receive buffer per record; longer records arrive cut and flagged `truncated`. Default 64 KiB. */
  readonly maxMessageSize?: number;
}

export interface SeqpacketServerOptions extends SeqpacketSocketOptions {
  readonly backlog?: number;
  /** Remove a stale socket file at `path` before binding (the ZDS server does). Default true. */
  readonly removeStale?: boolean;
}

interface SocketEvents {
  message: [SeqpacketMessage];
  close: [];
  error: [Error];
}

interface ServerEvents {
  connection: [SeqpacketSocket];
  close: [];
  error: [Error];
}

const DEFAULT_MAX_MESSAGE = 64 * 1024;
// Upper bound of records read per readiness callback; the level-triggered poll fires again.
const MAX_READS_PER_WAKEUP = 1024;

function closeQuietly(fd: number): void {
  try {
    native.closeFd(fd);
  } catch {
    // Already closed: nothing left to release.
  }
}

/** A connected SEQPACKET socket. It owns its fd from construction until `close()`. */
export class SeqpacketSocket extends EventEmitter<SocketEvents> {
  /** Connects to a listening SEQPACKET socket at `path`. */
  static connect(path: string, options: SeqpacketSocketOptions = {}): SeqpacketSocket {
    const fd = callNative(`connect to seqpacket socket '${path}'`, () => native.seqpacketConnect(path));
    return new SeqpacketSocket(fd, options);
  }

  /** A connected pair in this process (tests, in-process agents). */
  static pair(options: SeqpacketSocketOptions = {}): [SeqpacketSocket, SeqpacketSocket] {
    const [a, b] = callNative('create seqpacket pair', () => native.seqpacketPair());
    return [new SeqpacketSocket(a, options), new SeqpacketSocket(b, options)];
  }

  #fd: number;
  #watch: NativeWatchHandle | undefined;
  readonly #maxMessageSize: number;

  /** Takes ownership of a connected, non-blocking SEQPACKET fd. */
  constructor(fd: number, options: SeqpacketSocketOptions = {}) {
    super();
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
    if (!Number.isInteger(max) || max < 1 || max > 16 * 1024 * 1024) {
      closeQuietly(fd); // ownership was handed over: do not leak it
      throw new InvalidArgumentError(`maxMessageSize ${max} is outside 1..16 MiB`);
    }
    this.#fd = fd;
    this.#maxMessageSize = max;
    this.#watch = native.watch(fd, native.watchEvents.READABLE | native.watchEvents.DISCONNECT, status => {
      this.#onReadable(status);
    });
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Sends one record, with `fds` as SCM_RIGHTS. The fds stay owned by the caller (the kernel
   * duplicates them into the message).
   * @throws SocketClosedError after close; SyscallError (EAGAIN when the peer's queue is full,
   *   EPIPE when the peer is gone).
   */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    if (this.#fd < 0) throw new SocketClosedError('seqpacket send');
    const fd = this.#fd;
    const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    callNative('seqpacket send', () => native.sendWithFds(fd, buffer, fds));
  }

  /**
   * Who is at the other end: the connecting process for an accepted socket, the listening one
   * for a connected socket. The kernel records it at connect; the peer cannot forge it.
   * @throws SocketClosedError after close.
   */
  peerCredentials(): PeerCredentials {
    if (this.#fd < 0) throw new SocketClosedError('seqpacket peer credentials');
    const fd = this.#fd;
    return callNative('read seqpacket peer credentials', () => native.peerCredentials(fd));
  }

  /** Keeps (default) or stops keeping the event loop alive while the socket is open. */
  ref(): this {
    if (this.#watch !== undefined) native.setWatchRef(this.#watch, true);
    return this;
  }

  unref(): this {
    if (this.#watch !== undefined) native.setWatchRef(this.#watch, false);
    return this;
  }

  /** Stops reading and closes the fd; emits `'close'` once. */
  close(): void {
    if (this.#fd < 0) return;
    if (this.#watch !== undefined) native.unwatch(this.#watch);
    this.#watch = undefined;
    closeQuietly(this.#fd);
    this.#fd = -1;
    this.emit('close');
  }

  #onReadable(status: number): void {
    if (this.#fd < 0) return;
    if (status < 0) {
      this.#fail(new SocketClosedError(`seqpacket poll reported error ${status}`));
      return;
    }
    for (let i = 0; i < MAX_READS_PER_WAKEUP && this.#fd >= 0; i++) {
      let result;
      try {
        result = native.recvWithFds(this.#fd, this.#maxMessageSize);
      } catch (err) {
        if (hasErrnoCode(err, 'ECONNRESET')) {
          this.close();
        } else {
          this.#fail(translateError(err, 'seqpacket receive'));
        }
        return;
      }
      if (result === null) return;
      if (result.eof) {
        this.close();
        return;
      }
      const message: SeqpacketMessage = {
        data: result.data,
        fds: result.fds,
        truncated: result.truncated,
        size: result.size,
      };
      if (this.listenerCount('message') === 0) {
        for (const fd of message.fds) closeQuietly(fd);
        continue;
      }
      this.emit('message', message);
    }
  }

  #fail(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.close();
  }
}

/** A listening SEQPACKET socket; emits `'connection'` with each accepted SeqpacketSocket. */
export class SeqpacketServer extends EventEmitter<ServerEvents> {
  /** Binds and listens at `path`. */
  static listen(path: string, options: SeqpacketServerOptions = {}): SeqpacketServer {
    if (options.removeStale ?? true) rmSync(path, { force: true });
    const fd = callNative(`listen on seqpacket socket '${path}'`, () =>
      native.seqpacketListen(path, options.backlog ?? 128),
    );
    return new SeqpacketServer(fd, path, options);
  }

  readonly path: string;
  #fd: number;
  #watch: NativeWatchHandle | undefined;
  readonly #socketOptions: SeqpacketSocketOptions;

  private constructor(fd: number, path: string, options: SeqpacketSocketOptions) {
    super();
    this.#fd = fd;
    this.path = path;
    this.#socketOptions =
      options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize };
    this.#watch = native.watch(fd, native.watchEvents.READABLE, status => {
      this.#onAcceptable(status);
    });
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  ref(): this {
    if (this.#watch !== undefined) native.setWatchRef(this.#watch, true);
    return this;
  }

  unref(): this {
    if (this.#watch !== undefined) native.setWatchRef(this.#watch, false);
    return this;
  }

  /** Stops accepting, closes the fd and removes the socket file. Accepted sockets stay open. */
  close(): void {
    if (this.#fd < 0) return;
    if (this.#watch !== undefined) native.unwatch(this.#watch);
    this.#watch = undefined;
    closeQuietly(this.#fd);
    this.#fd = -1;
    rmSync(this.path, { force: true });
    this.emit('close');
  }

  #onAcceptable(status: number): void {
    if (this.#fd < 0) return;
    if (status < 0) {
      this.emit('error', new SocketClosedError(`seqpacket accept poll reported error ${status}`));
      return;
    }
    for (let i = 0; i < MAX_READS_PER_WAKEUP && this.#fd >= 0; i++) {
      const listenFd = this.#fd;
      let fd: number | null;
      try {
        fd = native.seqpacketAccept(listenFd);
      } catch (err) {
        this.emit('error', translateError(err, 'seqpacket accept'));
        return;
      }
      if (fd === null) return;
      const socket = new SeqpacketSocket(fd, this.#socketOptions);
      if (this.listenerCount('connection') === 0) {
        socket.close();
        continue;
      }
      this.emit('connection', socket);
    }
  }
}
