// The echo server (image ambient-mesh/echo): answers every HTTP request with who served it and
// what it saw, and echoes raw bytes on an optional TCP port. Env: PORT (8080), TCP_PORT (off).
import http from 'node:http';
import net from 'node:net';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? '8080');
const tcpPort = process.env.TCP_PORT === undefined ? undefined : Number(process.env.TCP_PORT);
const podName = process.env.POD_NAME ?? hostname();

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({
      pod: podName,
      node: process.env.NODE_NAME,
      podIP: process.env.POD_IP,
      method: req.method,
      url: req.url,
      remote: req.socket.remoteAddress,
      bytes: Buffer.concat(chunks).length,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body + '\n');
  });
});
server.listen(port, () => {
  console.log(`echo ${podName} listening on :${port}`);
});
const tcp =
  tcpPort === undefined
    ? undefined
    : net
        .createServer(sock => {
          sock.on('error', () => undefined);
          sock.pipe(sock);
        })
        .listen(tcpPort);
process.on('SIGTERM', () => {
  console.log('echo: SIGTERM, closing');
  tcp?.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
