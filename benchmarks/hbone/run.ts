// hbone: HTTP/2 CONNECT over mTLS against a plain Node TCP relay, measured in the same run.
//
// Byte path (both sides have the same shape; the middle hop runs in its own process):
//   baseline: load generator --TCP--> Node relay (net pipe) --TCP--> sink/echo
//   hbone:    load generator (HboneClient) --TLS 1.3 + h2 CONNECT--> HboneServer --TCP--> sink/echo
// The load generator and the sink/echo servers share this process.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/hbone/run.ts
// Env: HBONE_BENCH_MIB (bulk size, default 512), HBONE_BENCH_ROUNDS (alternating rounds per
// throughput figure, median reported; default 3), HBONE_BENCH_PARTS (throughput,rate,memory),
// HBONE_BENCH_PROFILE=<dir> (CPU-profile the middle hop with --cpu-prof). Every loop is bounded by count and time; all traffic stays on 127.0.0.1.
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Duplex, Readable, Writable } from 'node:stream';
import { HboneClient } from '@ambient-mesh/hbone';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';

const MiB = 1024 * 1024;
const BULK_MIB = Number(process.env.HBONE_BENCH_MIB ?? 512);
const PROFILE_DIR = process.env.HBONE_BENCH_PROFILE;
const PARTS = new Set((process.env.HBONE_BENCH_PARTS ?? 'throughput,rate,memory').split(','));
const ROUNDS = Number(process.env.HBONE_BENCH_ROUNDS ?? 3);
const RATE_MAX_MS = 3000;
const RATE_MAX_OPS = 5000;
const IDLE_STREAMS = 1000;

// ---------------------------------------------------------------------------------------------
// Identities

async function identities(): Promise<{
  server: HboneIdentity & { id: string };
  client: HboneIdentity & { id: string };
}> {
  const ca = await createTestCa();
  const make = async (sa: string) => {
    const id = `spiffe://cluster.local/ns/bench/sa/${sa}`;
    const creds = await issueRawCert(ca, id);
    return {
      id,
      certChain: creds.certChain.join(''),
      privateKey: creds.privateKeyPem,
      roots: ca.trustBundle.pem,
    };
  };
  return { server: await make('server'), client: await make('client') };
}

// ---------------------------------------------------------------------------------------------
// The middle hop, in a child process

interface Middle {
  readonly port: number;
  mem(): Promise<{ rss: number; heapUsed: number; external: number }>;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startMiddle(config: object, name: string): Promise<Middle> {
  const script = new URL('./relay-process.ts', import.meta.url).pathname;
  const flags = ['--expose-gc', '--conditions=@ambient-mesh/source'];
  if (PROFILE_DIR !== undefined)
    flags.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}.cpuprofile`);
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(process.execPath, [...flags, script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  child.stdin.write(`${JSON.stringify(config)}\n`);
  const first = await lines.next();
  const { port } = JSON.parse(String(first.value)) as { port: number };
  return {
    port,
    mem: async () => {
      child.stdin.write('mem\n');
      return JSON.parse(String((await lines.next()).value)) as {
        rss: number;
        heapUsed: number;
        external: number;
      };
    },
    cpuMs: async () => {
      child.stdin.write('cpu\n');
      return (JSON.parse(String((await lines.next()).value)) as { cpuMs: number }).cpuMs;
    },
    stop: async () => {
      child.stdin.write('quit\n');
      await once(child, 'exit');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Local sink and echo servers

interface Sink {
  readonly server: Server;
  readonly port: number;
  /** Resolves with the byte count of the next connection once it ended. */
  nextDone(): Promise<number>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function startSink(): Promise<Sink> {
  const waiting: ((n: number) => void)[] = [];
  const server = createServer({ allowHalfOpen: true, noDelay: true }, socket => {
    let n = 0;
    socket.on('data', (chunk: Buffer) => (n += chunk.length));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      socket.end();
      waiting.shift()?.(n);
    });
  });
  const port = await listen(server);
  return { server, port, nextDone: () => new Promise(resolve => waiting.push(resolve)) };
}

async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, socket => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  return { server, port: await listen(server) };
}

// ---------------------------------------------------------------------------------------------
// Measurements

const block = Buffer.alloc(MiB, 0x5a);

async function upload(dst: Writable, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!dst.write(block)) await once(dst, 'drain');
  }
  dst.end();
}

type Opener = () => Promise<Duplex>;

interface Throughput {
  readonly mibPerSecond: number;
  /** CPU ms per MiB in the middle hop and in this process (load generator + sink). */
  readonly middleCpu: number;
  readonly localCpu: number;
}

/** `streams` concurrent uploads of `bytes / streams` each, timed until the sink saw them all. */
async function throughput(
  open: Opener,
  sink: Sink,
  bytes: number,
  streams: number,
  middle: Middle,
): Promise<Throughput> {
  const each = Math.floor(bytes / streams / MiB) * MiB;
  const conns = await Promise.all(Array.from({ length: streams }, open));
  const done = Promise.all(conns.map(() => sink.nextDone()));
  const middleBefore = await middle.cpuMs();
  const localBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(conns.map(c => upload(c, each)));
  const counts = await done;
  const seconds = (performance.now() - start) / 1000;
  const local = process.cpuUsage(localBefore);
  const middleCpu = (await middle.cpuMs()) - middleBefore;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== each * streams) throw new Error(`sink saw ${total} bytes, expected ${each * streams}`);
  for (const c of conns) c.resume();
  const mib = total / MiB;
  return {
    mibPerSecond: mib / seconds,
    middleCpu: middleCpu / mib,
    localCpu: (local.user + local.system) / 1000 / mib,
  };
}

/** One short-lived exchange: open, 1-byte echo, END_STREAM / FIN both ways. */
async function exchange(open: Opener): Promise<void> {
  const conn = await open();
  const echoed = once(conn, 'data');
  conn.write('x');
  await echoed;
  const ended = once(conn, 'end');
  conn.end();
  conn.resume();
  await ended;
}

interface Rate {
  readonly ops: number;
  readonly perSecond: number;
}

async function rate(op: () => Promise<void>, concurrency: number, maxOps = RATE_MAX_OPS): Promise<Rate> {
  for (let i = 0; i < 20; i++) await op();
  let ops = 0;
  const start = performance.now();
  const deadline = start + RATE_MAX_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (ops < maxOps && performance.now() < deadline) {
        ops++;
        await op();
      }
    }),
  );
  return { ops, perSecond: ops / ((performance.now() - start) / 1000) };
}

setFlagsFromString('--expose-gc');
const localGc = runInNewContext('gc') as () => void;

function localHeap(): number {
  for (let i = 0; i < 3; i++) localGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Bytes of JS heap + external memory per idle stream, in the middle hop and in this process. */
async function idleMemory(open: Opener, middle: Middle): Promise<{ middle: number; local: number }> {
  const before = await middle.mem();
  const localBefore = localHeap();
  const conns: Duplex[] = [];
  for (let i = 0; i < IDLE_STREAMS; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, IDLE_STREAMS - i) }, open));
    // One byte each way, so the upstream side of every tunnel is fully set up.
    await Promise.all(
      batch.map(async c => {
        const echoed = once(c, 'data');
        c.write('x');
        await echoed;
      }),
    );
    conns.push(...batch);
  }
  const after = await middle.mem();
  const localAfter = localHeap();
  for (const c of conns) c.destroy();
  return {
    middle: (after.heapUsed + after.external - before.heapUsed - before.external) / IDLE_STREAMS,
    local: (localAfter - localBefore) / IDLE_STREAMS,
  };
}

/** CPU ms per MiB of AES-256-GCM in this Node (the TLS 1.3 record cipher): HBONE's floor per side. */
function cipherMsPerMiB(): number {
  const key = randomBytes(32);
  const data = Buffer.alloc(16 * 1024, 1);
  const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
  const start = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < 64 * 64; i++) {
    cipher.update(data);
    bytes += data.length;
  }
  cipher.final();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (bytes / MiB);
}

// ---------------------------------------------------------------------------------------------

function pct(value: number, base: number): string {
  return `${((value / base) * 100).toFixed(0)} %`;
}

const sink = await startSink();
const echo = await startEcho();
const ids = await identities();
const tcpSink = await startMiddle({ mode: 'tcp', upstreamPort: sink.port }, 'tcp-relay');
const tcpEcho = await startMiddle({ mode: 'tcp', upstreamPort: echo.port }, 'tcp-relay-echo');
const hbone = await startMiddle({ mode: 'hbone', identity: ids.server }, 'hbone-server');

const tcpOpen =
  (port: number): Opener =>
  () =>
    new Promise<Duplex>((resolve, reject) => {
      const s: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true });
      s.once('connect', () => {
        resolve(s);
      });
      s.once('error', reject);
    });
const pooled = new HboneClient();
const hboneOpen =
  (client: HboneClient, port: number): Opener =>
  () =>
    client.connect({
      target: `127.0.0.1:${port}`,
      nextHop: `127.0.0.1:${hbone.port}`,
      identity: ids.client,
      expectedIdentities: [ids.server.id],
    });

console.log(
  `Node ${process.version}, ${cpus().length} vCPU (${cpus()[0]?.model ?? '?'}), bulk ${BULK_MIB} MiB\n`,
);

// Warm-up of both paths (JIT, TLS session, pool).
await throughput(tcpOpen(tcpSink.port), sink, 64 * MiB, 1, tcpSink);
await throughput(hboneOpen(pooled, sink.port), sink, 64 * MiB, 1, hbone);

const median = (values: number[]): number =>
  [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

if (PARTS.has('throughput')) {
  // Baseline and HBONE alternate, so that load from other processes hits both alike.
  const bulk = BULK_MIB * MiB;
  const r = {
    t1Base: [] as Throughput[],
    t1: [] as Throughput[],
    t4Base: [] as Throughput[],
    t4: [] as Throughput[],
  };
  for (let round = 0; round < ROUNDS; round++) {
    r.t1Base.push(await throughput(tcpOpen(tcpSink.port), sink, bulk, 1, tcpSink));
    r.t1.push(await throughput(hboneOpen(pooled, sink.port), sink, bulk, 1, hbone));
    r.t4Base.push(await throughput(tcpOpen(tcpSink.port), sink, bulk, 4, tcpSink));
    r.t4.push(await throughput(hboneOpen(pooled, sink.port), sink, bulk, 4, hbone));
  }
  const rate = (v: Throughput[]): number => median(v.map(x => x.mibPerSecond));
  const all = (v: Throughput[]): string => v.map(x => x.mibPerSecond.toFixed(0)).join(' / ');
  const cpu = (v: Throughput[]): string =>
    `${median(v.map(x => x.middleCpu)).toFixed(2)} + ${median(v.map(x => x.localCpu)).toFixed(2)}`;
  console.log(
    `| throughput (upload, loopback; median of ${ROUNDS}, all runs in brackets) | plain TCP relay MiB/s | HBONE MiB/s | HBONE / relay |`,
  );
  console.log('|---|---|---|---|');
  for (const [name, base, h] of [
    ['1 stream', r.t1Base, r.t1],
    ['4 streams (one pooled connection)', r.t4Base, r.t4],
  ] as const) {
    console.log(
      `| ${name} | ${rate(base).toFixed(0)} (${all(base)}) | ${rate(h).toFixed(0)} (${all(h)}) | ${pct(rate(h), rate(base))} |`,
    );
  }
  console.log('');
  console.log('| CPU ms per MiB (middle hop + load generator/sink; median) | plain TCP relay | HBONE |');
  console.log('|---|---|---|');
  console.log(`| 1 stream | ${cpu(r.t1Base)} | ${cpu(r.t1)} |`);
  console.log(`| 4 streams | ${cpu(r.t4Base)} | ${cpu(r.t4)} |`);
  console.log(
    `| AES-256-GCM alone, 16 KiB updates (one side's cipher cost) | — | ${cipherMsPerMiB().toFixed(2)} |`,
  );
  console.log('');
}

if (PARTS.has('rate')) {
  const s1Base = await rate(() => exchange(tcpOpen(tcpEcho.port)), 1);
  const s1 = await rate(() => exchange(hboneOpen(pooled, echo.port)), 1);
  const s16Base = await rate(() => exchange(tcpOpen(tcpEcho.port)), 16);
  const s16 = await rate(() => exchange(hboneOpen(pooled, echo.port)), 16);
  const handshake = (): Promise<void> => {
    const fresh = new HboneClient();
    return exchange(hboneOpen(fresh, echo.port)).finally(() => {
      fresh.destroy();
    });
  };
  const h1 = await rate(handshake, 1, 2000);
  const h8 = await rate(handshake, 8, 2000);

  console.log('| rate (1-byte echo, graceful close) | plain TCP relay /s | HBONE /s | HBONE / relay |');
  console.log('|---|---|---|---|');
  console.log(
    `| new streams on a pooled connection, 1 in flight | ${s1Base.perSecond.toFixed(0)} (new TCP conns) | ${s1.perSecond.toFixed(0)} | ${pct(s1.perSecond, s1Base.perSecond)} |`,
  );
  console.log(
    `| new streams on a pooled connection, 16 in flight | ${s16Base.perSecond.toFixed(0)} (new TCP conns) | ${s16.perSecond.toFixed(0)} | ${pct(s16.perSecond, s16Base.perSecond)} |`,
  );
  console.log(
    `| new connections (mTLS handshake + stream), 1 in flight | ${s1Base.perSecond.toFixed(0)} | ${h1.perSecond.toFixed(0)} | ${pct(h1.perSecond, s1Base.perSecond)} |`,
  );
  console.log(
    `| new connections (mTLS handshake + stream), 8 in flight | ${s16Base.perSecond.toFixed(0)} (16 in flight) | ${h8.perSecond.toFixed(0)} | ${pct(h8.perSecond, s16Base.perSecond)} |`,
  );
  console.log('');
}

if (PARTS.has('memory')) {
  const memBase = await idleMemory(tcpOpen(tcpEcho.port), tcpEcho);
  const idleClient = new HboneClient();
  const mem = await idleMemory(hboneOpen(idleClient, echo.port), hbone);
  idleClient.destroy();

  const kib = (n: number): string => (n / 1024).toFixed(1);
  console.log(
    `| memory per idle stream (${IDLE_STREAMS} streams, 1 byte echoed each; JS heap + external after GC) | plain TCP relay KiB | HBONE KiB |`,
  );
  console.log('|---|---|---|');
  console.log(
    `| middle hop (relay / HBONE server, incl. upstream socket) | ${kib(memBase.middle)} | ${kib(mem.middle)} |`,
  );
  console.log(
    `| load generator + echo server (sockets / pooled HBONE tunnel) | ${kib(memBase.local)} | ${kib(mem.local)} |`,
  );
  console.log(
    `\n(per ${IDLE_STREAMS} idle streams, HBONE server: ${((mem.middle * IDLE_STREAMS) / MiB).toFixed(1)} MiB; ` +
      `plain relay: ${((memBase.middle * IDLE_STREAMS) / MiB).toFixed(1)} MiB. Native nghttp2/OpenSSL memory is not included.)`,
  );
}

pooled.destroy();
await Promise.all([tcpSink.stop(), tcpEcho.stop(), hbone.stop()]);
sink.server.close();
echo.server.close();
