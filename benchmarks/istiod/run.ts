// istiod: Kubernetes objects → WDS → delta xDS, in two modes measured in the same run.
//
// Mesh: 10,000 pods on 100 fake nodes in 50 namespaces, 1,000 services (half with a named
// targetPort) and 1,000 selector-scoped AuthorizationPolicies.
//
// in-process (the baseline): the objects go straight into the WDS index, istiod's delta xDS
//   server on loopback TLS, debounce 0. Measures the full sync to one client (baseline: JSON
//   parse of the objects), the push of one pod relabel to 50 clients (baseline: a 10-pod mesh),
//   and the RSS of the benchmark process.
// apiserver: a local cluster (own name `istiodbn`, slot 13; one real node, the pods on fake Node
//   objects kept Ready through their Leases, pod status written via the status subresource), the
//   objects created with bounded concurrency (creation rate reported), istiod's executable as a
//   child process with real informers. Measures istiod start → one delta client holds every
//   expected resource; a pod label patch → all 50 clients hold the new Workload (p50/p99); the
//   istiod process's RSS. Needs root and the Kubernetes binaries (tools/build-k8s.sh).
//
// Run: npx node --expose-gc --conditions=@ambient-mesh/source benchmarks/istiod/run.ts
//   [--mode=all|in-process|apiserver|waypoint|ingress] [--routes=N] [--pods=N --clients=N --changes=N --api-changes=N
//    --concurrency=N --debounce=100ms]
// Markdown goes to stdout, progress to stderr.
import { cpus } from 'node:os';
import { runApiserver, type ApiserverResult } from './apiserver.ts';
import { runInProcess, type InProcessResult } from './in-process.ts';
import { runWaypoint, waypointMarkdown } from './waypoint.ts';
import { ingressMarkdown, runIngress } from './ingress.ts';
import { mb, ms, pct } from './stats.ts';

const raw = (name: string): string | undefined =>
  process.argv.find(x => x.startsWith(`--${name}=`))?.slice(name.length + 3);
const arg = (name: string, fallback: number): number => {
  const v = raw(name);
  return v === undefined ? fallback : Number(v);
};
const MODE = raw('mode') ?? 'all';
if (!['all', 'in-process', 'apiserver', 'waypoint', 'ingress'].includes(MODE)) {
  throw new Error(`--mode must be all, in-process, apiserver, waypoint or ingress, got ${MODE}`);
}
const PODS = arg('pods', 10_000);
const CLIENTS = arg('clients', 50);
const progress = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

// The waypoint xDS benchmark (--mode=waypoint only): 1,000 HTTPRoutes over 200 waypoints.
if (MODE === 'waypoint') {
  const r = await runWaypoint(
    { waypoints: arg('waypoints', 200), servicesPerWaypoint: 5, changes: arg('changes', 50) },
    progress,
  );
  console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  console.log(waypointMarkdown(r, ms));
  process.exit(0);
}

// The ingress gateway xDS benchmark (--mode=ingress only): 1,000 HTTPRoutes on one Gateway.
if (MODE === 'ingress') {
  const r = await runIngress({ routes: arg('routes', 1000), changes: arg('changes', 50) }, progress);
  console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  console.log(ingressMarkdown(r, ms));
  process.exit(0);
}

let inProcess: InProcessResult | undefined;
let api: ApiserverResult | undefined;
const shape = { pods: PODS, services: PODS / 10, policies: PODS / 10, fakeNodes: 100, namespaces: 50 };

if (MODE !== 'apiserver') {
  progress('in-process mode');
  inProcess = await runInProcess({ pods: PODS, clients: CLIENTS, changes: arg('changes', 200) });
  global.gc?.();
}
if (MODE !== 'in-process') {
  progress('apiserver mode');
  api = await runApiserver({
    ...shape,
    clients: CLIENTS,
    changes: arg('api-changes', 40),
    concurrency: arg('concurrency', 32),
    debounce: raw('debounce') ?? '100ms',
    progress,
  });
}

console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
console.log(
  `Mesh: ${shape.pods} pods, ${shape.services} services, ${shape.policies} policies, ${shape.fakeNodes} nodes\n`,
);

if (inProcess !== undefined) {
  const r = inProcess;
  console.log(`### In process (no apiserver): ${r.addresses} Address + ${r.authorizations} Authorization\n`);
  console.log('| measure | value | baseline (same run) |');
  console.log('|---|---|---|');
  console.log(
    `| full sync: objects → index → first client has both types | ${ms(r.syncMs)} ms (index ${ms(r.indexMs)} ms) | JSON parse of the objects: ${ms(r.parseMs)} ms |`,
  );
  console.log(
    `| incremental push, 1 pod change → ${CLIENTS} clients, p50 | ${ms(pct(r.latencies, 50))} ms | 10-pod mesh: ${ms(pct(r.smallLatencies, 50))} ms |`,
  );
  console.log(
    `| incremental push, 1 pod change → ${CLIENTS} clients, p99 | ${ms(pct(r.latencies, 99))} ms | 10-pod mesh: ${ms(pct(r.smallLatencies, 99))} ms |`,
  );
  console.log(
    `| RSS (benchmark process, clients in process) | ${mb(r.rssAfter)} MiB after sync with ${CLIENTS} clients | ${mb(r.rssBefore)} MiB before loading |\n`,
  );
}

if (api !== undefined) {
  const r = api;
  const base = inProcess;
  console.log(
    `### Against the local apiserver: ${r.addresses} Address + ${r.authorizations} Authorization\n`,
  );
  console.log(
    '| objects created (concurrency ' + String(arg('concurrency', 32)) + ') | count | time | rate |',
  );
  console.log('|---|---|---|---|');
  for (const p of r.creation) {
    console.log(
      `| ${p.what} | ${p.count} | ${(p.ms / 1000).toFixed(1)} s | ${((p.count * 1000) / p.ms).toFixed(0)}/s |`,
    );
  }
  console.log('');
  console.log('| measure | value | in-process baseline (same run) |');
  console.log('|---|---|---|');
  console.log(
    `| istiod start → first delta client holds every expected resource | ${ms(r.syncMs)} ms (/ready at ${r.readyMs === undefined ? 'n/a' : `${ms(r.readyMs)} ms`}) | ${base === undefined ? 'n/a' : `${ms(base.syncMs)} ms`} |`,
  );
  console.log(`| ${CLIENTS - 1} more clients to full WDS | ${ms(r.connectMs)} ms | |`);
  console.log(
    `| pod label patch → ${CLIENTS} clients hold the new Workload, p50 (${r.latencies.length} changes) | ${ms(pct(r.latencies, 50))} ms | ${base === undefined ? 'n/a' : `${ms(pct(base.latencies, 50))} ms (debounce 0)`} |`,
  );
  console.log(
    `| pod label patch → ${CLIENTS} clients hold the new Workload, p99 | ${ms(pct(r.latencies, 99))} ms | ${base === undefined ? 'n/a' : `${ms(pct(base.latencies, 99))} ms (debounce 0)`} |`,
  );
  console.log(
    `| istiod process RSS (child process, VmRSS) | ${mb(r.rssAfterSync)} MiB after sync with 1 client; ${mb(r.rssAfterClients)} MiB with ${CLIENTS} clients; peak (VmHWM) ${mb(r.rssPeak)} MiB | ${base === undefined ? 'n/a' : `${mb(base.rssAfter)} MiB (benchmark process incl. clients)`} |`,
  );
  if (r.leaseFailures > 0) console.log(`\nFake-node lease renewals that failed: ${r.leaseFailures}`);
}
