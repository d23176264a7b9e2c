// The waypoint under test, in its own process so its CPU time and RSS are its own. It runs the
// real app (`build`) on loopback ephemeral ports with the identity the driver issued from its test
// CA (the spiffe-certs testing CA), fed by the driver's ADS server over plaintext gRPC.
//
// IPC from the driver: {identity, xds} (start), 'stats', 'stats-after-gc', 'quit'.
// IPC to the driver: {hbonePort} once xDS has synced, then {heapUsed} per 'stats'.
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { Logs } from '@ambient-mesh/runtime';
import { deltaStreamFactory } from '@ambient-mesh/xds';
import { build } from '@ambient-mesh/waypoint';
import type { Bound, Config } from '@ambient-mesh/waypoint';

interface Start {
  readonly identity: HboneIdentity & { readonly id: string };
  readonly xds: string;
}

const local = (port: number) => ({ host: '127.0.0.1', port });
const config: Config = {
  mode: 'waypoint',
  xdsAddress: 'http://127.0.0.1:1',
  caAddress: 'http://127.0.0.1:1',
  trustDomain: 'cluster.local',
  serviceAccount: 'waypoint',
  xdsRootCaPath: '',
  altXdsHostname: undefined,
  tokenPath: '',
  podName: 'waypoint-0',
  podNamespace: 'bench',
  instanceIp: '127.0.0.1',
  clusterId: 'Kubernetes',
  clusterDomain: 'cluster.local',
  certDir: '',
  podInfoDir: '',
  secretTtlSeconds: 86_400,
  logFormat: 'json',
  logLevel: 'error',
  terminationGracePeriodMs: 1000,
  drainDurationMs: 0,
  maxRequestBodyBytes: 1024 * 1024,
  maxHeaderBytes: 60 * 1024,
  xdsHeaders: {},
  proxyMetadata: {},
  hboneAddress: local(0),
  adminAddress: local(0),
  statsAddress: local(0),
  readinessAddress: local(0),
};

let bound: Bound | undefined;
/** WP_BENCH_PROFILE_DIR: a heap snapshot after each forced GC (idle, then after each round). */
const PROFILE_DIR = process.env.WP_BENCH_PROFILE_DIR;
let snapshots = 0;

async function start(message: Start): Promise<void> {
  const client = new grpc.Client(message.xds, grpc.credentials.createInsecure());
  bound = await build(config, {
    logs: new Logs({ format: 'json', level: 'error' }),
    xdsConnect: deltaStreamFactory(client, () => new grpc.Metadata()),
    identity: message.identity,
    processMetrics: false,
  });
  const deadline = Date.now() + 30_000;
  while (!bound.readiness.ready) {
    if (Date.now() > deadline)
      throw new Error(`waypoint not ready after 30 s: ${bound.readiness.pending().join(', ')}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
  process.send?.({ hbonePort: bound.hboneAddress.port });
}

process.on('message', (message: unknown) => {
  if (typeof message === 'object' && message !== null && 'identity' in message) {
    start(message as Start).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  } else if (message === 'stats' || message === 'stats-after-gc') {
    // The driver starts this process with --expose-gc (it changes no GC behaviour by itself):
    // a full collection first tells retained memory from garbage not yet collected.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (message === 'stats-after-gc' && gc !== undefined) {
      gc();
      if (PROFILE_DIR !== undefined)
        writeHeapSnapshot(join(PROFILE_DIR, `waypoint-${++snapshots}.heapsnapshot`));
    }
    // CPU time and RSS the driver reads from /proc (one sampler for every process it compares).
    process.send?.({ heapUsed: process.memoryUsage().heapUsed });
  } else if (message === 'quit') {
    void (bound?.shutdown() ?? Promise.resolve()).then(() => process.exit(0));
  }
});
process.send?.({ started: true });
