// ztunnel's DNS proxy under a query storm (default 5,000 queries/s for 30 s), beside a plain
// dns-packet responder taking the same storm in the same run. Needs root.
//
//   baseline: client in pod D --UDP 53--> responder in pod R              (no capture)
//   proxy:    client in pod A --UDP 53, nft REDIRECT--> DNS proxy 127.0.0.1:15053 in A
//             (90 % answered from WDS state; 10 % unknown names forwarded, marked, to R)
// Both servers run in child processes (dns-process.ts), so their RSS is their own: taken before
// the storm (after a GC), every second during it, and after it (after a GC). Latency is per query,
// from send to reply, in the load generator (this process).
//
//   node --conditions=@ambient-mesh/source benchmarks/ztunnel/dns-storm.ts
// Env: DNS_BENCH_QPS (default 5000), DNS_BENCH_SECONDS (default 30).
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { closeFd, createUdpSocket, openNetns } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';

const QPS = Number(process.env.DNS_BENCH_QPS ?? 5_000);
const SECONDS = Number(process.env.DNS_BENCH_SECONDS ?? 30);
const SOCKETS = 8;
const MiB = 1024 * 1024;

if (process.getuid?.() !== 0) {
  console.error('benchmarks/ztunnel/dns-storm needs root (network namespaces, nftables)');
  process.exit(2);
}

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
  readonly netns: string;
  readonly ip: string;
  readonly fd: number;
}

const id = `${process.pid % 10_000}${randomInt(100, 999)}`;
const nodeNs = `ztd-${id}-node`;
const subnet = `10.${randomInt(1, 250)}.${randomInt(1, 250)}`;

function createPods(names: readonly string[]): Pod[] {
  ip('netns', 'add', nodeNs);
  cleanups.push(() => {
    ip('netns', 'del', nodeNs);
  });
  ip('-n', nodeNs, 'link', 'set', 'lo', 'up');
  ip('-n', nodeNs, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', nodeNs, 'addr', 'add', `${subnet}.1/24`, 'dev', 'br0');
  ip('-n', nodeNs, 'link', 'set', 'br0', 'up');
  return names.map((name, i) => {
    const netns = `ztd-${id}-${name}`;
    const veth = `zd${id}${i}`;
    const podIp = `${subnet}.${i + 2}`;
    ip('netns', 'add', netns);
    cleanups.push(() => {
      ip('netns', 'del', netns);
    });
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', veth, 'netns', nodeNs);
    ip('-n', netns, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0', 'nodad');
    ip('-n', netns, 'link', 'set', 'eth0', 'up');
    ip('-n', netns, 'route', 'add', 'default', 'via', `${subnet}.1`);
    ip('-n', nodeNs, 'link', 'set', veth, 'master', 'br0', 'up');
    const fd = openNetns(`/run/netns/${netns}`);
    cleanups.push(() => {
      closeFd(fd);
    });
    return { netns, ip: podIp, fd };
  });
}

interface Child {
  readonly child: ChildProcess;
  ask<T>(message: string): Promise<T>;
}

async function startChild(env: Record<string, string>): Promise<Child> {
  const child = fork(new URL('./dns-process.ts', import.meta.url), {
    env: { ...process.env, ...env },
    execArgv: ['--conditions=@ambient-mesh/source', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => {
      resolve();
    });
    child.once('exit', code => {
      reject(new Error(`dns-process exited ${String(code)}`));
    });
  });
  return {
    child,
    ask: <T>(message: string) =>
      new Promise<T>(resolve => {
        child.once('message', reply => {
          resolve(reply as T);
        });
        child.send(message);
      }),
  };
}

function query(name: string): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', class: 'IN', name }],
  });
}

interface StormResult {
  readonly sent: number;
  readonly answered: number;
  readonly lost: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rssBeforeMiB: number;
  readonly rssPeakMiB: number;
  readonly rssAfterMiB: number;
  /** RSS after 10 s idle and another GC. */
  readonly rssSettledMiB: number;
  readonly heapBeforeMiB: number;
  readonly heapAfterMiB: number;
  /** Server CPU time per 1000 answered queries. */
  readonly cpuMsPer1000: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Sends `QPS` queries/s for `SECONDS` from `from` to `target`:53, cycling through `packets`. */
async function storm(
  from: Pod,
  target: string,
  packets: readonly Buffer[],
  server: Child,
): Promise<StormResult> {
  await server.ask('gc');
  const before = await server.ask<{ rss: number; heapUsed: number; cpuMs: number }>('stats');
  const sockets: dgram.Socket[] = [];
  for (let i = 0; i < SOCKETS; i++)
    sockets.push(await createUdpSocket(from.fd, { host: '0.0.0.0', port: 0 }));
  const total = QPS * SECONDS;
  const pending = sockets.map(() => new Float64Array(65_536).fill(-1));
  const latencies = new Float64Array(total);
  let answered = 0;
  sockets.forEach((socket, s) => {
    socket.on('message', msg => {
      const qid = msg.readUInt16BE(0);
      const sentAt = pending[s]![qid]!;
      if (sentAt < 0) return;
      pending[s]![qid] = -1;
      latencies[answered++] = performance.now() - sentAt;
    });
  });
  let sent = 0;
  let peak = before.rss;
  const sampler = setInterval(() => {
    void server.ask<{ rss: number }>('stats').then(s => {
      peak = Math.max(peak, s.rss);
    });
  }, 1_000);
  const started = performance.now();
  await new Promise<void>(resolve => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * QPS));
      for (; sent < due; sent++) {
        const s = sent % SOCKETS;
        const qid = Math.floor(sent / SOCKETS) % 65_536;
        const packet = Buffer.from(packets[sent % packets.length]!);
        packet.writeUInt16BE(qid, 0);
        pending[s]![qid] = performance.now();
        sockets[s]!.send(packet, 53, target);
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  // Bounded drain: replies still in flight get two seconds.
  const drainUntil = performance.now() + 2_000;
  while (answered < sent && performance.now() < drainUntil) await new Promise(r => setTimeout(r, 20));
  clearInterval(sampler);
  for (const socket of sockets) socket.close();
  const during = await server.ask<{ rss: number; cpuMs: number }>('stats');
  peak = Math.max(peak, during.rss);
  await server.ask('gc');
  const after = await server.ask<{ rss: number; heapUsed: number }>('stats');
  await new Promise(r => setTimeout(r, 10_000));
  await server.ask('gc');
  const settled = await server.ask<{ rss: number }>('stats');
  const sorted = latencies.subarray(0, answered).sort();
  return {
    sent,
    answered,
    lost: sent - answered,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    rssBeforeMiB: before.rss / MiB,
    rssPeakMiB: peak / MiB,
    rssAfterMiB: after.rss / MiB,
    rssSettledMiB: settled.rss / MiB,
    heapBeforeMiB: before.heapUsed / MiB,
    heapAfterMiB: after.heapUsed / MiB,
    cpuMsPer1000: answered === 0 ? Number.NaN : ((during.cpuMs - before.cpuMs) / answered) * 1000,
  };
}

try {
  const [app, direct, resolver] = createPods(['app', 'direct', 'resolver']);
  if (app === undefined || direct === undefined || resolver === undefined) throw new Error('pods missing');
  await new InpodRedirection(netnsExecutor({ name: app.netns }), { dnsCapture: true, ipv6: false }).apply();
  const baseline = await startChild({
    DNS_BENCH_MODE: 'baseline',
    DNS_BENCH_NETNS: `/run/netns/${resolver.netns}`,
  });
  const proxy = await startChild({
    DNS_BENCH_MODE: 'proxy',
    DNS_BENCH_NETNS: `/run/netns/${app.netns}`,
    DNS_BENCH_UPSTREAM: resolver.ip,
  });
  // 90 % of the proxy's queries are answered from WDS state, 10 % are forwarded.
  const mesh = [
    'reviews.bench.svc.cluster.local',
    'svc17.ns17.svc.cluster.local',
    'svc999.ns49.svc.cluster.local',
    'api.example.com',
    'api.example.com.bench.svc.cluster.local',
    'img.cdn.example.com',
    'svc500.ns0.svc.cluster.local',
    'svc3.ns3.svc.cluster.local',
    'svc42.ns42.svc.cluster.local',
  ].map(query);
  const proxyMix = [...mesh, query('www.outside.test')];
  const baselineMix = proxyMix;

  console.log(`DNS storm: ${QPS} queries/s for ${SECONDS} s, ${SOCKETS} client sockets`);
  const base = await storm(direct, resolver.ip, baselineMix, baseline);
  console.log('baseline (plain dns-packet responder):', JSON.stringify(base));
  const result = await storm(app, resolver.ip, proxyMix, proxy);
  console.log('ztunnel DNS proxy (captured, 10 % forwarded):', JSON.stringify(result));
  // A second storm on the same proxy: growth that is retained memory, not a leak, does not add up.
  const again = await storm(app, resolver.ip, proxyMix, proxy);
  console.log('ztunnel DNS proxy, second storm:', JSON.stringify(again));
  console.log(
    `RSS growth: proxy peak +${(result.rssPeakMiB - result.rssBeforeMiB).toFixed(1)} MiB, after GC ` +
      `+${(result.rssAfterMiB - result.rssBeforeMiB).toFixed(1)} MiB, after 10 s idle ` +
      `+${(result.rssSettledMiB - result.rssBeforeMiB).toFixed(1)} MiB, heap ` +
      `+${(result.heapAfterMiB - result.heapBeforeMiB).toFixed(1)} MiB; baseline peak ` +
      `+${(base.rssPeakMiB - base.rssBeforeMiB).toFixed(1)} MiB; second storm: proxy peak ` +
      `+${(again.rssPeakMiB - result.rssBeforeMiB).toFixed(1)} MiB over the first storm's start`,
  );
  proxy.child.send('quit');
  baseline.child.send('quit');
} finally {
  cleanup();
}
