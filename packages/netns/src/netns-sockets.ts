/**
 * TCP and UDP sockets created inside a network namespace and handed to Node's own `net` and
 * `dgram`, so libuv owns the I/O. Only the calling thread enters the namespace, for the single
 * socket(2) call, and returns at once; the process and its other threads never move.
 *
 * Name resolution (dns.lookup) runs on libuv's threadpool in the caller's namespace, so every
 * address here is an IP literal.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { InvalidArgumentError } from './errors.ts';
import { native } from './native.ts';
import { applySocketOptions, checkPort, familyOf } from './socket-options.ts';
import type { IpFamily, SocketOptions } from './socket-options.ts';
import { Capability, callNative } from './syscall-errors.ts';

/** A namespace fd from `openNetns`, or `null` for the caller's own namespace. */
export type NetnsFd = number | null;

export interface TcpListenerOptions extends SocketOptions {
  /** IP literal to bind, e.g. `127.0.0.1`, `0.0.0.0` or `::`. */
  readonly host: string;
  readonly port: number;
}

export interface ListenOptions extends TcpListenerOptions {
  readonly backlog?: number;
}

export interface ConnectOptions extends SocketOptions {
  /** IP literal of the destination. */
  readonly host: string;
  readonly port: number;
  /** Source address to bind first; a foreign one needs `transparent` (and usually `freebind`). */
  readonly localAddress?: string;
  readonly localPort?: number;
}

export interface UdpSocketOptions extends SocketOptions {
  readonly host: string;
  readonly port: number;
}

function openSocket(nsFd: NetnsFd, family: IpFamily, kind: 'stream' | 'dgram'): number {
  return callNative(
    nsFd === null ? 'create socket' : 'create socket in network namespace',
    () => native.createSocket(nsFd ?? -1, family, kind),
    Capability.enterNetns,
  );
}

function bindOrThrow(fd: number, host: string, port: number): void {
  callNative(
    `bind ${host}:${port}`,
    () => {
      native.bindAddress(fd, host, port);
    },
    port > 0 && port < 1024 ? Capability.bindLowPort : undefined,
  );
}

/** Runs `setup` on a fresh fd and closes the fd if setup throws. */
function withSocket(fd: number, setup: () => void): number {
  try {
    setup();
    return fd;
  } catch (err) {
    native.closeFd(fd);
    throw err;
  }
}

/**
 * Creates a TCP socket in the namespace, applies the options, and binds it. The result is an fd
 * for `net.Server.listen({ fd })` (Node calls listen(2) itself; it would not bind).
 * @throws MissingCapabilityError naming CAP_SYS_ADMIN, CAP_NET_ADMIN or CAP_NET_BIND_SERVICE.
 */
export function createTcpListener(nsFd: NetnsFd, options: TcpListenerOptions): number {
  const family = familyOf(options.host);
  checkPort(options.port, 'listen');
  const fd = openSocket(nsFd, family, 'stream');
  return withSocket(fd, () => {
    applySocketOptions(fd, family, options, true);
    bindOrThrow(fd, options.host, options.port);
  });
}

/**
 * Creates a listener in the namespace and starts `server` (a new `net.Server` if omitted) on it.
 * Resolves once Node listens.
 */
export async function listenInNetns(
  nsFd: NetnsFd,
  options: ListenOptions,
  server = net.createServer(),
): Promise<net.Server> {
  const fd = createTcpListener(nsFd, options);
  return new Promise<net.Server>((resolve, reject) => {
    const onError = (err: Error): void => {
      native.closeFd(fd);
      reject(err);
    };
    server.once('error', onError);
    server.listen({ fd, backlog: options.backlog ?? 511 }, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/**
 * Connects from inside the namespace. The socket is created there, marked and bound before the
 * SYN leaves, then handed to a `net.Socket` that connects with normal semantics: a `'connect'`
 * event, or an `'error'` (`ECONNREFUSED`, syscall `connect`).
 */
export function connectInNetns(nsFd: NetnsFd, options: ConnectOptions): net.Socket {
  const family = familyOf(options.host);
  checkPort(options.port, 'destination');
  const fd = openSocket(nsFd, family, 'stream');
  withSocket(fd, () => {
    applySocketOptions(fd, family, options, false);
    if (options.localAddress !== undefined) {
      if (familyOf(options.localAddress) !== family) {
        throw new InvalidArgumentError(
          `local address ${options.localAddress} and destination ${options.host} are of different families`,
        );
      }
      bindOrThrow(fd, options.localAddress, options.localPort ?? 0);
    }
  });
  // `manualStart` keeps the constructor from reading (and failing with ENOTCONN) before connect;
  // Node's connect() then reuses the handle and its fd.
  const socketOptions: net.SocketConstructorOpts & { manualStart: boolean } = { fd, manualStart: true };
  const socket = new net.Socket(socketOptions);
  return socket.connect({ host: options.host, port: options.port });
}

/**
 * Creates a UDP socket in the namespace, applies the options, binds it and hands it to a
 * `dgram.Socket`. Resolves once Node listens on it.
 */
export async function createUdpSocket(nsFd: NetnsFd, options: UdpSocketOptions): Promise<dgram.Socket> {
  const family = familyOf(options.host);
  checkPort(options.port, 'bind');
  const fd = openSocket(nsFd, family, 'dgram');
  withSocket(fd, () => {
    applySocketOptions(fd, family, options, false);
    bindOrThrow(fd, options.host, options.port);
  });
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: false });
  return new Promise<dgram.Socket>((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ fd }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
