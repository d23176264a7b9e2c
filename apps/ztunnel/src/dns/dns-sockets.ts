/**
 * The sockets of a pod's DNS proxy. Production (`netnsDnsSockets`): every socket is made in the
 * pod's network namespace with ztunnel's mark, so the pod's capture rules skip the proxy's own
 * upstream queries (docs/dns.md#capture). Listeners use SO_REUSEPORT (old and new ztunnel during
 * an upgrade) and bind 127.0.0.1, as upstream's: REDIRECT of a locally generated packet rewrites
 * its destination to 127.0.0.1, and an unconnected UDP socket bound to 0.0.0.0 would answer from
 * the pod IP instead, a reply conntrack cannot match to the redirected query. The direct tier (`loopbackDnsSockets`) listens on a loopback address of this host.
 */
import dgram from 'node:dgram';
import { connect, createServer } from 'node:net';
import { connectInNetns, createUdpSocket, listenInNetns } from '@ambient-mesh/netns';
import type { NetnsHandle } from '../zds/state-manager.ts';
import type { DnsSockets } from './forwarder.ts';

export interface NetnsDnsSocketsOptions {
  readonly netns: NetnsHandle;
  readonly mark: number;
  /** Listen address inside the pod; default `127.0.0.1`. */
  readonly host?: string;
}

export function netnsDnsSockets(options: NetnsDnsSocketsOptions): DnsSockets {
  const { netns, mark } = options;
  const host = options.host ?? '127.0.0.1';
  return {
    listenUdp: port => createUdpSocket(netns.fd, { host, port, mark, reusePort: true }),
    listenTcp: port => listenInNetns(netns.fd, { host, port, mark, reusePort: true }, createServer()),
    upstreamUdp: family =>
      createUdpSocket(netns.fd, { host: family === 4 ? '0.0.0.0' : '::', port: 0, mark }),
    upstreamTcp: server => connectInNetns(netns.fd, { host: server.host, port: server.port, mark }),
  };
}

/** Direct-tier sockets: the "pod" is `host` (a loopback address) in this namespace. */
export function loopbackDnsSockets(host: string): DnsSockets {
  return {
    listenUdp: port =>
      new Promise((resolve, reject) => {
        const socket = dgram.createSocket('udp4');
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve(socket);
        });
      }),
    listenTcp: port =>
      new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server);
        });
      }),
    upstreamUdp: family =>
      new Promise((resolve, reject) => {
        const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
        socket.once('error', reject);
        socket.bind(0, () => {
          socket.off('error', reject);
          resolve(socket);
        });
      }),
    upstreamTcp: server => connect({ host: server.host, port: server.port }),
  };
}
