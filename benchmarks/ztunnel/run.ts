// ztunnel: the data path through two in-pod ztunnel hops (one ztunnel process serving both pods)
// against direct TCP between two pods without capture, measured in the same run. Needs root.
//
// Byte path:
//   direct:  client in pod C --TCP--> server in pod D                (no rules, not enrolled)
//   ztunnel: client in pod A --nft REDIRECT--> ztunnel:15001 (in A) --HBONE mTLS--> ztunnel:15008
//            (in B) --TCP, source IP kept--> server in pod B
// Pods are network namespaces on a bridge in a "node" namespace; nothing is created in the root
// namespace. The driver is the CNI agent: it applies the in-pod rules (nft-rules) and enrols pods
// over the real ZDS SEQPACKET socket. ztunnel runs in a child process (ztunnel-process.ts).
//
//   npx node --conditions=@ambient-mesh/source benchmarks/ztunnel/run.ts
// Env: ZT_BENCH_MIB (bulk size, default 256), ZT_BENCH_SECONDS (latency run, default 5),
// ZT_BENCH_PODS (pods enrolled for the RSS figure, default 100).
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeFd, connectInNetns, listenInNetns, openNetns, SeqpacketServer } from '@ambient-mesh/netns';
import type { SeqpacketSocket } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';
import { WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';

const MiB = 1024 * 1024;
const BULK_MIB = Number(process.env.ZT_BENCH_MIB ?? 256);
const LATENCY_SECONDS = Number(process.env.ZT_BENCH_SECONDS ?? 5);
const RSS_PODS = Number(process.env.ZT_BENCH_PODS ?? 100);
const RATE = 1000;
const CONNECTIONS = 4;
const REQUEST = 1024;

if (process.getuid?.() !== 0) {
  console.error('benchmarks/ztunnel needs root (network namespaces, nftables)');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Topology

const cleanups: (() => void)[] = [];
function cleanup(): void {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {
      // Best effort: keep removing the rest.
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Pod {
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  readonly fd: number;
}

const id = `${process.pid % 10_000}${randomInt(100, 999)}`;
const nodeNs = `ztb-${id}-node`;
const subnet = `10.${randomInt(1, 250)}`;

function createNode(): void {
  ip('netns', 'add', nodeNs);
  cleanups.push(() => {
    ip('netns', 'del', nodeNs);
  });
  ip('-n', nodeNs, 'link', 'set', 'lo', 'up');
  ip('-n', nodeNs, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', nodeNs, 'addr', 'add', `${subnet}.0.1/16`, 'dev', 'br0');
  ip('-n', nodeNs, 'link', 'set', 'br0', 'up');
}

function createPod(index: number): Pod {
  const name = `pod-${index}`;
  const netns = `ztb-${id}-${index}`;
  const podIp = `${subnet}.${Math.floor((index + 2) / 250)}.${((index + 2) % 250) + 2}`;
  ip('netns', 'add', netns);
  cleanups.push(() => {
    ip('netns', 'del', netns);
  });
  ip('-n', netns, 'link', 'set', 'lo', 'up');
  ip('-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `zb${id}${index}`, 'netns', nodeNs);
  ip('-n', netns, 'addr', 'add', `${podIp}/16`, 'dev', 'eth0', 'nodad');
  ip('-n', netns, 'link', 'set', 'eth0', 'up');
  ip('-n', nodeNs, 'link', 'set', `zb${id}${index}`, 'master', 'br0', 'up');
  const fd = openNetns(`/run/netns/${netns}`);
  cleanups.push(() => {
    closeFd(fd);
  });
  return { name, netns, ip: podIp, fd };
}

// ---------------------------------------------------------------------------------------------
// ztunnel child and the CNI side of ZDS

interface Stats {
  cpuMs: number;
  rss: number;
  ready: boolean;
  pending: string[];
}

function ask<T>(child: ChildProcess, message: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => {
      reject(new Error(`the ztunnel process exited (${String(code)})`));
    };
    child.once('exit', onExit);
    child.once('message', reply => {
      child.off('exit', onExit);
      resolve(reply as T);
    });
    child.send(message as object);
  });
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

class Cni {
  readonly #server: SeqpacketServer;
  #peer: SeqpacketSocket | undefined;
  readonly #replies: Buffer[] = [];
  #waiters: (() => void)[] = [];

  constructor(path: string) {
    this.#server = SeqpacketServer.listen(path);
    this.#server.on('connection', socket => {
      this.#peer = socket;
      socket.on('message', message => {
        this.#replies.push(message.data);
        for (const w of this.#waiters.splice(0)) w();
      });
    });
  }

  async #request(data: Uint8Array, fds: number[] = []): Promise<string> {
    await waitUntil('ZDS connection and hello', () =>
      Promise.resolve(this.#peer !== undefined && this.#replies.length > 0),
    );
    const before = this.#replies.length;
    this.#peer?.send(data, fds);
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (this.#replies.length > before) resolve();
        else this.#waiters.push(check);
      };
      check();
    });
    return WorkloadResponseCodec.decode(this.#replies[before]!).ack?.error ?? '';
  }

  async add(pod: Pod): Promise<void> {
    const error = await this.#request(
      WorkloadRequestCodec.encode({
        add: {
          uid: `uid-${pod.name}`,
          workloadInfo: { name: pod.name, namespace: 'bench', serviceAccount: `sa-${pod.name}` },
        },
      }),
      [pod.fd],
    );
    if (error !== '') throw new Error(`ZDS add ${pod.name} NACKed: ${error}`);
  }

  async snapshotSent(): Promise<void> {
    await this.#request(WorkloadRequestCodec.encode({ snapshotSent: {} }));
  }

  close(): void {
    this.#peer?.close();
    this.#server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Load

async function serve(pod: Pod, port: number, onSocket: (socket: Socket) => void): Promise<Server> {
  const server = await listenInNetns(
    pod.fd,
    { host: '0.0.0.0', port },
    createServer({ allowHalfOpen: true }, onSocket),
  );
  cleanups.push(() => server.close());
  return server;
}

function connectFrom(pod: Pod, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectInNetns(pod.fd, { host, port });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Uploads BULK_MIB in 1 MiB writes; resolves with MiB/s once the sink has counted every byte. */
async function bulk(
  client: Pod,
  host: string,
  sink: { total: number; target: number; done?: () => void },
): Promise<number> {
  const socket = await connectFrom(client, host, 9000);
  sink.total = 0;
  sink.target = BULK_MIB * MiB;
  const finished = new Promise<void>(resolve => (sink.done = resolve));
  const chunk = Buffer.alloc(MiB, 7);
  const start = process.hrtime.bigint();
  for (let i = 0; i < BULK_MIB; i++) {
    if (!socket.write(chunk)) await new Promise(resolve => socket.once('drain', resolve));
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  return BULK_MIB / seconds;
}

/** 1 KiB request/response at RATE over CONNECTIONS; latency from the scheduled send time. */
async function latency(
  client: Pod,
  host: string,
): Promise<{ p50: number; p90: number; p99: number; count: number }> {
  const sockets = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => connectFrom(client, host, 9001)),
  );
  const samples: number[] = [];
  const total = RATE * LATENCY_SECONDS;
  const request = Buffer.alloc(REQUEST, 1);
  const start = performance.now();
  await Promise.all(
    sockets.map(
      (socket, c) =>
        new Promise<void>(resolve => {
          const scheduled: number[] = [];
          let received = 0;
          let sent = 0;
          const mine = Math.floor(total / CONNECTIONS);
          socket.on('data', chunk => {
            received += chunk.length;
            while (received >= REQUEST && scheduled.length > 0) {
              received -= REQUEST;
              samples.push(performance.now() - scheduled.shift()!);
            }
            if (sent === mine && scheduled.length === 0) resolve();
          });
          const tick = (): void => {
            // Open loop: send every request that is due, even if earlier ones are outstanding.
            const elapsedSlots = ((performance.now() - start) * RATE) / 1000;
            const due = Math.max(0, Math.min(mine, Math.floor((elapsedSlots - c) / CONNECTIONS) + 1));
            while (sent < due) {
              scheduled.push(start + ((sent * CONNECTIONS + c) * 1000) / RATE);
              socket.write(request);
              sent++;
            }
            if (sent < mine) setTimeout(tick, 1);
          };
          tick();
        }),
    ),
  );
  for (const s of sockets) s.destroy();
  samples.sort((a, b) => a - b);
  const q = (p: number): number =>
    samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? NaN;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), count: samples.length };
}

// ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'ztunnel-bench-'));
cleanups.push(() => {
  rmSync(dir, { recursive: true, force: true });
});
let child: ChildProcess | undefined;
try {
  createNode();
  const [a, b, c, d] = [0, 1, 2, 3].map(createPod) as [Pod, Pod, Pod, Pod];
  for (const pod of [a, b]) {
    await new InpodRedirection(netnsExecutor({ name: pod.netns }), {
      dnsCapture: false,
      ipv6: false,
    }).apply();
  }
  const sink = { total: 0, target: Infinity, done: undefined as (() => void) | undefined };
  for (const server of [b, d]) {
    await serve(server, 9000, socket => {
      socket.on('data', (chunk: Buffer) => {
        sink.total += chunk.length;
        if (sink.total >= sink.target) sink.done?.();
      });
      socket.on('end', () => socket.end());
      socket.on('error', () => undefined);
    });
    await serve(server, 9001, socket => {
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
  }

  const uds = join(dir, 'ztunnel.sock');
  const cni = new Cni(uds);
  cleanups.push(() => {
    cni.close();
  });
  const script = new URL('./ztunnel-process.ts', import.meta.url).pathname;
  const zt = fork(script, [], {
    execArgv: ['--conditions=@ambient-mesh/source'],
    env: { ...process.env, ZT_BENCH_UDS: uds },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child = zt;
  cleanups.push(() => zt.kill('SIGKILL'));
  await new Promise(resolve => zt.once('message', resolve));
  const spec = (p: Pod) => ({ name: p.name, ip: p.ip, sa: `sa-${p.name}` });
  await ask(zt, { pods: [spec(a), spec(b)] });
  for (const pod of [a, b]) await cni.add(pod);
  await cni.snapshotSent();
  await waitUntil('ztunnel ready', async () => (await ask<Stats>(zt, 'stats')).ready);
  const idle = await ask<Stats>(zt, 'stats');

  // Warm-up: certificates, pooled HBONE connection, JIT.
  await latency(a, b.ip);

  const bulkDirect = await bulk(c, d.ip, sink);
  const bulkZt = await bulk(a, b.ip, sink);
  const latDirect = await latency(c, d.ip);
  const before = await ask<Stats>(zt, 'stats');
  const latZt = await latency(a, b.ip);
  const after = await ask<Stats>(zt, 'stats');
  const cpuPer1000 = (after.cpuMs - before.cpuMs) / 1000 / (latZt.count / 1000);

  // RSS with RSS_PODS enrolled pods (listeners 15001/15006/15008 each, one identity each).
  const extra = Array.from({ length: Math.max(0, RSS_PODS - 2) }, (_, i) => createPod(i + 4));
  await ask(zt, { pods: [a, b, ...extra].map(spec) });
  for (const pod of extra) await cni.add(pod);
  await waitUntil('all pods up', async () => (await ask<Stats>(zt, 'stats')).ready, 60_000);
  const full = await ask<Stats>(zt, 'stats');

  const ms = (n: number): string => n.toFixed(3);
  console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
  console.log('');
  console.log('| measure | direct TCP | through two ztunnel hops | difference |');
  console.log('|---|---|---|---|');
  console.log(
    `| bulk upload, 1 connection (${BULK_MIB} MiB) | ${bulkDirect.toFixed(0)} MiB/s | ${bulkZt.toFixed(0)} MiB/s | ${((bulkZt / bulkDirect) * 100).toFixed(0)} % of direct |`,
  );
  for (const key of ['p50', 'p90', 'p99'] as const) {
    console.log(
      `| 1 KiB req/resp latency ${key} (${RATE} rps, ${CONNECTIONS} conns) | ${ms(latDirect[key])} ms | ${ms(latZt[key])} ms | +${ms(latZt[key] - latDirect[key])} ms |`,
    );
  }
  console.log('');
  console.log('| ztunnel process | value |');
  console.log('|---|---|');
  console.log(
    `| CPU per 1000 requests (${latZt.count} requests at ${RATE} rps) | ${cpuPer1000.toFixed(3)} CPU-s (= ${cpuPer1000.toFixed(3)} vCPU at 1000 rps) |`,
  );
  console.log(`| RSS, 2 enrolled pods, idle | ${(idle.rss / MiB).toFixed(1)} MiB |`);
  console.log(`| RSS, ${2 + extra.length} enrolled pods | ${(full.rss / MiB).toFixed(1)} MiB |`);
  const exited = new Promise(resolve => zt.once('exit', resolve));
  zt.send('quit');
  await exited;
} finally {
  child?.kill('SIGKILL');
  cleanup();
}
