/**
 * Socket options the data plane sets before bind/connect: SO_MARK, IP_TRANSPARENT, IP_FREEBIND,
 * SO_REUSEPORT, plus reading them back and SO_ORIGINAL_DST. Works on raw fds and on Node's own
 * sockets (through their libuv fd).
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import { InvalidArgumentError, SocketClosedError } from './errors.ts';
import { native } from './native.ts';
import type { SocketAddress } from './native.ts';
import { Capability, callNative } from './syscall-errors.ts';

/** Options applied to a socket before it binds or connects. */
export interface SocketOptions {
  /** SO_MARK, e.g. 0x539 so the pod's nftables rules do not redirect it. Needs CAP_NET_ADMIN. */
  readonly mark?: number;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: bind or accept foreign addresses. Needs CAP_NET_ADMIN. */
  readonly transparent?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address not (yet) configured on an interface. */
  readonly freebind?: boolean;
  /** SO_REUSEPORT: several listeners (old and new proxy) share the port. */
  readonly reusePort?: boolean;
  /**
   * IPV6_V6ONLY on an IPv6 socket: `::` then takes IPv6 only, so an IPv4 listener on `0.0.0.0`
   * can share the port. Ignored for IPv4.
   */
  readonly v6Only?: boolean;
}

export type IpFamily = 4 | 6;

/** A socket whose kernel fd can be reached: a raw fd or one of Node's socket objects. */
export type FdSource = number | net.Socket | net.Server | dgram.Socket;

/** The IP family of an address literal; throws for anything that is not an IP literal. */
export function familyOf(host: string): IpFamily {
  if (/^[0-9.]+$/.test(host)) return 4;
  if (host.includes(':')) return 6;
  throw new InvalidArgumentError(
    `'${host}' is not an IP literal; name resolution runs in the caller's namespace, so resolve first`,
  );
}

/** Rejects ports outside 0..65535. */
export function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`${what} port ${port} is outside 0..65535`);
  }
}

/**
 * The kernel fd behind a Node socket, server or dgram socket. Node keeps it on the internal
 * libuv handle (`_handle.fd`); there is no public accessor.
 * @throws SocketClosedError when the object has no open handle.
 */
export function socketFd(source: FdSource): number {
  if (typeof source === 'number') return source;
  const fd = streamHandleFd(source) ?? dgramHandleFd(source);
  if (typeof fd !== 'number' || fd < 0) throw new SocketClosedError('reading the socket fd');
  return fd;
}

function streamHandleFd(source: object): unknown {
  return (source as { _handle?: { fd?: unknown } | null })._handle?.fd;
}

// dgram keeps its libuv handle under a private `Symbol('state symbol')`.
function dgramHandleFd(source: object): unknown {
  const key = Object.getOwnPropertySymbols(source).find(s => s.description === 'state symbol');
  if (key === undefined) return undefined;
  const state = (source as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[key];
  return state?.handle?.fd;
}

/** Applies `options` to a fresh socket of `family`; `listener` also sets SO_REUSEADDR. */
export function applySocketOptions(
  fd: number,
  family: IpFamily,
  options: SocketOptions,
  listener: boolean,
): void {
  const c = native.constants;
  if (listener) {
    callNative('set SO_REUSEADDR', () => {
      native.setsockoptInt(fd, c.SOL_SOCKET, c.SO_REUSEADDR, 1);
    });
  }
  if (options.reusePort === true) {
    callNative('set SO_REUSEPORT', () => {
      native.setsockoptInt(fd, c.SOL_SOCKET, c.SO_REUSEPORT, 1);
    });
  }
  if (options.mark !== undefined) setMark(fd, options.mark);
  if (family === 6 && options.v6Only !== undefined) {
    const v6Only = options.v6Only ? 1 : 0;
    callNative('set IPV6_V6ONLY', () => {
      native.setsockoptInt(fd, c.SOL_IPV6, c.IPV6_V6ONLY, v6Only);
    });
  }
  if (options.transparent === true) {
    const [level, name] = family === 4 ? [c.SOL_IP, c.IP_TRANSPARENT] : [c.SOL_IPV6, c.IPV6_TRANSPARENT];
    callNative(
      'set IP_TRANSPARENT',
      () => {
        native.setsockoptInt(fd, level, name, 1);
      },
      Capability.transparent,
    );
  }
  if (options.freebind === true) {
    const [level, name] = family === 4 ? [c.SOL_IP, c.IP_FREEBIND] : [c.SOL_IPV6, c.IPV6_FREEBIND];
    callNative('set IP_FREEBIND', () => {
      native.setsockoptInt(fd, level, name, 1);
    });
  }
}

/**
 * Sets SO_MARK on a socket (fd or Node socket).
 * @throws MissingCapabilityError naming CAP_NET_ADMIN when the process lacks it.
 */
export function setMark(socket: FdSource, mark: number): void {
  if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
    throw new InvalidArgumentError(`mark ${mark} is not a 32-bit unsigned integer`);
  }
  const fd = socketFd(socket);
  const c = native.constants;
  callNative(
    'set SO_MARK',
    () => {
      native.setsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK, mark | 0);
    },
    Capability.setMark,
  );
}

/** Reads SO_MARK back. */
export function getMark(socket: FdSource): number {
  const fd = socketFd(socket);
  const c = native.constants;
  return callNative('get SO_MARK', () => native.getsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK));
}

/** Whether IP_TRANSPARENT (or IPV6_TRANSPARENT for an IPv6 socket) is set. */
export function isTransparent(socket: FdSource): boolean {
  const fd = socketFd(socket);
  const c = native.constants;
  const local = native.localAddress(fd);
  const [level, name] =
    local?.family === 'IPv6' ? [c.SOL_IPV6, c.IPV6_TRANSPARENT] : [c.SOL_IP, c.IP_TRANSPARENT];
  return callNative('get IP_TRANSPARENT', () => native.getsockoptInt(fd, level, name)) !== 0;
}

/**
 * The destination the client dialled before REDIRECT rewrote it (SO_ORIGINAL_DST, IPv4 first,
 * then IP6T_SO_ORIGINAL_DST). `null` when the connection was not redirected.
 */
export function getOriginalDst(socket: FdSource): SocketAddress | null {
  const fd = socketFd(socket);
  return callNative('get SO_ORIGINAL_DST', () => native.originalDst(fd));
}

/** The local address of a socket as the kernel reports it. */
export function getLocalAddress(socket: FdSource): SocketAddress | null {
  const fd = socketFd(socket);
  return callNative('getsockname', () => native.localAddress(fd));
}
