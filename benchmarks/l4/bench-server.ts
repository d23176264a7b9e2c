// The server side of the L4 benchmark (image ambient-mesh/l4-bench-server), run in pod B.
//   SINK_PORT (9000):    counts every byte; when the client half-closes, answers the count and closes.
//   ECHO_PORT (9001):    echoes every byte back (1 KiB request -> 1 KiB response).
//   ACCEPT_PORT (9002):  answers one byte and closes first (one new connection = one round trip).
//   HTTP_PORT (9003):    HTTP/1.1; reads the request body and answers 200 with 1 KiB (the L7 benchmark).
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

const SINK_PORT = Number(process.env.SINK_PORT ?? '9000');
const ECHO_PORT = Number(process.env.ECHO_PORT ?? '9001');
const ACCEPT_PORT = Number(process.env.ACCEPT_PORT ?? '9002');
const HTTP_PORT = Number(process.env.HTTP_PORT ?? '9003');
const RESPONSE = Buffer.alloc(1024, 0x32);

function listen(port: number, onSocket: (socket: Socket) => void): Server {
  const server = createServer({ allowHalfOpen: true }, socket => {
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  server.listen({ port, host: '0.0.0.0', backlog: 4096 });
  return server;
}

const servers = [
  listen(SINK_PORT, socket => {
    let total = 0;
    socket.on('data', (chunk: Buffer) => {
      total += chunk.length;
    });
    socket.on('end', () => {
      socket.end(`${total}\n`);
    });
  }),
  listen(ECHO_PORT, socket => {
    socket.setNoDelay(true);
    socket.pipe(socket);
  }),
  listen(ACCEPT_PORT, socket => {
    socket.on('data', () => undefined);
    socket.end('k');
  }),
];
const http = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': RESPONSE.length });
    res.end(RESPONSE);
  });
});
http.on('connection', (socket: Socket) => {
  socket.setNoDelay(true);
});
http.listen({ port: HTTP_PORT, host: '0.0.0.0', backlog: 4096 });
console.log(
  `l4-bench-server listening on :${SINK_PORT} (sink), :${ECHO_PORT} (echo), :${ACCEPT_PORT} (accept), :${HTTP_PORT} (HTTP)`,
);

process.on('SIGTERM', () => {
  for (const s of servers) s.close();
  http.close();
  process.exit(0);
});
