// The in-process mode of the istiod benchmark: the objects go straight into the WDS index, with
// istiod's delta xDS server on loopback TLS and no apiserver. It is also the baseline of the
// apiserver mode (what the index and the push path cost without Kubernetes in between).
import { createRegistry } from '@ambient-mesh/runtime';
import {
  compileAuthorizationPolicyObject,
  ObjectKinds,
  PushQueue,
  silentLogger,
  TypeUrls,
  WdsIndex,
  XdsServer,
  createMetrics,
  startGrpcServer,
  type TokenReviewer,
} from '@ambient-mesh/istiod';
import { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { DeltaTestClient, scaleFixture, ztunnelNode, type ScaleFixture } from '@ambient-mesh/istiod/testing';

export interface InProcessOptions {
  readonly pods: number;
  readonly clients: number;
  readonly changes: number;
}

export interface InProcessResult {
  readonly pods: number;
  readonly services: number;
  readonly policies: number;
  readonly nodes: number;
  readonly addresses: number;
  readonly authorizations: number;
  /** JSON.parse of the objects: the floor of any informer sync. */
  readonly parseMs: number;
  readonly indexMs: number;
  /** Objects → index → the first client holds both complete responses. */
  readonly syncMs: number;
  readonly latencies: readonly number[];
  /** The same clients against a 10-pod mesh. */
  readonly smallLatencies: readonly number[];
  readonly rssBefore: number;
  readonly rssAfter: number;
}

const reviewer: TokenReviewer = () =>
  Promise.resolve({ authenticated: true, username: 'system:serviceaccount:istio-system:ztunnel' });

interface Mesh {
  index: WdsIndex;
  port: number;
  rootPem: string;
  close(): Promise<void>;
}

async function startMesh(): Promise<Mesh> {
  const ca = await CertificateAuthority.createSelfSigned({ keyAlgorithm: 'ecdsa-p256' });
  const signed = await ca.signServingCertificate({ dnsNames: ['istiod.istio-system.svc'], ttlSeconds: 3600 });
  const serving = { certPem: signed.certChainPem, keyPem: signed.keyPem };
  const index = new WdsIndex({
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    domain: 'cluster.local',
    rootNamespace: 'istio-system',
    compilePolicy: compileAuthorizationPolicyObject,
  });
  const server = new XdsServer({
    source: index,
    reviewer,
    audiences: ['istio-ca'],
    requireAuth: true,
    enableAmbient: true,
    metrics: createMetrics({ registry: createRegistry() }),
    logger: silentLogger(),
  });
  const queue = new PushQueue({
    debounceAfterMs: 0,
    debounceMaxMs: 0,
    flush: b => {
      server.push(b);
    },
  });
  const off = index.onChange(cs => {
    queue.enqueue(cs);
  });
  const grpc = await startGrpcServer({
    address: { host: '127.0.0.1', port: 0 },
    credentials: serving,
    register: s => {
      server.register(s);
    },
  });
  return {
    index,
    port: grpc.port,
    rootPem: signed.rootBundlePem,
    async close() {
      off();
      queue.close();
      server.closeAll();
      await grpc.close(200);
    },
  };
}

function load(index: WdsIndex, f: ScaleFixture): void {
  for (const n of f.namespaces) index.upsert(ObjectKinds.NAMESPACE, n);
  for (const n of f.nodes) index.upsert(ObjectKinds.NODE, n);
  for (const s of f.services) index.upsert(ObjectKinds.SERVICE, s);
  for (const p of f.policies) index.upsert(ObjectKinds.AUTHORIZATION_POLICY, p);
  for (const p of f.pods) index.upsert(ObjectKinds.POD, p);
}

async function connect(mesh: Mesh, i: number): Promise<DeltaTestClient> {
  const c = new DeltaTestClient({ address: `127.0.0.1:${mesh.port}`, rootCertPem: mesh.rootPem, token: 't' });
  c.send({
    node: ztunnelNode({ podName: `ztunnel-${i}`, nodeName: `node-${i}` }),
    typeUrl: TypeUrls.ADDRESS,
  });
  c.send({ typeUrl: TypeUrls.AUTHORIZATION });
  for (let k = 0; k < 2; k++) c.ack(await c.next(120_000));
  return c;
}

async function pushLatencies(
  mesh: Mesh,
  f: ScaleFixture,
  clients: DeltaTestClient[],
  changes: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < changes; i++) {
    const pod = f.pods[i % f.pods.length]!;
    const changed = {
      ...pod,
      metadata: { ...pod.metadata, labels: { ...pod.metadata?.labels, version: `v${i + 2}` } },
    };
    const t0 = performance.now();
    mesh.index.upsert(ObjectKinds.POD, changed);
    await Promise.all(
      clients.map(async c => {
        c.ack(await c.next(30_000));
      }),
    );
    out.push(performance.now() - t0);
  }
  return out;
}

export async function runInProcess(o: InProcessOptions): Promise<InProcessResult> {
  const opts = { pods: o.pods, services: o.pods / 10, policies: o.pods / 10, nodes: 100, namespaces: 50 };
  const big = scaleFixture(opts);
  const small = scaleFixture({ pods: 10, services: 2, policies: 2, nodes: 2, namespaces: 1 });
  const json = JSON.stringify(big);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;

  // Baseline: parse the objects.
  let t = performance.now();
  const parsed = JSON.parse(json) as ScaleFixture;
  const parseMs = performance.now() - t;

  // Full sync to one client.
  const mesh = await startMesh();
  t = performance.now();
  load(mesh.index, parsed);
  const indexMs = performance.now() - t;
  const first = await connect(mesh, 0);
  const syncMs = performance.now() - t;
  const addresses = mesh.index.addresses.size;
  const authorizations = mesh.index.authorizations.size;

  // Push latency to N clients.
  const clients = [first];
  for (let i = 1; i < o.clients; i++) clients.push(await connect(mesh, i));
  global.gc?.();
  const rssAfter = process.memoryUsage().rss;
  const latencies = await pushLatencies(mesh, parsed, clients, o.changes);
  for (const c of clients) c.close();
  await mesh.close();

  const smallMesh = await startMesh();
  load(smallMesh.index, small);
  const smallClients: DeltaTestClient[] = [];
  for (let i = 0; i < o.clients; i++) smallClients.push(await connect(smallMesh, i));
  const smallLatencies = await pushLatencies(smallMesh, small, smallClients, o.changes);
  for (const c of smallClients) c.close();
  await smallMesh.close();

  return {
    ...opts,
    addresses,
    authorizations,
    parseMs,
    indexMs,
    syncMs,
    latencies,
    smallLatencies,
    rssBefore,
    rssAfter,
  };
}
