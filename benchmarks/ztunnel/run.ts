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
// ZT_BENCH_PODS (pods enrolled for the RSS figure, default 100), ZT_BENCH_CONNECT_SECONDS
// (new-connection run, default 3), ZT_BENCH_CONNECT_CONCURRENCY (default 8), ZT_BENCH_HOLD
// (connections held for the memory-per-connection figure, default 10,000, capped by the open-files
// limit: the driver and ztunnel each need two descriptors per connection), ZT_BENCH_BASE (a checkout of another commit: each round runs
// its ztunnel and this one in turn, same topology, same run), ZT_BENCH_ROUNDS (default 3 with a
// base, else 1), ZT_BENCH_PROFILE_DIR (CPU profiles and heap snapshots of each ztunnel),
// ZT_BENCH_TOPOLOGY (`one-node`, the default: one ztunnel serves both pods and carries both hops;
// `two-nodes`: pod A's ztunnel and pod B's ztunnel are two processes, as on two nodes, sharing a
// CA, and each carries one hop of every connection; CPU figures add both up, memory figures are
// per ztunnel).
import { execFileSync, fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { closeFd, connectInNetns, listenInNetns, openNetns, SeqpacketServer } from '@ambient-mesh/netns';
import type { SeqpacketSocket } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';
import { CACERTS_FILES } from '@ambient-mesh/spiffe-certs';
import { createTestPluggedCerts } from '@ambient-mesh/spiffe-certs/testing';
import { WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';

const MiB = 1024 * 1024;

/**
 * The held connections asked for, or as many as the open-files limit allows: the driver (client
 * and server) and ztunnel (accepted and dialled socket) each take two descriptors per connection,
 * and each keeps 2,000 for everything else. Raising the limit needs CAP_SYS_RESOURCE.
 */
function heldConnections(wanted: number): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find(l => l.startsWith('Max open files'));
  const limit = Number(line?.split(/\s+/)[3] ?? Number.NaN);
  const room = Number.isFinite(limit) ? Math.floor((limit - 2000) / 2 / 1000) * 1000 : wanted;
  if (room >= wanted) return wanted;
  console.error(
    `[ztunnel bench] holding ${room} connections, not ${wanted}: the open-files limit is ${limit} (ulimit -n)`,
  );
  return Math.max(0, room);
}
const BULK_MIB = Number(process.env.ZT_BENCH_MIB ?? 256);
const LATENCY_SECONDS = Number(process.env.ZT_BENCH_SECONDS ?? 5);
const RSS_PODS = Number(process.env.ZT_BENCH_PODS ?? 100);
const CONNECT_SECONDS = Number(process.env.ZT_BENCH_CONNECT_SECONDS ?? 3);
const CONNECT_CONCURRENCY = Number(process.env.ZT_BENCH_CONNECT_CONCURRENCY ?? 8);
/** Connections opened and held through ztunnel for the memory-per-connection figure (0: skip). */
const HOLD = heldConnections(Number(process.env.ZT_BENCH_HOLD ?? 10_000));
/** How long the held connections' memory may take to come back after they closed. */
const HOLD_RETURN_MS = 60_000;
// ZT_BENCH_SETTLE_SECONDS: idle time after the last pod's enrolment before its RSS is taken.
const SETTLE_SECONDS = Number(process.env.ZT_BENCH_SETTLE_SECONDS ?? 20);
/** A checkout of another commit (e.g. `git worktree add --detach <dir> <base>` + npm ci): A/B run. */
const BASE = process.env.ZT_BENCH_BASE;
const ROUNDS = Number(process.env.ZT_BENCH_ROUNDS ?? (BASE === undefined ? 1 : 3));
/** Writes CPU profiles and heap snapshots (2 pods idle, all pods idle) of each ztunnel there. */
const PROFILE_DIR = process.env.ZT_BENCH_PROFILE_DIR;
const TOPOLOGY = process.env.ZT_BENCH_TOPOLOGY ?? 'one-node';
if (TOPOLOGY !== 'one-node' && TOPOLOGY !== 'two-nodes') {
  console.error(`ZT_BENCH_TOPOLOGY must be one-node or two-nodes, not ${TOPOLOGY}`);
  process.exit(2);
}
const TWO_NODES = TOPOLOGY === 'two-nodes';
/** This checkout. */
const SELF_ROOT = resolve(new URL('../..', import.meta.url).pathname);
/** Pods enrolled on the ztunnel whose memory is reported (pod A's) before the RSS run. */
const LOCAL_PODS = TWO_NODES ? 1 : 2;
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
// ZT_BENCH_NS_PREFIX: the netns names' prefix (default `ztb`), so parallel runs on one machine stay apart.
const NS_PREFIX = process.env.ZT_BENCH_NS_PREFIX ?? 'ztb';
const nodeNs = `${NS_PREFIX}-${id}-node`;
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
  const netns = `${NS_PREFIX}-${id}-${index}`;
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
  /** User-mode share of cpuMs (older builds' processes do not send it). */
  userMs?: number;
  rss: number;
  heapUsed?: number;
  heapTotal?: number;
  external?: number;
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
      // A new ztunnel process (the next build of an A/B run) starts a new ZDS conversation.
      this.#peer = socket;
      this.#replies.length = 0;
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

/** Connections opened, echoed one byte and closed, CONNECT_CONCURRENCY at a time; per second. */
async function connectRate(client: Pod, host: string): Promise<number> {
  let completed = 0;
  const deadline = performance.now() + CONNECT_SECONDS * 1000;
  const start = performance.now();
  const durations: number[] = [];
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    const socket = await connectFrom(client, host, 9001);
    await new Promise<void>((resolve, reject) => {
      socket.once('data', () => {
        resolve();
      });
      socket.once('error', reject);
      socket.write('x');
    });
    socket.destroy();
    durations.push(performance.now() - t0);
  };
  await Promise.all(
    Array.from({ length: CONNECT_CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        await one();
        completed++;
      }
    }),
  );
  durations.sort((x, y) => x - y);
  const at = (q: number): string =>
    (durations[Math.floor(q * (durations.length - 1))] ?? Number.NaN).toFixed(2);
  console.error(
    `[ztunnel bench] new connections to ${host}: ${durations.length}, open-echo-close p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms`,
  );
  return completed / ((performance.now() - start) / 1000);
}

/**
 * Opens HOLD connections (each echoes one byte, so its tunnel is up end to end), samples the
 * ztunnel, closes them all and waits (up to HOLD_RETURN_MS, no forced GC) for its RSS to come
 * back within 10 % of the growth.
 */
/** Anonymous vs file-backed resident memory of a process (`/proc/<pid>/smaps_rollup`). */
function rssSplit(pid: number | undefined): string {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (key: string): number =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return `anon ${(kib('Anonymous') / 1024).toFixed(1)} MiB, file ${((kib('Rss') - kib('Anonymous')) / 1024).toFixed(1)} MiB`;
  } catch {
    return 'smaps_rollup unreadable';
  }
}

/** The largest anonymous mappings of a process (`/proc/<pid>/smaps`), for the return trace. */
function smapsTop(pid: number | undefined): string {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const rows: [string, number][] = [];
  let name = '';
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null)
      name = `${header[3] || '[anon]'} ${((parseInt(header[2]!, 16) - parseInt(header[1]!, 16)) / 1024).toFixed(0)}k`;
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon !== null && Number(anon[1]) > 512) rows.push([name, Number(anon[1])]);
  }
  return rows
    .sort((x, y) => y[1] - x[1])
    .slice(0, 12)
    .map(([n, k]) => `${n}=${k}k`)
    .join(', ');
}

async function hold(
  zts: readonly ChildProcess[],
  client: Pod,
  host: string,
  profile?: string,
): Promise<{ perConnection: number; returnedMs: number; heldRss: number }> {
  const statsEach = (): Promise<Stats[]> => Promise.all(zts.map(zt => ask<Stats>(zt, 'stats')));
  const before = await statsEach();
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < HOLD; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, HOLD - i) }, async () => {
          const socket = await connectFrom(client, host, 9001);
          sockets.push(socket);
          await new Promise<void>((resolve, reject) => {
            socket.once('data', () => {
              resolve();
            });
            socket.once('error', reject);
            socket.write('x');
          });
        }),
      );
    }
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw err;
  }
  const held = await statsEach();
  const growth = held.map((h, i) => h.rss - before[i]!.rss);
  if (zts.length > 1) {
    console.error(
      `[ztunnel bench] per held connection, each ztunnel: ${growth.map(g => (g / HOLD / 1024).toFixed(1)).join(' / ')} KiB`,
    );
  }
  if (profile !== undefined) await heapSnapshot(zts[0]!, profile, `${HOLD} connections held`);
  for (const s of sockets) s.destroy();
  const closed = performance.now();
  // Back once every ztunnel is within 10 % of its own growth.
  const targets = before.map((b, i) => b.rss + growth[i]! * 0.1);
  let returnedMs = Number.POSITIVE_INFINITY;
  while (performance.now() - closed < HOLD_RETURN_MS) {
    const now = await statsEach();
    if (process.env.ZT_BENCH_TRACE_RETURN !== undefined) {
      const each = now.map(
        (n, i) =>
          `RSS ${(n.rss / MiB).toFixed(1)} MiB, heap ${(n.heapUsed! / MiB).toFixed(1)} / ${(n.heapTotal! / MiB).toFixed(1)}, ${rssSplit(zts[i]!.pid)}`,
      );
      console.error(
        `[ztunnel bench] ${((performance.now() - closed) / 1000).toFixed(1)} s after close: ${each.join('; ')}`,
      );
    }
    if (returnedMs === Number.POSITIVE_INFINITY && now.every((n, i) => n.rss <= targets[i]!)) {
      returnedMs = performance.now() - closed;
      if (process.env.ZT_BENCH_TRACE_RETURN === undefined) break;
    }
    await new Promise(resolve => setTimeout(resolve, 500));
  }
  if (process.env.ZT_BENCH_TRACE_RETURN !== undefined)
    console.error(`[ztunnel bench] mappings: ${smapsTop(zts[0]!.pid)}`);
  // The larger ztunnel's growth: with one ztunnel that is both hops, with two it is one hop each.
  return { perConnection: Math.max(...growth) / HOLD, returnedMs, heldRss: held[0]!.rss };
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
// One build's ztunnel, measured

interface Build {
  readonly name: string;
  /** The checkout whose benchmarks/ztunnel/ztunnel-process.ts (and so whose ztunnel) runs. */
  readonly root: string;
}

interface Result {
  bulkDirect: number;
  bulkZt: number;
  /** ztunnel CPU-seconds per GiB moved through both hops (one process serves both). */
  cpuPerGib: number;
  /** Of cpuPerGib, the share in user mode (the rest is the kernel's TCP work and syscalls). */
  userShare: number;
  latDirect: { p50: number; p90: number; p99: number };
  latZt: { p50: number; p90: number; p99: number };
  cpuPer1000: number;
  connDirect: number;
  connZt: number;
  cpuPer1000Conn: number;
  /** RSS growth per held connection (bytes); NaN when not measured. */
  holdPerConnection: number;
  /** Milliseconds until RSS was back within 10 % of the growth after closing them (Infinity: not within the bound). */
  holdReturnedMs: number;
  rssIdle: number;
  rssIdleSettled: number;
  rssAfterTraffic: number;
  rssFull: number;
  pods: number;
}

/**
 * The Node flags a build runs ztunnel with: those of its local cluster's image command
 * (e2e/images.json, `{node} <flags> <main.ts>`), so each build is measured as it ships.
 */
/**
 * The ztunnel-process script of a build in its shipping form: builds whose image runs the
 * bundle (apps/ztunnel/tools/bundle.mjs) get ztunnel-process.ts bundled the same way, next to
 * the image's bundle; older builds run the TypeScript source, as their image command did.
 */
function ztunnelScript(root: string): string {
  let source = join(root, 'benchmarks/ztunnel/ztunnel-process.ts');
  if (TWO_NODES && !readFileSync(source, 'utf8').includes('ZT_BENCH_CA_DIR')) {
    // An older build's harness gives each ztunnel a CA of its own, so two of them would not trust
    // each other: that build runs this checkout's harness instead, next to its own. The harness
    // only feeds WDS and ZDS; the ztunnel under test is still the build's own.
    const shared = join(root, 'benchmarks/ztunnel/ztunnel-process.shared-ca.ts');
    // Removed when the run ends; registered once although each round copies it again.
    if (!existsSync(shared)) {
      cleanups.push(() => {
        rmSync(shared, { force: true });
      });
    }
    copyFileSync(join(SELF_ROOT, 'benchmarks/ztunnel/ztunnel-process.ts'), shared);
    source = shared;
  }
  const bundler = join(root, 'apps/ztunnel/tools/bundle.mjs');
  if (!existsSync(bundler)) return source;
  const out = join(root, 'apps/ztunnel/dist/bench-ztunnel-process.mjs');
  const result = spawnSync(process.execPath, [bundler, source, out], { encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) {
    throw new Error(`bundling ${source} failed (exit ${String(result.status)}): ${result.stderr}`);
  }
  return out;
}

/** A build's ztunnel image as its e2e/images.json describes it: command line and environment. */
function ztunnelImage(root: string): { command: string[]; env: Record<string, string> } {
  const images = JSON.parse(readFileSync(join(root, 'e2e/images.json'), 'utf8')) as {
    images: Record<string, { command?: string[]; env?: Record<string, string> }>;
  };
  const image = images.images['ambient-mesh/ztunnel'];
  return { command: image?.command ?? [], env: image?.env ?? {} };
}

function ztunnelNodeFlags(root: string): string[] {
  // ZT_BENCH_NODE_FLAGS: extra Node/V8 flags for every build's ztunnel (space-separated), for trials.
  const extra = (process.env.ZT_BENCH_NODE_FLAGS ?? '').split(' ').filter(f => f !== '');
  return [...ztunnelImage(root).command.slice(1, -1), ...extra];
}

async function heapSnapshot(child: ChildProcess, dir: string, label: string): Promise<void> {
  const before = new Set(readdirSync(dir));
  child.kill('SIGUSR2');
  let file: string | undefined;
  let size = -1;
  await waitUntil(
    `heap snapshot ${label}`,
    () => {
      file ??= readdirSync(dir).find(f => f.endsWith('.heapsnapshot') && !before.has(f));
      if (file === undefined) return Promise.resolve(false);
      const now = statSync(join(dir, file)).size;
      const stable = now > 0 && now === size;
      size = now;
      return new Promise(r =>
        setTimeout(() => {
          r(stable);
        }, 500),
      );
    },
    120_000,
  );
  console.error(`[ztunnel bench] heap snapshot ${label}: ${join(dir, file!)}`);
}

/** Where a ztunnel of the run is enrolled from: the ZDS server (the CNI side) on its socket. */
interface ZtunnelNode {
  readonly uds: string;
  readonly cni: Cni;
}

/** CPU added up over a build's ztunnels; memory and readiness as the first one (pod A's) sees them. */
async function statsOf(zts: readonly ChildProcess[]): Promise<Stats> {
  const each = await Promise.all(zts.map(zt => ask<Stats>(zt, 'stats')));
  const first = each[0]!;
  const sum = (pick: (s: Stats) => number | undefined): number | undefined =>
    each.some(s => pick(s) === undefined) ? undefined : each.reduce((total, s) => total + pick(s)!, 0);
  const total: Stats = { ...first, cpuMs: sum(s => s.cpuMs)!, ready: each.every(s => s.ready) };
  // A user-mode figure only when every ztunnel sent one (older builds' harnesses do not).
  const userMs = sum(s => s.userMs);
  if (userMs === undefined) delete total.userMs;
  else total.userMs = userMs;
  return total;
}

async function measure(
  build: Build,
  round: number,
  pods: { a: Pod; b: Pod; c: Pod; d: Pod; extra: Pod[] },
  nodes: readonly ZtunnelNode[],
  sink: { total: number; target: number; done?: () => void },
  caDir: string | undefined,
): Promise<Result> {
  const { a, b, c, d, extra } = pods;
  const script = ztunnelScript(build.root);
  const profile = PROFILE_DIR === undefined ? undefined : join(PROFILE_DIR, `${build.name}-${round}`);
  if (profile !== undefined) mkdirSync(profile, { recursive: true });
  const zts = nodes.map(node =>
    fork(script, [], {
      execArgv: [
        ...ztunnelNodeFlags(build.root),
        ...(profile === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${profile}`, '--heapsnapshot-signal=SIGUSR2']),
      ],
      cwd: profile ?? build.root,
      // The image's environment (e.g. the C heap's arena limit), as the build's image sets it.
      env: {
        ...process.env,
        ...ztunnelImage(build.root).env,
        ZT_BENCH_UDS: node.uds,
        ...(caDir === undefined ? {} : { ZT_BENCH_CA_DIR: caDir }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  // Pod A's ztunnel: the one whose memory is reported.
  const zt = zts[0]!;
  const kill = (): void => {
    for (const child of zts) child.kill('SIGKILL');
  };
  cleanups.push(kill);
  try {
    await Promise.all(zts.map(child => new Promise(resolve => child.once('message', resolve))));
    const spec = (p: Pod) => ({ name: p.name, ip: p.ip, sa: `sa-${p.name}` });
    for (const child of zts) await ask(child, { pods: [spec(a), spec(b)] });
    // One node: A and B on the one ztunnel. Two nodes: A on the first, B on the second.
    const enrolments = TWO_NODES ? [[a], [b]] : [[a, b]];
    for (const [i, local] of enrolments.entries()) {
      for (const pod of local) await nodes[i]!.cni.add(pod);
      await nodes[i]!.cni.snapshotSent();
    }
    await waitUntil('ztunnel ready', async () => (await statsOf(zts)).ready);
    const idle = await ask<Stats>(zt, 'stats');
    console.error(`[ztunnel bench] ${build.name}: ${LOCAL_PODS} pods idle: ${rssSplit(zt.pid)}`);
    if (process.env.ZT_BENCH_TRACE_RETURN !== undefined)
      console.error(`[ztunnel bench] idle mappings: ${smapsTop(zt.pid)}`);
    if (profile !== undefined) await heapSnapshot(zt, profile, `${build.name} ${LOCAL_PODS} pods idle`);
    // The same, SETTLE_SECONDS later: what an idle ztunnel keeps once its start-up is behind it.
    await new Promise(resolve => setTimeout(resolve, SETTLE_SECONDS * 1000));
    const idleSettled = await ask<Stats>(zt, 'stats');
    console.error(
      `[ztunnel bench] ${build.name}: ${LOCAL_PODS} pods idle, ${SETTLE_SECONDS} s later: ${rssSplit(zt.pid)}`,
    );

    // Warm-up: certificates, pooled HBONE connection, JIT.
    await latency(a, b.ip);

    const bulkDirect = await bulk(c, d.ip, sink);
    const beforeBulk = await statsOf(zts);
    const bulkZt = await bulk(a, b.ip, sink);
    const afterBulk = await statsOf(zts);
    const cpuPerGib = (afterBulk.cpuMs - beforeBulk.cpuMs) / 1000 / (BULK_MIB / 1024);
    const userShare =
      ((afterBulk.userMs ?? Number.NaN) - (beforeBulk.userMs ?? Number.NaN)) /
      (afterBulk.cpuMs - beforeBulk.cpuMs);
    const latDirect = await latency(c, d.ip);
    const before = await statsOf(zts);
    const latZt = await latency(a, b.ip);
    const after = await statsOf(zts);
    const cpuPer1000 = (after.cpuMs - before.cpuMs) / 1000 / (latZt.count / 1000);
    const connDirect = await connectRate(c, d.ip);
    const beforeConn = await statsOf(zts);
    const connZt = await connectRate(a, b.ip);
    const afterConn = await statsOf(zts);
    const cpuPer1000Conn = (afterConn.cpuMs - beforeConn.cpuMs) / 1000 / ((connZt * CONNECT_SECONDS) / 1000);
    const held = HOLD > 0 ? await hold(zts, a, b.ip, profile) : undefined;
    const afterTraffic = await ask<Stats>(zt, 'stats');

    // RSS with RSS_PODS enrolled pods on pod A's ztunnel (listeners 15001/15006/15008 each, one
    // identity each).
    await ask(zt, { pods: [a, b, ...extra].map(spec) });
    for (const pod of extra) await nodes[0]!.cni.add(pod);
    await waitUntil('all pods up', async () => (await ask<Stats>(zt, 'stats')).ready, 60_000);
    const enrolled = await ask<Stats>(zt, 'stats');
    // Then idle for SETTLE_SECONDS, as a node's ztunnel is between enrolments (the certificate work
    // of the new pods leaves garbage; a build that returns it does so on its own).
    await new Promise(resolve => setTimeout(resolve, SETTLE_SECONDS * 1000));
    const full = await ask<Stats>(zt, 'stats');
    const podCount = LOCAL_PODS + extra.length;
    console.error(
      `[ztunnel bench] ${build.name}: ${podCount} pods, right after enrolment ${(enrolled.rss / MiB).toFixed(1)} MiB, ${SETTLE_SECONDS} s later ${(full.rss / MiB).toFixed(1)} MiB: ${rssSplit(zt.pid)}`,
    );
    const mib = (n?: number): string => (n === undefined ? '?' : (n / MiB).toFixed(1));
    console.error(
      `[ztunnel bench] ${build.name}: heap used / total / external MiB: ${LOCAL_PODS} pods idle ${mib(idle.heapUsed)} / ${mib(idle.heapTotal)} / ${mib(idle.external)}, after traffic ${mib(afterTraffic.heapUsed)} / ${mib(afterTraffic.heapTotal)} / ${mib(afterTraffic.external)}, ${podCount} pods ${mib(full.heapUsed)} / ${mib(full.heapTotal)} / ${mib(full.external)}`,
    );
    if (profile !== undefined) await heapSnapshot(zt, profile, `${build.name} ${podCount} pods idle`);
    const exited = Promise.all(zts.map(child => new Promise(resolve => child.once('exit', resolve))));
    for (const child of zts) child.send('quit');
    await exited;
    return {
      bulkDirect,
      bulkZt,
      cpuPerGib,
      userShare,
      latDirect,
      latZt,
      cpuPer1000,
      connDirect,
      connZt,
      cpuPer1000Conn,
      holdPerConnection: held?.perConnection ?? Number.NaN,
      holdReturnedMs: held?.returnedMs ?? Number.NaN,
      rssIdle: idle.rss,
      rssIdleSettled: idleSettled.rss,
      rssAfterTraffic: afterTraffic.rss,
      rssFull: full.rss,
      pods: podCount,
    };
  } finally {
    kill();
    cleanups.splice(cleanups.indexOf(kill), 1);
  }
}

/** `median (min–max)` of a figure over the rounds. */
function spread(values: readonly number[], digits: number): string {
  const sorted = [...values].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const f = (n: number): string => n.toFixed(digits);
  return sorted.length === 1 ? f(median) : `${f(median)} (${f(sorted[0]!)}–${f(sorted[sorted.length - 1]!)})`;
}

function report(results: ReadonlyMap<string, Result[]>): void {
  const builds = [...results.keys()];
  const rows: [string, (r: Result) => number, number][] = [
    ['bulk direct TCP, 1 connection (MiB/s)', r => r.bulkDirect, 0],
    ['bulk through two ztunnel hops, 1 connection (MiB/s)', r => r.bulkZt, 0],
    [`ztunnel CPU-s per GiB of bulk, both hops${TWO_NODES ? ' (both ztunnels)' : ''}`, r => r.cpuPerGib, 2],
    ['  of which user mode (share)', r => r.userShare, 2],
    ['1 KiB req/resp p50 direct (ms)', r => r.latDirect.p50, 3],
    ['1 KiB req/resp p50 via ztunnel (ms)', r => r.latZt.p50, 3],
    ['1 KiB req/resp p90 direct (ms)', r => r.latDirect.p90, 3],
    ['1 KiB req/resp p90 via ztunnel (ms)', r => r.latZt.p90, 3],
    ['1 KiB req/resp p99 direct (ms)', r => r.latDirect.p99, 3],
    ['1 KiB req/resp p99 via ztunnel (ms)', r => r.latZt.p99, 3],
    [`ztunnel CPU-s per 1000 requests (${RATE} rps)`, r => r.cpuPer1000, 3],
    ['new connections/s direct', r => r.connDirect, 0],
    ['new connections/s via ztunnel', r => r.connZt, 0],
    ['ztunnel CPU-s per 1000 new connections', r => r.cpuPer1000Conn, 3],
    [
      `RSS growth per held connection, ${HOLD} held, ${TWO_NODES ? 'the larger ztunnel, one hop each' : 'both hops in one ztunnel'} (KiB)`,
      r => r.holdPerConnection / 1024,
      1,
    ],
    [
      `seconds until that memory came back after closing (within 10 %; ∞ = not in ${HOLD_RETURN_MS / 1000} s)`,
      r => r.holdReturnedMs / 1000,
      1,
    ],
    [`ztunnel RSS, ${LOCAL_PODS} enrolled pods, idle (MiB)`, r => r.rssIdle / MiB, 1],
    [
      `ztunnel RSS, ${LOCAL_PODS} enrolled pods, idle ${SETTLE_SECONDS} s longer (MiB)`,
      r => r.rssIdleSettled / MiB,
      1,
    ],
    [`ztunnel RSS, ${LOCAL_PODS} pods, after the runs (MiB)`, r => r.rssAfterTraffic / MiB, 1],
    [
      `ztunnel RSS, ${RSS_PODS} enrolled pods, ${SETTLE_SECONDS} s after enrolment (MiB)`,
      r => r.rssFull / MiB,
      1,
    ],
    [
      `RSS per further enrolled pod, against ${LOCAL_PODS} pods after the runs (MiB)`,
      r => (r.rssFull - r.rssAfterTraffic) / MiB / (r.pods - LOCAL_PODS),
      3,
    ],
    [
      `RSS per further enrolled pod, against ${LOCAL_PODS} pods idle (MiB)`,
      r => (r.rssFull - r.rssIdle) / MiB / (r.pods - LOCAL_PODS),
      3,
    ],
  ];
  console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
  console.log(
    `Settings: ${TOPOLOGY} (${TWO_NODES ? "pod A's and pod B's ztunnels are two processes" : 'one ztunnel serves both pods'}), bulk ${BULK_MIB} MiB, latency ${LATENCY_SECONDS} s at ${RATE} rps over ${CONNECTIONS} connections, new connections ${CONNECT_SECONDS} s ${CONNECT_CONCURRENCY} at a time, ${RSS_PODS} pods; ${ROUNDS} round(s), builds alternating; median (min–max).`,
  );
  console.log('');
  console.log(`| measure | ${builds.join(' | ')} |`);
  console.log(`|---|${builds.map(() => '---').join('|')}|`);
  for (const [label, pick, digits] of rows) {
    console.log(`| ${label} | ${builds.map(b => spread(results.get(b)!.map(pick), digits)).join(' | ')} |`);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ztunnel-bench-'));
cleanups.push(() => {
  rmSync(dir, { recursive: true, force: true });
});
try {
  createNode();
  const [a, b, c, d] = [0, 1, 2, 3].map(createPod) as [Pod, Pod, Pod, Pod];
  // The connection runs close tens of thousands of connections a minute from the same client, and
  // the closing side keeps each in TIME_WAIT for 60 s: with the default 28,000 ports a later run
  // (the other build's) searched for free ports and fell to a tenth of its rate. Both paths get the
  // same settings.
  for (const pod of [a, b, c, d]) {
    ip(
      'netns',
      'exec',
      pod.netns,
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=1024 65535',
    );
  }
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
  const extra = Array.from({ length: Math.max(0, RSS_PODS - LOCAL_PODS) }, (_, i) => createPod(i + 4));

  const nodes = Array.from({ length: TWO_NODES ? 2 : 1 }, (_, i): ZtunnelNode => {
    const uds = join(dir, `ztunnel-${i}.sock`);
    const cni = new Cni(uds);
    cleanups.push(() => {
      cni.close();
    });
    return { uds, cni };
  });
  // Two ztunnels must trust each other's certificates: one CA for the run, in Istio's layout.
  let caDir: string | undefined;
  if (TWO_NODES) {
    caDir = join(dir, 'cacerts');
    mkdirSync(caDir);
    const certs = await createTestPluggedCerts();
    writeFileSync(join(caDir, CACERTS_FILES.caCert), certs.caCertPem);
    writeFileSync(join(caDir, CACERTS_FILES.caKey), certs.caKeyPem);
    writeFileSync(join(caDir, CACERTS_FILES.rootCert), certs.rootCertPem);
    if (certs.certChainPem !== undefined)
      writeFileSync(join(caDir, CACERTS_FILES.certChain), certs.certChainPem);
  }
  const self: Build = { name: 'this build', root: SELF_ROOT };
  const builds: Build[] =
    BASE === undefined ? [self] : [{ name: `base (${BASE})`, root: resolve(BASE) }, self];
  const results = new Map<string, Result[]>(builds.map(b => [b.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which build goes first, so neither always meets the same machine state.
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const build of order) {
      const result = await measure(build, round, { a, b, c, d, extra }, nodes, sink, caDir);
      results.get(build.name)!.push(result);
      console.error(
        `[ztunnel bench] round ${round + 1} ${build.name}: bulk ${result.bulkZt.toFixed(0)} MiB/s, ${result.cpuPerGib.toFixed(2)} CPU-s/GiB, p50 ${result.latZt.p50.toFixed(3)} ms, ${result.connZt.toFixed(0)} conn/s, RSS ${(result.rssIdle / MiB).toFixed(1)}/${(result.rssFull / MiB).toFixed(1)} MiB`,
      );
    }
  }
  report(results);
} finally {
  cleanup();
}
