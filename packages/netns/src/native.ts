/**
 * Loads the compiled addon (`build/Release/ambient_netns.node`, built by node-gyp at install) and
 * describes its raw surface. Everything else in the package wraps this with types and errors.
 *
 * Loading fails at once, with a typed error, on any platform other than Linux.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { AddonNotBuiltError, UnsupportedPlatformError } from './errors.ts';

/** An address as the kernel reports it. */
export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export interface NativeNetnsInfo {
  readonly inode: number;
  readonly device: number;
  /** `null` when the kernel cannot tell (no NS_GET_NSTYPE). */
  readonly isNetns: boolean | null;
}

export type NativeRecvResult =
  | { readonly eof: true }
  | {
      readonly eof: false;
      readonly data: Buffer;
      readonly fds: number[];
      readonly truncated: boolean;
      readonly size: number;
    };

export interface NativeConstants {
  readonly SOL_SOCKET: number;
  readonly SO_MARK: number;
  readonly SO_REUSEADDR: number;
  readonly SO_REUSEPORT: number;
  readonly SO_ERROR: number;
  readonly SOL_IP: number;
  readonly IP_TRANSPARENT: number;
  readonly IP_FREEBIND: number;
  readonly SOL_IPV6: number;
  readonly IPV6_TRANSPARENT: number;
  readonly IPV6_FREEBIND: number;
  readonly IPV6_V6ONLY: number;
  readonly EINPROGRESS: number;
}

/** An opaque uv_poll handle. */
export interface NativeWatchHandle {
  readonly __brand: 'ambient-netns-watch';
}

/** The raw addon: every function throws an Error with `code`, `errno` and `syscall` on failure. */
export interface NativeBinding {
  openNetns(path: string): number;
  netnsInfo(fd: number): NativeNetnsInfo;
  currentNetnsInode(): number;
  closeFd(fd: number): void;
  trimNativeHeap(): boolean;
  createSocket(nsFd: number, family: 4 | 6, kind: 'stream' | 'dgram'): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  bindAddress(fd: number, host: string, port: number): void;
  connectAddress(fd: number, host: string, port: number): number;
  localAddress(fd: number): SocketAddress | null;
  remoteAddress(fd: number): SocketAddress | null;
  originalDst(fd: number): SocketAddress | null;
  socketError(fd: number): number;
  readonly constants: NativeConstants;
  seqpacketListen(path: string, backlog: number): number;
  seqpacketConnect(path: string): number;
  seqpacketAccept(fd: number): number | null;
  seqpacketPair(): [number, number];
  peerCredentials(fd: number): { readonly pid: number; readonly uid: number; readonly gid: number };
  sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number;
  recvWithFds(fd: number, maxBytes: number): NativeRecvResult | null;
  watch(fd: number, events: number, callback: (status: number, events: number) => void): NativeWatchHandle;
  unwatch(handle: NativeWatchHandle): void;
  setWatchRef(handle: NativeWatchHandle, ref: boolean): void;
  readonly watchEvents: { readonly READABLE: number; readonly WRITABLE: number; readonly DISCONNECT: number };
}

/** Where the addon lives relative to this file (src/ in development, dist/ once built). */
export const ADDON_PATH = fileURLToPath(new URL('../build/Release/ambient_netns.node', import.meta.url));

/**
 * Loads the addon for `platform`. Exposed for tests: the package itself calls it once at import.
 * @throws UnsupportedPlatformError off Linux; AddonNotBuiltError when the binary is missing.
 */
export function loadBinding(
  platform: NodeJS.Platform = process.platform,
  load: (path: string) => unknown = createRequire(import.meta.url),
  path: string = ADDON_PATH,
): NativeBinding {
  if (platform !== 'linux') throw new UnsupportedPlatformError(platform);
  try {
    return load(path) as NativeBinding;
  } catch (err) {
    throw new AddonNotBuiltError(path, err);
  }
}

/** The loaded addon. */
export const native: NativeBinding = loadBinding();
