// The cni-agent's own costs, each beside a baseline measured in the same run (needs root):
// - enrolment: Reconciler.reconcile for a new pod (open netns, nft + ip rules through nsenter,
//   ZDS Add with the netns fd to a ztunnel stand-in over SOCK_SEQPACKET, annotation to a fake
//   API) against InpodRedirection.apply() alone in the same namespace;
// - ZDS snapshot: a 500-pod snapshot (Add + fd each, then SnapshotSent, one Ack at a time)
//   against 501 raw SEQPACKET request/Ack round trips carrying the same bytes and fds.
// Run: npx node --conditions=@ambient-mesh/source benchmarks/cni-agent/run.ts
import { createRegistry } from '@ambient-mesh/runtime';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentMetrics,
  MemoryNetnsLocator,
  Reconciler,
  ZdsServer,
  addonNetnsOpener,
  listenZds,
  nftPodRules,
  silentLogger,
} from '@ambient-mesh/cni-agent';
import type { KubeApi, PodView, ZdsWorkload } from '@ambient-mesh/cni-agent';
import { SeqpacketSocket, closeFd, openNetns } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';

const PODS = 10;
const SNAPSHOT = 500;
const names = Array.from({ length: PODS + 1 }, (_, i) => `bench-cni-${process.pid}-${i}`);
const dir = mkdtempSync(join(tmpdir(), 'bench-cni-'));
const cleanup = (): void => {
  for (const n of names) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const n of names) execFileSync('ip', ['netns', 'add', n]);

const ACK = WorkloadResponseCodec.encode({ ack: {} });
/** A ztunnel stand-in that acks every request at once. */
function ackingZtunnel(path: string): SeqpacketSocket {
  const zt = SeqpacketSocket.connect(path, { maxMessageSize: 1024 });
  zt.on('message', m => {
    for (const fd of m.fds) closeFd(fd);
    zt.send(ACK);
  });
  zt.send(ZdsHelloCodec.encode({ version: zds.Version.V1 }));
  return zt;
}

async function until(probe: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

const rows: string[] = [];
const perOp = (ms: number, n: number): string =>
  ms / n >= 1 ? `${(ms / n).toFixed(1)} ms` : `${((ms / n) * 1000).toFixed(0)} µs`;
const time = async (fn: () => Promise<void>): Promise<number> => {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
};

// --- enrolment -------------------------------------------------------------------------------
const baselineNs = names[PODS]!;
const baseline = await time(async () => {
  for (let i = 0; i < PODS; i++) {
    await new InpodRedirection(netnsExecutor({ name: baselineNs }), { ipv6: false }).apply();
  }
});
rows.push(`| baseline: InpodRedirection.apply() (v4) | ${PODS} | ${perOp(baseline, PODS)} |`);

const pods = new Map<string, PodView>();
const kube: KubeApi = {
  listPods: () => [...pods.values()],
  getPod: (namespace, name) => pods.get(`${namespace}/${name}`),
  getNamespace: name => ({ name, labels: { 'istio.io/dataplane-mode': 'ambient' } }),
  fetchPod: () => Promise.resolve(undefined),
  patchRedirection: () => Promise.resolve(),
};
const locator = new MemoryNetnsLocator();
const late: { r?: Reconciler } = {};
const server = new ZdsServer({
  workloads: { uids: () => late.r?.workloads.uids() ?? [], lookup: uid => late.r?.workloads.lookup(uid) },
  logger: silentLogger(),
  closeFd,
});
const reconciler = new Reconciler({
  kube,
  rules: nftPodRules(),
  hostProbe: null,
  netns: addonNetnsOpener,
  locator,
  zds: server,
  logger: silentLogger(),
  metrics: new AgentMetrics({ registry: createRegistry() }),
  systemNamespace: 'istio-system',
  settings: { dnsCapture: true, ipv6: false, probeSnatV4: '169.254.7.127', probeSnatV6: 'fd16::1' },
});
late.r = reconciler;
const listener = listenZds(join(dir, 'ztunnel.sock'), server, silentLogger());
const zt = ackingZtunnel(join(dir, 'ztunnel.sock'));
await until(() => server.readyCount === 1, 'first snapshot');
await reconciler.start();
const enrol = await time(async () => {
  for (let i = 0; i < PODS; i++) {
    const pod: PodView = {
      uid: `uid-${i}`,
      name: `p${i}`,
      namespace: 'bench',
      nodeName: 'n',
      serviceAccount: 'sa',
      labels: {},
      annotations: {},
      ips: [],
      phase: 'Running',
      deleting: false,
      hostNetwork: false,
    };
    pods.set(`bench/p${i}`, pod);
    locator.remember('bench', `p${i}`, `/var/run/netns/${names[i]!}`);
    const outcome = await reconciler.reconcile('bench', `p${i}`, pod.uid);
    if (outcome.kind !== 'enrolled' || outcome.state !== 'enabled')
      throw new Error(`enrol ${i}: ${JSON.stringify(outcome)}`);
  }
});
rows.push(
  `| cni-agent: enrol one pod (rules + ZDS Add/Ack + annotation) | ${PODS} | ${perOp(enrol, PODS)} |`,
);
reconciler.stop();
zt.close();
server.close();
listener.close();

// --- ZDS snapshot ----------------------------------------------------------------------------
const nsFd = openNetns('/proc/self/ns/net');
const workloads = new Map<string, ZdsWorkload>();
for (let i = 0; i < SNAPSHOT; i++) {
  const uid = `0b8f2d6e-3c1a-4f5e-9d7c-${String(i).padStart(12, '0')}`;
  workloads.set(uid, {
    uid,
    info: { name: `pod-${i}`, namespace: 'bench', serviceAccount: 'sa' },
    netnsFd: nsFd,
  });
}
const [a, b] = SeqpacketSocket.pair({ maxMessageSize: 1024 });
const requests = [...workloads.values()].map(w =>
  WorkloadRequestCodec.encode({ add: { uid: w.uid, workloadInfo: w.info } }),
);
const raw = await time(async () => {
  let acked = 0;
  b.on('message', m => {
    for (const fd of m.fds) closeFd(fd);
    b.send(ACK);
  });
  await new Promise<void>(resolve => {
    a.on('message', () => {
      acked++;
      if (acked === SNAPSHOT + 1) resolve();
      else if (acked < SNAPSHOT) a.send(requests[acked]!, [nsFd]);
      else a.send(WorkloadRequestCodec.encode({ snapshotSent: {} }));
    });
    a.send(requests[0]!, [nsFd]);
  });
});
a.close();
b.close();
rows.push(
  `| baseline: raw SEQPACKET request+Ack, same bytes and fds | ${SNAPSHOT + 1} | ${perOp(raw, SNAPSHOT + 1)} |`,
);

const snapServer = new ZdsServer({
  workloads: { uids: () => [...workloads.keys()], lookup: uid => workloads.get(uid) },
  logger: silentLogger(),
  closeFd,
});
const snapListener = listenZds(join(dir, 'snap.sock'), snapServer, silentLogger());
let reported = false;
snapServer.on('snapshot', () => {
  reported = true;
});
const snapshot = await time(async () => {
  const z = ackingZtunnel(join(dir, 'snap.sock'));
  await until(() => reported, 'snapshot');
  z.close();
});
rows.push(
  `| cni-agent: ${SNAPSHOT}-pod ZDS snapshot (connect, hello, Adds, SnapshotSent) | ${SNAPSHOT + 1} | ${perOp(snapshot, SNAPSHOT + 1)} |`,
);
snapServer.close();
snapListener.close();
closeFd(nsFd);

console.log(`# cni-agent benchmark (${new Date().toISOString().slice(0, 10)}, node ${process.version})\n`);
console.log('| measurement | ops | per op |');
console.log('|---|---|---|');
for (const r of rows) console.log(r);
console.log(
  `\nsnapshot of ${SNAPSHOT} pods: ${snapshot.toFixed(0)} ms total; raw baseline ${raw.toFixed(0)} ms`,
);
