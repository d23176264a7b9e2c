// waypoint: the real waypoint proxy on loopback, against a direct client→server baseline and the
// HBONE-only (L4) path, all in the same run. No root needed; all traffic stays on 127.0.0.1.
//
// Byte paths (the load generator is this process; the waypoint and the server side each run in
// their own process, so the waypoint's CPU time and RSS are its own):
//   direct:   undici --TCP--> HTTP server (HTTP/1.1 or h2c)
//   l4:       undici --HBONE (TLS 1.3 mTLS, h2 CONNECT, pooled)--> HBONE server --TCP--> HTTP server
//   waypoint: undici --HBONE--> waypoint:15008 (route, RBAC, metrics) --HBONE--> HBONE server
//             --TCP--> HTTP server
// The HBONE server in front of the HTTP server plays the server's ztunnel inbound; on the client
// side the load generator opens its HBONE tunnels itself (what the client's ztunnel does). The
// waypoint is configured over ADS (our xDS server) with Envoy resources as istiod writes them; the
// `policy` variant adds an HTTP RBAC ALLOW filter (10 policies) and 9 non-matching routes in front
// of the one that matches. Identities come from the spiffe-certs test CA.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/waypoint/run.ts
// Env: WP_BENCH_SECONDS (fixed-rate and saturation runs, default 5), WP_BENCH_RATES (default 200,1000),
// WP_BENCH_CONNECTIONS (default 8), WP_BENCH_ROUNDS (default 1; median and min–max reported),
// WP_BENCH_PARTS (fixed,saturation,ramp; default all), WP_BENCH_STEP_SECONDS (ramp step, default 3),
// WP_BENCH_FORMS (source,bundle: the waypoint process from its TypeScript sources, as the image ran
// it before, and bundled by apps/waypoint/tools/bundle.mjs, as the image ships it; default both, in the
// same run), WP_BENCH_WAYPOINT_FLAGS (Node flags for the waypoint processes, space-separated; default
// those of the local cluster's waypoint image command in e2e/images.json, as shipped),
// WP_BENCH_PROFILE_DIR (heap snapshots of the waypoint after each forced GC: idle, after each round).
// The waypoint's CPU time and RSS are read from /proc. Every loop is bounded by count and time.
import { fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Client } from 'undici';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { HboneClient, HboneIdentity } from '@ambient-mesh/hbone';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { AdsServer, MemoryResourceSource, ResourceTypeRegistry } from '@ambient-mesh/xds';
import type { ResourceType } from '@ambient-mesh/xds';
import { EnvoyType, decodeEnvoy, encodeEnvoy } from '@ambient-mesh/waypoint';
import {
  DENY_PROBE_PATH,
  REQUEST_PATH,
  SERVICES,
  assignment,
  cluster,
  listener,
  routeConfiguration,
} from './envoy-config.ts';
import type { Service } from './envoy-config.ts';
import { sampleProcesses } from '../l4/ztunnel-proc.ts';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.WP_BENCH_SECONDS ?? 5);
/** Fixed rates: the issue's 1000 rps, and a light rate that a loaded 2-vCPU machine still sustains. */
const RATES = (process.env.WP_BENCH_RATES ?? '200,1000').split(',').map(Number);
const CONNECTIONS = Number(process.env.WP_BENCH_CONNECTIONS ?? 8);
const ROUNDS = Number(process.env.WP_BENCH_ROUNDS ?? 1);
const PARTS = new Set((process.env.WP_BENCH_PARTS ?? 'fixed,saturation,ramp').split(','));
const STEP_SECONDS = Number(process.env.WP_BENCH_STEP_SECONDS ?? 3);
const RAMP_RATES = [100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000];
/** Bisection steps between the last rate that held p99 < 10 ms and the first that did not. */
const RAMP_REFINE_STEPS = 3;
const P99_TARGET_MS = 10;
const REQUEST = Buffer.alloc(1024, 0x31);
const WARMUP = 300;
const WAYPOINT_WARMUP = 3000;
const REPO = new URL('../../', import.meta.url).pathname;

/** The Node flags of the local cluster's waypoint image command (`{node} <flags> <script>`). */
function shippedFlags(): string[] {
  const images = JSON.parse(readFileSync(`${REPO}e2e/images.json`, 'utf8')) as {
    images: Record<string, { command?: string[] }>;
  };
  const command = images.images['ambient-mesh/waypoint']?.command ?? [];
  return command.slice(1, -1).filter(f => !f.startsWith('--conditions'));
}
/** Node flags for the waypoint processes: as shipped unless WP_BENCH_WAYPOINT_FLAGS says otherwise. */
const WAYPOINT_FLAGS =
  process.env.WP_BENCH_WAYPOINT_FLAGS === undefined
    ? shippedFlags()
    : process.env.WP_BENCH_WAYPOINT_FLAGS.split(' ').filter(f => f !== '');
type Form = 'source' | 'bundle';
const FORMS = (process.env.WP_BENCH_FORMS ?? 'source,bundle').split(',').map(f => {
  if (f !== 'source' && f !== 'bundle')
    throw new Error(`WP_BENCH_FORMS: '${f}' is neither source nor bundle`);
  return f;
});

const log = (line: string): void => {
  process.stderr.write(`[waypoint bench] ${line}\n`);
};
const now = (): number => performance.now();

// ---------------------------------------------------------------------------------------------
// Identities, the xDS server, the two child processes

type Identity = HboneIdentity & { readonly id: string };

async function identities(): Promise<{ client: Identity; waypoint: Identity; server: Identity }> {
  const ca = await createTestCa();
  const make = async (sa: string): Promise<Identity> => {
    const id = `spiffe://cluster.local/ns/bench/sa/${sa}`;
    const creds = await issueRawCert(ca, id);
    return {
      id,
      certChain: creds.certChain.join(''),
      privateKey: creds.privateKeyPem,
      roots: ca.trustBundle.pem,
    };
  };
  return { client: await make('client'), waypoint: await make('waypoint'), server: await make('server') };
}

class XdsServer {
  readonly source = new MemoryResourceSource();
  readonly ads: AdsServer;
  readonly #grpc = new grpc.Server();
  address = '';

  constructor() {
    const types: ResourceType<Record<string, unknown>>[] = [
      { typeUrl: TypeUrl.listener, typeName: EnvoyType.listener },
      { typeUrl: TypeUrl.routeConfiguration, typeName: EnvoyType.routeConfiguration },
      { typeUrl: TypeUrl.cluster, typeName: EnvoyType.cluster },
      { typeUrl: TypeUrl.clusterLoadAssignment, typeName: EnvoyType.clusterLoadAssignment },
    ].map(t => ({
      typeUrl: t.typeUrl,
      encode: (value: Record<string, unknown>) => encodeEnvoy(t.typeName, value),
      decode: (bytes: Uint8Array) => decodeEnvoy(t.typeName, bytes),
    }));
    this.ads = new AdsServer({ registry: new ResourceTypeRegistry(types), source: this.source });
    this.ads.register(this.#grpc);
  }

  async start(): Promise<void> {
    const port = await new Promise<number>((resolve, reject) => {
      this.#grpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err);
        else resolve(p);
      });
    });
    this.address = `127.0.0.1:${port}`;
  }

  set(typeUrl: string, name: string, value: Record<string, unknown>): void {
    this.ads.push(this.source.set(typeUrl, name, value));
  }

  close(): void {
    this.ads.closeAll();
    this.#grpc.forceShutdown();
  }
}

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const child of children.splice(0)) child.kill('SIGKILL');
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

function spawnChild(file: string, flags: readonly string[] = [], source = true): ChildProcess {
  const child = fork(file.startsWith('/') ? file : new URL(file, import.meta.url).pathname, [], {
    execArgv: [...flags, ...(source ? ['--conditions=@ambient-mesh/source'] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  return child;
}

/** The next message from `child` that has `key`, within `timeoutMs`. */
function next<T>(child: ChildProcess, key: string, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no '${key}' from ${child.spawnfile} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: unknown): void => {
      if (typeof message === 'object' && message !== null && key in message) {
        done();
        resolve(message as T);
      }
    };
    const onExit = (code: number | null): void => {
      done();
      reject(new Error(`${child.spawnfile} exited (${code}) before sending '${key}'`));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

interface Stats {
  readonly cpuMs: number;
  readonly rss: number;
  readonly heapUsed: number;
}

/** CPU time and RSS from /proc/<pid> (the JS heap from the process itself, over IPC). */
async function stats(child: ChildProcess, afterGc = false): Promise<Stats> {
  const answer = next<{ heapUsed: number }>(child, 'heapUsed', 10_000);
  child.send(afterGc ? 'stats-after-gc' : 'stats');
  const { heapUsed } = await answer;
  const proc = sampleProcesses([child.pid!]);
  return { cpuMs: proc.cpuSeconds * 1000, rss: proc.rss, heapUsed };
}

/** CPU time and RSS from /proc/<pid> only: no work for the process measured. */
function procStats(child: ChildProcess): { cpuMs: number; rss: number } {
  const proc = sampleProcesses([child.pid!]);
  return { cpuMs: proc.cpuSeconds * 1000, rss: proc.rss };
}

/**
 * The waypoint-process script of a form: the TypeScript source, or bundled the way the image
 * bundles the waypoint (apps/waypoint/tools/bundle.mjs), next to the image's bundle.
 */
function waypointScript(form: Form): string {
  const source = new URL('./waypoint-process.ts', import.meta.url).pathname;
  if (form === 'source') return source;
  const out = `${REPO}apps/waypoint/dist/bench-waypoint-process.mjs`;
  const result = spawnSync(process.execPath, [`${REPO}apps/waypoint/tools/bundle.mjs`, source, out], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.status !== 0)
    throw new Error(`bundling ${source} failed (exit ${String(result.status)}): ${result.stderr}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The load generator: undici clients whose connections are TCP sockets or HBONE tunnels

type Protocol = 'h1' | 'h2c';

interface Path {
  readonly name: string;
  /** Opens one connection for `service` (a TCP socket or an HBONE tunnel). */
  open(service: Service): Promise<Duplex>;
}

function tcpPath(ports: { h1: number; h2: number }): Path {
  return {
    name: 'direct',
    open: service =>
      new Promise((resolve, reject) => {
        const socket = netConnect({
          host: '127.0.0.1',
          port: service.h2 ? ports.h2 : ports.h1,
          noDelay: true,
        });
        socket.once('connect', () => {
          resolve(socket);
        });
        socket.once('error', reject);
      }),
  };
}

function hbonePath(
  name: string,
  hbone: HboneClient,
  client: Identity,
  nextHop: string,
  peer: string,
  target: (service: Service) => string,
): Path {
  return {
    name,
    open: service =>
      hbone.connect({ target: target(service), nextHop, identity: client, expectedIdentities: [peer] }),
  };
}

class Load {
  readonly clients: Client[];
  readonly #service: Service;

  constructor(path: Path, protocol: Protocol, connections: number) {
    this.#service = protocol === 'h2c' ? SERVICES.h2 : SERVICES.h1;
    const service = this.#service;
    this.clients = Array.from(
      { length: connections },
      () =>
        new Client(`http://${service.host}`, {
          pipelining: 1,
          allowH2: protocol === 'h2c',
          keepAliveTimeout: 60_000,
          connect: (_opts, callback) => {
            path.open(service).then(
              stream => {
                // undici picks HTTP/2 by the socket's ALPN; a plain socket or a tunnel has none.
                if (protocol === 'h2c') Object.assign(stream, { alpnProtocol: 'h2' });
                callback(null, stream as never);
              },
              (err: unknown) => {
                callback(err as Error, null);
              },
            );
          },
        }),
    );
  }

  /** One request on client `i`: its status, or 0 on an error. */
  async request(i: number, path = REQUEST_PATH, method: 'POST' | 'GET' = 'POST'): Promise<number> {
    try {
      const r = await this.clients[i % this.clients.length]!.request({
        path,
        method,
        headers: { host: this.#service.host, 'content-type': 'application/octet-stream' },
        ...(method === 'POST' ? { body: REQUEST } : {}),
      });
      await r.body.arrayBuffer();
      return r.statusCode;
    } catch {
      return 0;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map(c => c.destroy()));
  }
}

interface Latency {
  readonly count: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

function summarize(samples: number[], errors: number, seconds: number): Latency {
  samples.sort((a, b) => a - b);
  const q = (p: number): number =>
    samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? NaN;
  return {
    count: samples.length,
    errors,
    seconds,
    rps: samples.length / seconds,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
  };
}

/**
 * Open loop: request i is due at start + i/rate on connection i % connections; its latency counts
 * from that scheduled time, so a slow response delays nothing else's clock (no coordinated
 * omission). Bounded by the request count and by a deadline.
 */
async function fixedRate(load: Load, rate: number, seconds: number): Promise<Latency> {
  const total = Math.round(rate * seconds);
  const samples: number[] = [];
  const pending: Promise<void>[] = [];
  const start = now() + 5;
  let sent = 0;
  await new Promise<void>(resolve => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const scheduled = start + (sent * 1000) / rate;
        pending.push(
          load.request(sent).then(status => {
            if (status === 200) samples.push(now() - scheduled);
          }),
        );
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 5);
  });
  const deadline = new Promise<void>(resolve => setTimeout(resolve, 30_000).unref());
  await Promise.race([Promise.all(pending), deadline]);
  // Non-200 answers and requests still unanswered at the deadline both count as errors.
  return summarize(samples, total - samples.length, (now() - start) / 1000);
}

/** Closed loop: each connection sends its next request as soon as the last one is answered. */
async function saturation(load: Load, seconds: number): Promise<Latency> {
  const samples: number[] = [];
  let errors = 0;
  const start = now();
  const end = start + seconds * 1000;
  await Promise.all(
    load.clients.map(async (_c, i) => {
      // Bounded by the clock; each request is bounded by undici's timeouts.
      while (now() < end) {
        const t = now();
        const status = await load.request(i);
        if (status === 200) samples.push(now() - t);
        else errors++;
      }
    }),
  );
  return summarize(samples, errors, (now() - start) / 1000);
}

/**
 * The highest rate whose fixed-rate step keeps p99 < 10 ms without errors: up RAMP_RATES to the
 * first step that misses, then RAMP_REFINE_STEPS bisections between the last step that held and
 * that one (to 10 rps). At most RAMP_RATES.length + RAMP_REFINE_STEPS steps.
 */
async function ramp(load: Load): Promise<{ maxRate: number; steps: string[] }> {
  let maxRate = 0;
  let missed: number | undefined;
  const steps: string[] = [];
  const step = async (rate: number): Promise<boolean> => {
    const r = await fixedRate(load, rate, STEP_SECONDS);
    steps.push(`${rate}: p99 ${r.p99.toFixed(1)} ms${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
    return r.errors === 0 && r.p99 < P99_TARGET_MS;
  };
  for (const rate of RAMP_RATES) {
    if (!(await step(rate))) {
      missed = rate;
      break;
    }
    maxRate = rate;
  }
  for (let i = 0; i < RAMP_REFINE_STEPS && missed !== undefined && maxRate > 0; i++) {
    const rate = Math.round((maxRate + missed) / 20) * 10;
    if (rate <= maxRate || rate >= missed) break;
    if (await step(rate)) maxRate = rate;
    else missed = rate;
  }
  return { maxRate, steps };
}

async function warmUp(load: Load): Promise<void> {
  const statuses = await Promise.all(Array.from({ length: WARMUP }, (_x, i) => load.request(i)));
  const bad = statuses.filter(s => s !== 200).length;
  if (bad > 0)
    throw new Error(
      `warm-up: ${bad} of ${WARMUP} requests did not get 200 (statuses: ${[...new Set(statuses)].join(', ')})`,
    );
}

// ---------------------------------------------------------------------------------------------
// One measured case

interface CaseResult {
  /** Per fixed rate. */
  fixed: Record<number, Latency>;
  /** Waypoint CPU-seconds per 1000 requests in each fixed-rate run (= vCPU at 1000 rps). */
  cpuPer1000Fixed: Record<number, number>;
  saturation?: Latency;
  maxRate?: number;
  rampSteps?: string[];
  /** The same across the saturation run. */
  cpuPer1000Saturation?: number;
  /** Waypoint RSS sampled every 250 ms during the runs: the highest. */
  rssPeak?: number;
}

async function measureCase(
  path: Path,
  protocol: Protocol,
  waypoint: ChildProcess | undefined,
  ramped: boolean,
): Promise<CaseResult> {
  const load = new Load(path, protocol, CONNECTIONS);
  const result: CaseResult = { fixed: {}, cpuPer1000Fixed: {} };
  let rssPeak = 0;
  const sampler =
    waypoint === undefined
      ? undefined
      : setInterval(() => {
          rssPeak = Math.max(rssPeak, procStats(waypoint).rss);
        }, 250);
  try {
    await warmUp(load);
    for (const rate of PARTS.has('fixed') ? RATES : []) {
      const before = waypoint === undefined ? undefined : procStats(waypoint);
      const fixed = await fixedRate(load, rate, SECONDS);
      result.fixed[rate] = fixed;
      if (waypoint !== undefined && before !== undefined) {
        const after = procStats(waypoint);
        result.cpuPer1000Fixed[rate] = (after.cpuMs - before.cpuMs) / fixed.count;
      }
    }
    if (PARTS.has('saturation')) {
      const before = waypoint === undefined ? undefined : procStats(waypoint);
      result.saturation = await saturation(load, SECONDS);
      if (waypoint !== undefined && before !== undefined) {
        const after = procStats(waypoint);
        result.cpuPer1000Saturation = (after.cpuMs - before.cpuMs) / result.saturation.count;
      }
    }
    if (ramped && PARTS.has('ramp')) {
      const r = await ramp(load);
      result.maxRate = r.maxRate;
      result.rampSteps = r.steps;
    }
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    await load.close();
  }
  if (waypoint !== undefined) result.rssPeak = rssPeak;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Main

const ids = await identities();
const xds = new XdsServer();
await xds.start();
const server = spawnChild('./server-process.ts');
await next(server, 'started');
const serverReady = next<{ h1Port: number; h2Port: number; hbonePort: number }>(server, 'hbonePort');
server.send({ identity: ids.server });
const ports = await serverReady;

function configure(variant: 'plain' | 'policy'): void {
  for (const s of Object.values(SERVICES)) {
    xds.set(TypeUrl.cluster, s.cluster, cluster(s));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      s.cluster,
      assignment(s, `127.0.0.1:${ports.hbonePort}`, ids.server.id),
    );
    xds.set(TypeUrl.routeConfiguration, s.route, routeConfiguration(s, variant));
  }
  xds.set(TypeUrl.listener, 'main_internal', listener(variant, ids.client.id));
}
configure('plain');

interface Waypoint {
  readonly form: Form;
  readonly child: ChildProcess;
  readonly port: number;
  readonly path: Path;
  /** Synced and idle, before any traffic: /proc, and after a forced full GC. */
  readonly idle: Stats;
  readonly idleGc: Stats;
  /** Wall time from spawn to synced and serving (ms). */
  readonly startMs: number;
  readonly rssAfter: number[];
  readonly heapAfter: number[];
  readonly afterGc: Stats[];
}

const hbone = createHboneClient();

/** Starts the waypoint in `form` (one at a time, so start-up is measured alone). */
async function startWaypoint(form: Form): Promise<Waypoint> {
  const script = waypointScript(form);
  const t0 = now();
  const child = spawnChild(script, [...WAYPOINT_FLAGS, '--expose-gc'], form === 'source');
  await next(child, 'started');
  const ready = next<{ hbonePort: number }>(child, 'hbonePort');
  child.send({ identity: ids.waypoint, xds: xds.address });
  const { hbonePort: port } = await ready;
  const startMs = now() - t0;
  const idle = await stats(child);
  const idleGc = await stats(child, true);
  log(
    `waypoint (${form}) up on HBONE :${port} in ${startMs.toFixed(0)} ms; RSS idle ${(idle.rss / MiB).toFixed(1)} MiB`,
  );
  const path = hbonePath(
    `waypoint ${form}`,
    hbone,
    ids.client,
    `127.0.0.1:${port}`,
    ids.waypoint.id,
    s => `${s.vip}:80`,
  );
  return { form, child, port, path, idle, idleGc, startMs, rssAfter: [], heapAfter: [], afterGc: [] };
}

const waypoints: Waypoint[] = [];
for (const form of FORMS) waypoints.push(await startWaypoint(form));
log(
  `servers up: HTTP/1.1 :${ports.h1Port}, h2c :${ports.h2Port}, server HBONE :${ports.hbonePort}; waypoints: ${waypoints.map(w => `${w.form} :${w.port}`).join(', ')}`,
);

const paths = {
  direct: tcpPath({ h1: ports.h1Port, h2: ports.h2Port }),
  l4: hbonePath(
    'l4',
    hbone,
    ids.client,
    `127.0.0.1:${ports.hbonePort}`,
    ids.server.id,
    s => `${s.endpoint.address}:${s.endpoint.port}`,
  ),
};

/** Pushes `variant` and waits until every waypoint answers the probe as that variant does. */
async function switchTo(variant: 'plain' | 'policy'): Promise<void> {
  configure(variant);
  const want = variant === 'policy' ? 403 : 200;
  for (const w of waypoints) {
    const probe = new Load(w.path, 'h1', 1);
    try {
      const deadline = now() + 30_000;
      for (;;) {
        const status = await probe.request(0, DENY_PROBE_PATH, 'GET');
        if (status === want) break;
        if (now() > deadline)
          throw new Error(
            `the ${w.form} waypoint still answers ${status} (want ${want}) 30 s after the ${variant} config`,
          );
        await new Promise(resolve => setTimeout(resolve, 50));
      }
    } finally {
      await probe.close();
    }
  }
}

/** `<path> <protocol>`, the waypoint's paths with their form when more than one is measured. */
const waypointLabel = (w: Waypoint, variant: 'waypoint' | 'waypoint+policy'): string =>
  FORMS.length > 1 ? `${variant} (${w.form})` : variant;
const results = new Map<string, CaseResult[]>();
const loads: number[] = [];

async function runCase(
  label: string,
  path: Path,
  protocol: Protocol,
  wp: ChildProcess | undefined,
): Promise<void> {
  log(`${label} (load average ${loadavg()[0]!.toFixed(1)})`);
  loads.push(loadavg()[0]!);
  const r = await measureCase(path, protocol, wp, protocol === 'h1');
  results.set(label, [...(results.get(label) ?? []), r]);
}

try {
  // JIT and V8's heap settle over the first few thousand requests: warm each waypoint up through
  // both protocols before anything is measured (each case then warms its own connections).
  await switchTo('plain');
  for (const w of waypoints)
    for (const protocol of ['h1', 'h2c'] as const) {
      const load = new Load(w.path, protocol, CONNECTIONS);
      try {
        for (let i = 0; i < WAYPOINT_WARMUP / WARMUP; i++) await warmUp(load);
      } finally {
        await load.close();
      }
    }
  log(
    `waypoints warmed up (${WAYPOINT_WARMUP} requests per protocol); RSS ${waypoints.map(w => `${w.form} ${(procStats(w.child).rss / MiB).toFixed(1)} MiB`).join(', ')}`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1} of ${ROUNDS}`);
    await switchTo('plain');
    for (const protocol of ['h1', 'h2c'] as const) {
      await runCase(`direct ${protocol}`, paths.direct, protocol, undefined);
      await runCase(`l4 ${protocol}`, paths.l4, protocol, undefined);
      // Alternate the forms' order from round to round.
      for (const w of round % 2 === 0 ? waypoints : [...waypoints].reverse())
        await runCase(`${waypointLabel(w, 'waypoint')} ${protocol}`, w.path, protocol, w.child);
    }
    await switchTo('policy');
    for (const protocol of ['h1', 'h2c'] as const)
      for (const w of round % 2 === 0 ? waypoints : [...waypoints].reverse())
        await runCase(`${waypointLabel(w, 'waypoint+policy')} ${protocol}`, w.path, protocol, w.child);
    for (const w of waypoints) {
      const end = await stats(w.child);
      w.rssAfter.push(end.rss);
      w.heapAfter.push(end.heapUsed);
      w.afterGc.push(await stats(w.child, true));
    }
  }
} finally {
  hbone.destroy();
  const all = [...waypoints.map(w => w.child), server];
  for (const c of all) c.send('quit');
  await Promise.all(
    all.map(
      c =>
        new Promise<void>(resolve => {
          const timer = setTimeout(() => {
            c.kill('SIGKILL');
            resolve();
          }, 5_000);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
  children.splice(0);
  xds.close();
}

// ---------------------------------------------------------------------------------------------
// Report (Markdown on stdout)

function spread(values: readonly (number | undefined)[], digits: number): string {
  const sorted = values
    .filter((v): v is number => v !== undefined && Number.isFinite(v))
    .sort((x, y) => x - y);
  if (sorted.length === 0) return '—';
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const f = (n: number): string => n.toFixed(digits);
  return sorted.length === 1 ? f(median) : `${f(median)} (${f(sorted[0]!)}–${f(sorted[sorted.length - 1]!)})`;
}

const pick = (label: string, f: (r: CaseResult) => number | undefined, digits: number): string =>
  spread((results.get(label) ?? []).map(f), digits);

console.log(
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; waypoint Node flags: ${WAYPOINT_FLAGS.join(' ') || 'none'}; forms: ${FORMS.join(', ')}`,
);
console.log(
  `Settings: 1 KiB POST, 1 KiB response; fixed rates ${RATES.join(' and ')} rps over ${CONNECTIONS} connections for ${SECONDS} s each; saturation ${CONNECTIONS} connections, one request in flight each, ${SECONDS} s; ramp steps of ${STEP_SECONDS} s; ${ROUNDS} round(s), median (min–max); load average ${spread(loads, 1)}.`,
);
console.log('');
const cases = [...results.keys()];
console.log(`| measure | ${cases.join(' | ')} |`);
console.log(`|---|${cases.map(() => '---').join('|')}|`);
const rows: [string, (r: CaseResult) => number | undefined, number][] = [];
for (const rate of RATES) {
  rows.push(
    [`p50 at ${rate} rps (ms)`, r => r.fixed[rate]?.p50, 3],
    [`p90 at ${rate} rps (ms)`, r => r.fixed[rate]?.p90, 3],
    [`p99 at ${rate} rps (ms)`, r => r.fixed[rate]?.p99, 3],
    [`errors at ${rate} rps`, r => r.fixed[rate]?.errors, 0],
  );
}
rows.push(
  ['saturation requests/s', r => r.saturation?.rps, 0],
  ['saturation p50 (ms)', r => r.saturation?.p50, 3],
  ['saturation p90 (ms)', r => r.saturation?.p90, 3],
  ['saturation p99 (ms)', r => r.saturation?.p99, 3],
  ['saturation errors', r => r.saturation?.errors, 0],
  [`max rps with p99 < ${P99_TARGET_MS} ms (HTTP/1.1; 0: not even ${RAMP_RATES[0]})`, r => r.maxRate, 0],
);
for (const rate of RATES)
  rows.push([`waypoint CPU-s per 1000 requests at ${rate} rps`, r => r.cpuPer1000Fixed[rate], 3]);
rows.push(
  ['waypoint CPU-s per 1000 requests at saturation', r => r.cpuPer1000Saturation, 3],
  ['waypoint RSS peak under load (MiB)', r => (r.rssPeak === undefined ? undefined : r.rssPeak / MiB), 1],
);
for (const [label, f, digits] of rows)
  console.log(`| ${label} | ${cases.map(c => pick(c, f, digits)).join(' | ')} |`);
console.log('');

// Added latency: each waypoint case minus the l4 (HBONE-only) case of the same protocol and
// round, at each fixed rate; median (min–max) over the rounds.
const waypointCases = cases.filter(c => c.startsWith('waypoint'));
if (waypointCases.length > 0 && RATES.length > 0 && PARTS.has('fixed')) {
  console.log(`| added over l4 (ms) | ${waypointCases.join(' | ')} |`);
  console.log(`|---|${waypointCases.map(() => '---').join('|')}|`);
  for (const rate of RATES)
    for (const q of ['p50', 'p90', 'p99'] as const)
      console.log(
        `| ${q} at ${rate} rps | ${waypointCases
          .map(c => {
            const base = results.get(`l4 ${c.endsWith('h2c') ? 'h2c' : 'h1'}`) ?? [];
            const added = (results.get(c) ?? []).map((r, i) => {
              const b = base[i]?.fixed[rate]?.[q];
              const w = r.fixed[rate]?.[q];
              return b === undefined || w === undefined ? undefined : w - b;
            });
            return spread(added, 3);
          })
          .join(' | ')} |`,
      );
  console.log('');
}
for (const w of waypoints) {
  console.log(
    `Waypoint (${w.form}): started and synced in ${w.startMs.toFixed(0)} ms; RSS idle (synced, before traffic) ${(w.idle.rss / MiB).toFixed(1)} MiB (JS heap used ${(w.idle.heapUsed / MiB).toFixed(1)}); after each round: ${spread(
      w.rssAfter.map(r => r / MiB),
      1,
    )} MiB (JS heap used ${spread(
      w.heapAfter.map(r => r / MiB),
      1,
    )}). After a forced full GC: idle RSS ${(w.idleGc.rss / MiB).toFixed(1)} MiB, JS heap used ${(w.idleGc.heapUsed / MiB).toFixed(1)} MiB; after each round RSS ${spread(
      w.afterGc.map(r => r.rss / MiB),
      1,
    )} MiB, JS heap used ${spread(
      w.afterGc.map(r => r.heapUsed / MiB),
      1,
    )} MiB.`,
  );
}
for (const c of cases) {
  const steps = (results.get(c) ?? []).map(r => r.rampSteps).filter(s => s !== undefined);
  if (steps.length > 0) console.log(`Ramp ${c}: ${steps.map(s => s.join('; ')).join(' | ')}`);
}
process.exit(0);
