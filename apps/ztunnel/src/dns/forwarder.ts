/**
 * Sends a pod's query, byte for byte, to the upstream resolvers and returns the first matching
 * response. Sockets come from the pod (`DnsSockets`): in production they are made in the pod's
 * network namespace with ztunnel's mark, which the pod's capture rules let through, so the
 * forwarded query never loops back into the proxy.
 *
 * UDP uses a fresh socket (random source port) per try and accepts only a reply from the server
 * asked with the query's id. A truncated UDP reply is passed back as is; the client then asks
 * over TCP, which the proxy forwards over TCP.
 */
import type dgram from 'node:dgram';
import type { Server, Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import type { Nameserver, UpstreamResolvers } from './resolv-conf.ts';
import type { DnsProtocol } from './message.ts';

/** The sockets of one pod's DNS proxy. */
export interface DnsSockets {
  /** UDP socket bound on `port` in the pod (the proxy's own listener). */
  listenUdp(port: number): Promise<dgram.Socket>;
  /** TCP server listening on `port` in the pod. */
  listenTcp(port: number): Promise<Server>;
  /** An ephemeral UDP socket in the pod for one upstream query. */
  upstreamUdp(family: 4 | 6): Promise<dgram.Socket>;
  /** A connecting TCP socket in the pod to an upstream resolver. */
  upstreamTcp(server: Nameserver): Socket;
}

export class DnsForwardError extends Error {
  readonly code = 'ZTUNNEL_DNS_FORWARD_FAILED';
}

function udpOnce(
  sockets: DnsSockets,
  server: Nameserver,
  query: Buffer,
  id: number,
  timeoutMs: number,
): Promise<Buffer> {
  return sockets.upstreamUdp(isIPv6(server.host) ? 6 : 4).then(
    socket =>
      new Promise<Buffer>((resolve, reject) => {
        const finish = (err: Error | undefined, reply?: Buffer): void => {
          clearTimeout(timer);
          socket.removeAllListeners('message');
          socket.close();
          if (err === undefined && reply !== undefined) resolve(reply);
          else reject(err ?? new DnsForwardError('no reply'));
        };
        const timer = setTimeout(() => {
          finish(new DnsForwardError(`no answer from ${server.host}:${server.port} within ${timeoutMs} ms`));
        }, timeoutMs);
        socket.on('message', (msg, rinfo) => {
          if (rinfo.address !== server.host || rinfo.port !== server.port) return;
          if (msg.length < 12 || msg.readUInt16BE(0) !== id) return;
          finish(undefined, msg);
        });
        socket.once('error', err => {
          finish(new DnsForwardError(`sending to ${server.host}:${server.port}: ${err.message}`));
        });
        socket.send(query, server.port, server.host);
      }),
  );
}

function tcpOnce(sockets: DnsSockets, server: Nameserver, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = sockets.upstreamTcp(server);
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, reply?: Buffer): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.destroy();
      if (err === undefined && reply !== undefined) resolve(reply);
      else reject(err ?? new DnsForwardError('no reply'));
    };
    const timer = setTimeout(() => {
      finish(
        new DnsForwardError(`no answer from ${server.host}:${server.port} (tcp) within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const size = buffered.readUInt16BE(0);
      if (buffered.length >= 2 + size) finish(undefined, buffered.subarray(2, 2 + size));
    });
    socket.once('error', err => {
      finish(new DnsForwardError(`tcp to ${server.host}:${server.port}: ${err.message}`));
    });
    socket.once('end', () => {
      finish(new DnsForwardError(`${server.host}:${server.port} closed the tcp connection before answering`));
    });
  });
}

export class DnsForwarder {
  readonly #upstream: UpstreamResolvers;
  readonly #sockets: DnsSockets;

  constructor(upstream: UpstreamResolvers, sockets: DnsSockets) {
    this.#upstream = upstream;
    this.#sockets = sockets;
  }

  /**
   * The upstream's response to `query` (whose id is `id`), asked over `protocol`: every
   * nameserver in order, `attempts` rounds, each try bounded by `timeout`.
   * @throws DnsForwardError when no nameserver is configured or none answered.
   */
  async forward(query: Buffer, id: number, protocol: DnsProtocol): Promise<Buffer> {
    const { nameservers, attempts, timeoutMs } = this.#upstream;
    if (nameservers.length === 0) {
      throw new DnsForwardError('no upstream nameserver configured; check the resolv.conf ztunnel reads');
    }
    let last: unknown;
    for (let round = 0; round < attempts; round++) {
      for (const server of nameservers) {
        try {
          return protocol === 'udp'
            ? await udpOnce(this.#sockets, server, query, id, timeoutMs)
            : await tcpOnce(this.#sockets, server, query, timeoutMs);
        } catch (err) {
          last = err;
        }
      }
    }
    throw last instanceof Error ? last : new DnsForwardError('no upstream answered');
  }
}
