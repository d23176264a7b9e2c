/**
 * Production `PodSockets`: every socket is created inside the pod's network namespace through
 * `@ambient-mesh/netns` and carries ztunnel's mark (0x539), so the pod's redirection rules let it
 * through (docs/protocols.md#redirection-ztunnel). Listeners use SO_REUSEPORT (old and new ztunnel during an upgrade) and, for
 * inbound, IP_TRANSPARENT as `ENABLE_ORIG_SRC` asks. Each port is served on both families, as
 * upstream's dual-stack listeners: `0.0.0.0` and `::` (IPV6_V6ONLY, so each family keeps its own
 * addresses and SO_ORIGINAL_DST). A kernel without IPv6 (EAFNOSUPPORT) gets the IPv4 one only.
 */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { connectInNetns, getOriginalDst, listenInNetns, SyscallError } from '@ambient-mesh/netns';
import type { OrigSrcMode } from '../config.ts';
import type { NetnsHandle } from '../zds/state-manager.ts';
import type { PodSockets } from './pod-sockets.ts';

export interface NetnsPodSocketsOptions {
  readonly netns: NetnsHandle;
  readonly mark: number;
  readonly origSrc: OrigSrcMode;
  /** One listen address inside the pod instead of the default pair `0.0.0.0` and `::`. */
  readonly host?: string;
}

/** The address family is not supported: a kernel built or booted without IPv6. */
function noIpv6(err: unknown): boolean {
  return err instanceof SyscallError && err.errnoCode === 'EAFNOSUPPORT';
}

export function netnsPodSockets(options: NetnsPodSocketsOptions): PodSockets {
  const { netns, mark, origSrc } = options;
  const hosts = options.host === undefined ? ['0.0.0.0', '::'] : [options.host];
  const listenOn = (host: string, port: number, transparent: boolean): Promise<Server> =>
    listenInNetns(
      netns.fd,
      { host, port, mark, reusePort: true, transparent, ...(host.includes(':') ? { v6Only: true } : {}) },
      createServer({ allowHalfOpen: true, noDelay: true }),
    );
  const listenOne = async (host: string, port: number, transparent: boolean): Promise<Server> => {
    if (!transparent || origSrc === 'off') return listenOn(host, port, false);
    if (origSrc === 'require') return listenOn(host, port, true);
    try {
      return await listenOn(host, port, true);
    } catch {
      // Best effort (ENABLE_ORIG_SRC unset): without CAP_NET_ADMIN the source is not kept.
      return listenOn(host, port, false);
    }
  };
  return {
    async listen(port, { transparent }) {
      const servers: Server[] = [];
      try {
        for (const host of hosts) {
          try {
            servers.push(await listenOne(host, port, transparent));
          } catch (err) {
            if (!(host === '::' && noIpv6(err))) throw err;
          }
        }
      } catch (err) {
        for (const server of servers) server.close();
        throw err;
      }
      return servers;
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
