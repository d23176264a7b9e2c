/**
 * The server side's upstream dial: a TCP connection to the tunnel's destination, half-open
 * capable (so each direction can end on its own), Nagle off, bounded in time and abortable.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { HboneConnectFailedError, HboneConnectTimeoutError } from './errors.ts';
import { formatSocketAddress } from './authority.ts';
import { UPSTREAM_CONNECT_TIMEOUT_MS } from './settings.ts';
import { systemTimers } from './timers.ts';
import type { Timers } from './timers.ts';

export interface UpstreamOptions {
  readonly host: string;
  readonly port: number;
  /** Bind the socket to this local address first (e.g. to keep the original source IP). */
  readonly localAddress?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly timers?: Timers;
}

/** Resolves with a connected socket, or rejects with a typed error; never leaks the socket. */
export function connectUpstream(options: UpstreamOptions): Promise<Socket> {
  const timeoutMs = options.timeoutMs ?? UPSTREAM_CONNECT_TIMEOUT_MS;
  const timers = options.timers ?? systemTimers;
  const where = formatSocketAddress(options.host, options.port);
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new HboneConnectFailedError(where, 'aborted before the dial'));
      return;
    }
    const socket = netConnect({
      host: options.host,
      port: options.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    const fail = (error: Error): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void => {
      fail(new HboneConnectFailedError(where, err.message, err));
    };
    const onAbort = (): void => {
      fail(new HboneConnectFailedError(where, 'aborted: the tunnel went away during the dial'));
    };
    const timer = timers.setTimeout(() => {
      fail(new HboneConnectTimeoutError(`upstream connect to ${where}`, timeoutMs));
    }, timeoutMs);
    const cleanup = (): void => {
      timers.clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      options.signal?.removeEventListener('abort', onAbort);
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
