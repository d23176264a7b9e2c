/**
 * The socket capability of one pod's proxy. In production every socket is created inside the
 * pod's network namespace with ztunnel's mark (0x539), listeners may be transparent, and the
 * original destination comes from SO_ORIGINAL_DST. The direct test tier uses
 * `loopbackPodSockets`, where each "pod" is a loopback address of this host.
 */
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Destination } from './route.ts';
import { isLoopback } from './route.ts';

export interface PodConnectRequest {
  readonly host: string;
  readonly port: number;
  /** Spoof this source address (inbound delivery to the app keeps the client's IP). */
  readonly sourceIp?: string | undefined;
}

export interface PodSockets {
  /**
   * Listening servers on `port` in the pod, one per IP family served (IPv4 `0.0.0.0`, and IPv6
   * `::` when the pod has IPv6); accepted sockets allow half-open.
   */
  listen(port: number, options: { readonly transparent: boolean }): Promise<readonly Server[]>;
  /** Where a captured connection was going (SO_ORIGINAL_DST); undefined when unknown. */
  originalDestination(socket: Socket): Destination | undefined;
  /** A connecting TCP socket created in the pod (half-open allowed, Nagle off). */
  connect(request: PodConnectRequest): Socket;
}

export interface LoopbackPodOptions {
  /** The pod's address: a loopback IP such as 127.77.0.2. */
  readonly podIp: string;
  /**
   * Stands in for SO_ORIGINAL_DST on the outbound listener (no REDIRECT in the direct tier):
   * the destination the app "dialled". Inbound listeners use the accepted socket's local address.
   */
  readonly outboundDestination: () => Destination | undefined;
  /** Stands in for SO_ORIGINAL_DST on the plaintext inbound listener; default: the local address. */
  readonly plaintextDestination?: () => Destination | undefined;
  /** Ports to listen on instead of 15001/15006/15008 (e.g. 0 for any). Default: the same port. */
  readonly portMap?: (port: number) => number;
}

/** Direct-tier sockets: a pod is a loopback address; spoofing works within 127.0.0.0/8. */
export function loopbackPodSockets(
  options: LoopbackPodOptions,
): PodSockets & { readonly ports: Map<number, number> } {
  const ports = new Map<number, number>();
  return {
    ports,
    listen(port) {
      const server = createServer({ allowHalfOpen: true, noDelay: true });
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen((options.portMap ?? (p => p))(port), options.podIp, () => {
          server.off('error', reject);
          const address = server.address();
          if (address !== null && typeof address === 'object') ports.set(port, address.port);
          resolve([server]);
        });
      });
    },
    originalDestination(socket) {
      if (socket.localPort === ports.get(15001)) return options.outboundDestination();
      if (socket.localPort === ports.get(15006) && options.plaintextDestination !== undefined) {
        return options.plaintextDestination();
      }
      return socket.localAddress === undefined || socket.localPort === undefined
        ? undefined
        : { address: socket.localAddress, port: socket.localPort };
    },
    connect(request) {
      // A socket made "in the pod" leaves from the pod's IP, unless the source is spoofed.
      const spoof = request.sourceIp !== undefined && isLoopback(request.sourceIp);
      const localAddress = spoof ? request.sourceIp : options.podIp;
      return netConnect({
        host: request.host,
        port: request.port,
        allowHalfOpen: true,
        noDelay: true,
        ...(isLoopback(request.host) ? { localAddress } : {}),
      });
    },
  };
}

/** How long a dial from the pod (to the app, or plain passthrough) may take. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;

/** Waits for a connecting socket; rejects (and destroys it) on error, timeout or abort. */
export function whenConnected(socket: Socket, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onConnect = (): void => {
      done();
    };
    const onError = (err: Error): void => {
      done(err);
    };
    const onAbort = (): void => {
      done(new Error('aborted: the client went away during the dial'));
    };
    const timer = setTimeout(() => {
      done(new Error(`connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
