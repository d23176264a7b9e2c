// The echo server (image ambient-mesh/echo): answers every HTTP request with who served it and
// what it saw, and echoes raw bytes on an optional TCP port. Env: PORT (8080), TCP_PORT (off),
// DELAY_MS (wait before answering, 0), FAIL_EVERY (every Nth request is answered FAIL_STATUS,
// default 503; off), VERSION (in the body and the `x-echo-version` header), LOG_REQUESTS=true (a
// log line per request: method, path and the peer's address, for the console's merged log view),
// TLS_PORT with TLS_CERT and TLS_KEY (PEM text): the same answers over HTTPS on that port (the
// ingress scenario's TLS passthrough backend).
// The body also says how many requests the server held at once when it answered (`inFlight`) and
// at most so far (`maxInFlight`), from the first request byte to the end of the answer.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? '8080');
const tcpPort = process.env.TCP_PORT === undefined ? undefined : Number(process.env.TCP_PORT);
const podName = process.env.POD_NAME ?? hostname();
const delayMs = Number(process.env.DELAY_MS ?? '0');
const failEvery = Number(process.env.FAIL_EVERY ?? '0');
const failStatus = Number(process.env.FAIL_STATUS ?? '503');
const version = process.env.VERSION ?? '';
const logRequests = process.env.LOG_REQUESTS === 'true';
let served = 0;
let inFlight = 0;
let maxInFlight = 0;

const server = http.createServer((req, res) => {
  inFlight += 1;
  maxInFlight = Math.max(maxInFlight, inFlight);
  let counted = true;
  const done = (): void => {
    if (counted) inFlight -= 1;
    counted = false;
  };
  res.once('finish', done);
  res.once('close', done);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    served += 1;
    if (logRequests)
      console.log(
        `${req.method ?? '-'} ${req.url ?? '-'} from ${req.socket.remoteAddress ?? '-'}:${req.socket.remotePort ?? '-'}`,
      );
    const n = served;
    const answer = (): void => {
      if (failEvery > 0 && n % failEvery === 0) {
        res.writeHead(failStatus, { 'content-type': 'text/plain', 'x-echo-version': version });
        res.end(`failing request ${n}\n`);
        return;
      }
      const body = JSON.stringify({
        pod: podName,
        version,
        node: process.env.NODE_NAME,
        podIP: process.env.POD_IP,
        method: req.method,
        url: req.url,
        remote: req.socket.remoteAddress,
        bytes: Buffer.concat(chunks).length,
        // The trace context it was called with (the tracing scenario checks the waypoint's span).
        traceparent: req.headers.traceparent,
        served: n,
        inFlight,
        maxInFlight,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo-version': version });
      res.end(body + '\n');
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.listen(port, () => {
  console.log(`echo ${podName} listening on :${port}`);
});
const tlsPort = process.env.TLS_PORT === undefined ? undefined : Number(process.env.TLS_PORT);
const secure =
  tlsPort === undefined
    ? undefined
    : https
        .createServer({ cert: process.env.TLS_CERT ?? '', key: process.env.TLS_KEY ?? '' }, (req, res) =>
          server.emit('request', req, res),
        )
        .listen(tlsPort, () => {
          console.log(`echo ${podName} listening on :${tlsPort} (TLS)`);
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
  secure?.close();
  secure?.closeAllConnections();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
