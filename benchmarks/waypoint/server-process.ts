// The server side of the waypoint benchmark, in its own process: real HTTP servers (node:http for
// HTTP/1.1, node:http2 for h2c, each on its own port) answering each request with 1 KiB after
// reading its body, and in front of them an HBONE server (mTLS, h2 CONNECT, the shared hbone
// package), which plays the server's ztunnel inbound: each tunnel becomes a TCP connection on
// loopback to the h2c port when the CONNECT authority's port is 8081, else to the HTTP/1.1 port.
//
// IPC from the driver: {identity} (start), 'quit'. IPC to the driver: {h1Port, h2Port, hbonePort}.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createHboneServer } from '@ambient-mesh/hbone';
import type { HboneIdentity } from '@ambient-mesh/hbone';

const RESPONSE = Buffer.alloc(1024, 0x32);

const http1 = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': RESPONSE.length });
    res.end(RESPONSE);
  });
});
const h2c = createH2Server({}, (req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': RESPONSE.length });
    res.end(RESPONSE);
  });
});

const sockets = new Set<Socket>();
const track = (socket: Socket): void => {
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
};
http1.on('connection', track);
h2c.on('connection', track);

function listen(server: {
  listen: (port: number, host: string, cb: () => void) => unknown;
  address: () => unknown;
}): Promise<number> {
  return new Promise(resolve => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function start(identity: HboneIdentity): Promise<void> {
  const h1Port = await listen(http1);
  const h2Port = await listen(h2c);
  const listener = createNetServer();
  const hbonePort = await listen(listener);
  createHboneServer({
    identity,
    listener,
    onConnect: request => ({
      status: 200,
      connect: () =>
        new Promise((resolve, reject) => {
          const port = request.rawAuthority.endsWith(':8081') ? h2Port : h1Port;
          const socket = connect({ port, host: '127.0.0.1', noDelay: true });
          socket.once('connect', () => {
            sockets.add(socket);
            socket.once('close', () => sockets.delete(socket));
            resolve(socket);
          });
          socket.once('error', reject);
        }),
    }),
  });
  process.send?.({ h1Port, h2Port, hbonePort });
}

process.on('message', (message: unknown) => {
  if (typeof message === 'object' && message !== null && 'identity' in message) {
    start((message as { identity: HboneIdentity }).identity).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  } else if (message === 'quit') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.send?.({ started: true });
