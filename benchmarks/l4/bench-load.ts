// The client side of the L4 benchmark (image ambient-mesh/l4-bench-load), run in pod A. It waits
// for the driver's orders on a control port bound to the pod's loopback (which the in-pod
// redirection never captures) and answers each run with one JSON object:
//   GET /bulk?host=H&mib=N                       one connection uploads N MiB to H:SINK_PORT
//   GET /latency?host=H&rate=R&conns=C&seconds=S 1 KiB request/response, open loop, to H:ECHO_PORT
//   GET /connect?host=H&concurrency=C&seconds=S  new connections per second to H:ACCEPT_PORT
//   GET /http?host=H&port=P&rate=R&conns=C&seconds=S  1 KiB HTTP/1.1 POST, 1 KiB answer, open loop
//       over C kept-alive connections (rate 0: closed loop, saturation); for the L7 benchmark
// Every run is bounded by its size or duration plus a deadline. Env: CONTROL_PORT (9100).
import { Agent, createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

const CONTROL_PORT = Number(process.env.CONTROL_PORT ?? '9100');
const SINK_PORT = Number(process.env.SINK_PORT ?? '9000');
const ECHO_PORT = Number(process.env.ECHO_PORT ?? '9001');
const ACCEPT_PORT = Number(process.env.ACCEPT_PORT ?? '9002');
const MiB = 1024 * 1024;
const REQUEST_BYTES = 1024;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function open(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', e => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

interface BulkResult {
  readonly mib: number;
  readonly seconds: number;
  readonly mibPerSecond: number;
  readonly counted: number;
}

async function bulk(host: string, mib: number): Promise<BulkResult> {
  const socket = await open(host, SINK_PORT, 10_000);
  const chunk = Buffer.alloc(MiB, 0x5a);
  const start = now();
  let answer = '';
  const answered = new Promise<void>((resolve, reject) => {
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => (answer += s));
    socket.once('end', resolve);
    socket.once('error', reject);
    socket.setTimeout(60_000, () => {
      socket.destroy(new Error('bulk transfer stalled for 60 s'));
    });
  });
  for (let i = 0; i < mib; i++) {
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onClose = (): void => {
          reject(new Error('connection closed during the upload'));
        };
        socket.once('close', onClose);
        socket.once('drain', () => {
          socket.off('close', onClose);
          resolve();
        });
      });
    }
  }
  socket.end();
  await answered;
  const seconds = (now() - start) / 1000;
  socket.destroy();
  return { mib, seconds, mibPerSecond: mib / seconds, counted: Number(answer.trim()) };
}

interface LatencyResult {
  readonly sent: number;
  readonly received: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Open loop: request i leaves at start + i/rate on connection i % conns; latency counts from that time. */
async function latency(host: string, rate: number, conns: number, seconds: number): Promise<LatencyResult> {
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(host, ECHO_PORT, 10_000)));
  const total = Math.round(rate * seconds);
  const samples: number[] = [];
  const request = Buffer.alloc(REQUEST_BYTES, 0x31);
  const queues = sockets.map(() => ({ times: [] as number[], head: 0, pending: 0 }));
  let finish: () => void = () => undefined;
  const finished = new Promise<void>(resolve => (finish = resolve));
  sockets.forEach((socket, i) => {
    const q = queues[i]!;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      q.pending += chunk.length;
      const t = now();
      while (q.pending >= REQUEST_BYTES && q.head < q.times.length) {
        q.pending -= REQUEST_BYTES;
        samples.push(t - q.times[q.head++]!);
      }
      if (samples.length === total) finish();
    });
  });
  const start = now() + 5;
  let sent = 0;
  const ticker = setInterval(() => {
    const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      const i = sent % conns;
      queues[i]!.times.push(start + (sent * 1000) / rate);
      sockets[i]!.write(request);
    }
    if (sent >= total) clearInterval(ticker);
  }, 1);
  const deadline = setTimeout(finish, seconds * 1000 + 15_000);
  await finished;
  clearInterval(ticker);
  clearTimeout(deadline);
  for (const s of sockets) s.destroy();
  const sorted = samples.sort((a, b) => a - b);
  return {
    sent,
    received: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

interface ConnectResult {
  readonly completed: number;
  readonly failed: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** One round trip on a new connection: connect, read the server's byte, see its close. */
function oneConnection(host: string): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect({ host, port: ACCEPT_PORT, noDelay: true });
    let got = false;
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', () => (got = true));
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      resolve(got);
    });
  });
}

/** Closed loop: `concurrency` workers each open connections back to back for `seconds`. */
async function connectRate(host: string, concurrency: number, seconds: number): Promise<ConnectResult> {
  let completed = 0;
  let failed = 0;
  const start = now();
  const end = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    // Bounded by the clock; each iteration is bounded by the socket timeout.
    while (now() < end) {
      if (await oneConnection(host)) completed++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (now() - start) / 1000;
  return { completed, failed, seconds: elapsed, perSecond: completed / elapsed };
}

interface HttpResult extends LatencyResult {
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
}

function post(agent: Agent, host: string, port: number, body: Buffer): Promise<number> {
  return new Promise(resolve => {
    const req = httpRequest(
      {
        agent,
        host,
        port,
        method: 'POST',
        path: '/bench',
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
        timeout: 30_000,
      },
      res => {
        res.on('data', () => undefined);
        res.on('end', () => {
          resolve(res.statusCode ?? 0);
        });
        res.on('error', () => {
          resolve(0);
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(0);
    });
    req.end(body);
  });
}

/**
 * HTTP/1.1 over `conns` kept-alive connections. rate > 0: open loop, request i due at
 * start + i/rate, latency from that time (queued requests wait in the agent). rate 0: closed loop,
 * `conns` requests in flight for `seconds`. Bounded by the count or the clock plus a deadline.
 */
async function httpRun(
  host: string,
  port: number,
  rate: number,
  conns: number,
  seconds: number,
): Promise<HttpResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  agent.on('free', (socket: Socket) => socket.setNoDelay(true));
  const body = Buffer.alloc(REQUEST_BYTES, 0x31);
  const samples: number[] = [];
  let errors = 0;
  let sent = 0;
  const start = now() + 5;
  if (rate > 0) {
    const total = Math.round(rate * seconds);
    const pending: Promise<void>[] = [];
    await new Promise<void>(resolve => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
        for (; sent < due; sent++) {
          const scheduled = start + (sent * 1000) / rate;
          pending.push(
            post(agent, host, port, body).then(status => {
              if (status === 200) samples.push(now() - scheduled);
              else errors++;
            }),
          );
        }
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      setTimeout(tick, 5);
    });
    await Promise.race([Promise.all(pending), new Promise(resolve => setTimeout(resolve, 30_000))]);
  } else {
    const end = start + seconds * 1000;
    await Promise.all(
      Array.from({ length: conns }, async () => {
        while (now() < end) {
          const t = now();
          sent++;
          const status = await post(agent, host, port, body);
          if (status === 200) samples.push(now() - t);
          else errors++;
        }
      }),
    );
  }
  const elapsed = (now() - start) / 1000;
  agent.destroy();
  const sorted = samples.sort((a, b) => a - b);
  return {
    sent,
    received: sorted.length,
    errors,
    seconds: elapsed,
    rps: sorted.length / elapsed,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

let busy = false;
const control = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const q = (name: string, fallback: number): number => Number(url.searchParams.get(name) ?? fallback);
  const host = url.searchParams.get('host') ?? '';
  const reply = (code: number, body: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  if (url.pathname === '/healthz') {
    reply(200, { ok: true });
    return;
  }
  const runs: Record<string, (() => Promise<unknown>) | undefined> = {
    '/bulk': () => bulk(host, q('mib', 256)),
    '/latency': () => latency(host, q('rate', 1000), q('conns', 4), q('seconds', 10)),
    '/connect': () => connectRate(host, q('concurrency', 8), q('seconds', 5)),
    '/http': () => httpRun(host, q('port', 80), q('rate', 1000), q('conns', 8), q('seconds', 10)),
  };
  const run = runs[url.pathname];
  if (run === undefined || host === '') {
    reply(404, { error: 'use /bulk, /latency, /connect or /http with ?host=' });
    return;
  }
  if (busy) {
    reply(409, { error: 'a run is in progress' });
    return;
  }
  busy = true;
  run().then(
    result => {
      busy = false;
      reply(200, result);
    },
    (e: unknown) => {
      busy = false;
      reply(500, { error: e instanceof Error ? e.message : String(e) });
    },
  );
});
control.listen(CONTROL_PORT, '127.0.0.1', () => {
  console.log(`l4-bench-load: control on 127.0.0.1:${CONTROL_PORT}`);
});
process.on('SIGTERM', () => {
  control.close();
  process.exit(0);
});
