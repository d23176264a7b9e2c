// The ztunnel under test, in its own process so its CPU time and RSS are its own.
// It runs the real app (`build`) with in-pod listeners made in the pods' netns (mark 0x539), the
// real ZDS client (the driver is the CNI agent on ZT_BENCH_UDS), a local test CA, and a static
// in-memory WDS stream fed by the driver over IPC (no istiod in this benchmark).
//
// IPC from the driver: {pods: [{name, ip, sa}]} (full WDS set), 'stats', 'quit'.
// ZT_BENCH_CA_DIR: a CA in Istio's cacerts layout that the run's ztunnels share (the two-node
// topology, where one ztunnel's certificates must be trusted by the other); else a CA of its own.
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher, createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { packAny, TypeUrl } from '@ambient-mesh/xds-types';
import type { discovery } from '@ambient-mesh/xds-types';
import {
  build,
  inPodProxyFactory,
  loadConfig,
  Logs,
  netnsPodSockets,
  netnsZdsConnector,
} from '@ambient-mesh/ztunnel';

interface PodSpec {
  readonly name: string;
  readonly ip: string;
  readonly sa: string;
}

let pods: readonly PodSpec[] = [];
let nonce = 0;
const streams = new Set<StaticStream>();

function addressResponse(): discovery.DeltaDiscoveryResponse {
  nonce += 1;
  return {
    systemVersionInfo: '',
    removedResources: [],
    controlPlane: null,
    typeUrl: TypeUrl.ADDRESS,
    nonce: `n${nonce}`,
    resources: pods.map(p => ({
      name: `Kubernetes//Pod/bench/${p.name}`,
      version: '1',
      aliases: [],
      ttl: null,
      cacheControl: null,
      resource: packAny(TypeUrl.ADDRESS, {
        workload: {
          uid: `Kubernetes//Pod/bench/${p.name}`,
          name: p.name,
          namespace: 'bench',
          serviceAccount: p.sa,
          node: 'node-1',
          addresses: [Uint8Array.from(p.ip.split('.').map(Number))],
          tunnelProtocol: 1,
        },
      }),
    })),
  };
}

/** A delta ADS stream answering the initial requests from memory. */
class StaticStream extends EventEmitter {
  write(request: discovery.DeltaDiscoveryRequestInit): boolean {
    if (request.node !== undefined && request.node !== null) {
      const response: discovery.DeltaDiscoveryResponse =
        request.typeUrl === TypeUrl.ADDRESS
          ? addressResponse()
          : {
              systemVersionInfo: '',
              removedResources: [],
              controlPlane: null,
              typeUrl: request.typeUrl ?? '',
              nonce: `p${nonce}`,
              resources: [],
            };
      setImmediate(() => this.emit('data', response));
    }
    return true;
  }
  cancel(): void {
    streams.delete(this);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ztunnel-bench-'));
writeFileSync(join(dir, 'istio-token'), 'bench');
const caDir = process.env.ZT_BENCH_CA_DIR;
const ca =
  caDir === undefined ? await createTestCa() : await CertificateAuthority.fromCacertsDirectory(caDir);
const config = {
  ...loadConfig({
    POD_NAME: 'ztunnel',
    POD_NAMESPACE: 'istio-system',
    NODE_NAME: 'node-1',
    INPOD_UDS: process.env.ZT_BENCH_UDS ?? '',
  }),
  tokenPath: join(dir, 'istio-token'),
  adminAddress: { host: '127.0.0.1', port: 0 },
  statsAddress: { host: '127.0.0.1', port: 0 },
  readinessAddress: { host: '127.0.0.1', port: 0 },
};
const bound = await build(config, {
  logs: new Logs({ format: 'json', level: 'warn' }),
  caFetch: createLocalFetcher(ca),
  xdsConnect: () => {
    const stream = new StaticStream();
    streams.add(stream);
    return stream;
  },
  zdsConnector: netnsZdsConnector,
  proxyFactory: inPodProxyFactory({
    sockets: ({ netns }) => netnsPodSockets({ netns, mark: config.packetMark, origSrc: config.origSrc }),
  }),
});

process.on('message', (message: unknown) => {
  if (typeof message === 'object' && message !== null && 'pods' in message) {
    pods = (message as { pods: PodSpec[] }).pods;
    for (const stream of streams) stream.emit('data', addressResponse());
    process.send?.({ ok: true });
  } else if (message === 'stats') {
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    process.send?.({
      cpuMs: (cpu.user + cpu.system) / 1000,
      userMs: cpu.user / 1000,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      ready: bound.readiness.ready,
      pending: bound.readiness.pending(),
    });
  } else if (message === 'quit') {
    void bound.shutdown().then(() => process.exit(0));
  }
});
process.send?.({ started: true });
