/**
 * Production `PodSockets`: every socket is created inside the pod's network namespace through
 * `@ambient-mesh/netns` and carries ztunnel's mark (0x539), so the pod's redirection rules let it
 * through (docs/protocols.md#redirection-ztunnel). Listeners use SO_REUSEPORT (old and new ztunnel during an upgrade) and, for
 * inbound, IP_TRANSPARENT as `ENABLE_ORIG_SRC` asks. Listeners are IPv4 (`0.0.0.0`) for now.
 */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { connectInNetns, getOriginalDst, listenInNetns } from '@ambient-mesh/netns';
import type { OrigSrcMode } from '../config.ts';
import type { NetnsHandle } from '../zds/state-manager.ts';
import type { PodSockets } from './pod-sockets.ts';

export interface NetnsPodSocketsOptions {
  readonly netns: NetnsHandle;
  readonly mark: number;
  readonly origSrc: OrigSrcMode;
  /** Listen address inside the pod; default `0.0.0.0`. */
  readonly host?: string;
}

export function netnsPodSockets(options: NetnsPodSocketsOptions): PodSockets {
  const { netns, mark, origSrc } = options;
  const host = options.host ?? '0.0.0.0';
  const listen = (port: number, transparent: boolean): Promise<Server> =>
    listenInNetns(
      netns.fd,
      { host, port, mark, reusePort: true, transparent },
      createServer({ allowHalfOpen: true, noDelay: true }),
    );
  return {
    async listen(port, { transparent }) {
      if (!transparent || origSrc === 'off') return listen(port, false);
      if (origSrc === 'require') return listen(port, true);
      try {
        return await listen(port, true);
      } catch {
        // Best effort (ENABLE_ORIG_SRC unset): without CAP_NET_ADMIN the source is not kept.
        return listen(port, false);
      }
    },
    originalDestination(socket) {
      const original = getOriginalDst(socket);
      if (original !== null) return { address: original.address, port: original.port };
      return socket.localAddress === undefined || socket.localPort === undefined
        ? undefined
        : { address: socket.localAddress, port: socket.localPort };
    },
    connect(request) {
      const spoof = request.sourceIp !== undefined && request.sourceIp !== request.host;
      const socket = connectInNetns(netns.fd, {
        host: request.host,
        port: request.port,
        mark,
        ...(spoof ? { localAddress: request.sourceIp, transparent: true, freebind: true } : {}),
      });
      socket.allowHalfOpen = true;
      socket.setNoDelay(true);
      return socket;
    },
  };
}
