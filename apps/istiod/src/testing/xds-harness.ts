/**
 * An istiod xDS stack for tests: a WdsIndex with the golden fixture, the real `XdsServer` behind
 * a debounced `PushQueue`, on the real TLS gRPC listener (loopback), and a factory of delta
 * clients with a bearer token. Everything it starts is registered in the caller's `cleanups`.
 */
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { createRegistry, silentLogger } from '@ambient-mesh/runtime';
import type { discovery } from '@ambient-mesh/xds-types';
import type { TokenReviewer } from '../auth/token-review.ts';
import { buildInfo } from '../build-info.ts';
import { servingDnsNames } from '../ca/ca-material.ts';
import { createMetrics, type IstiodMetrics } from '../metrics.ts';
import { compileAuthorizationPolicyObject } from '../wds/policies.ts';
import { ObjectKinds, TypeUrls, WdsIndex } from '../wds/wds-index.ts';
import { controlPlaneIdentifier } from '../xds/debug-types.ts';
import { XdsServer } from '../xds/delta-server.ts';
import { startGrpcServer } from '../xds/grpc-server.ts';
import { PushQueue } from '../xds/push-queue.ts';
import { DeltaTestClient, ztunnelNode } from './delta-client.ts';
import { goldenFixture } from './fixtures.ts';

/** What a test registers to undo, run in reverse order after it. */
export type Cleanups = (() => Promise<void> | void)[];

/** Tokens are "<namespace>:<serviceaccount>". */
export const reviewer: TokenReviewer = token => {
  const [ns, sa] = token.split(':');
  return Promise.resolve(
    ns !== undefined && sa !== undefined
      ? { authenticated: true, username: `system:serviceaccount:${ns}:${sa}` }
      : { authenticated: false, error: 'invalid token' },
  );
};

export interface Harness {
  index: WdsIndex;
  metrics: IstiodMetrics;
  server: XdsServer;
  port: number;
  rootPem: string;
  client(token?: string): DeltaTestClient;
}

export interface HarnessOptions {
  /** Passed to the gRPC listener (default: upstream's 4 MiB). */
  readonly maxReceiveMessageBytes?: number;
}

export async function xdsHarness(cleanups: Cleanups, options: HarnessOptions = {}): Promise<Harness> {
  const ca = await createTestCa();
  const signed = await ca.signServingCertificate({
    dnsNames: servingDnsNames('istio-system', 'cluster.local', []),
    ttlSeconds: 3600,
  });
  const serving = { certPem: signed.certChainPem, keyPem: signed.keyPem };
  const index = new WdsIndex({
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    domain: 'cluster.local',
    rootNamespace: 'istio-system',
    compilePolicy: compileAuthorizationPolicyObject,
  });
  const f = goldenFixture();
  for (const n of f.nodes) index.upsert(ObjectKinds.NODE, n);
  for (const p of f.pods) index.upsert(ObjectKinds.POD, p);
  for (const s of f.services) index.upsert(ObjectKinds.SERVICE, s);
  for (const p of f.policies) index.upsert(ObjectKinds.AUTHORIZATION_POLICY, p);
  for (const p of f.peerAuthentications) index.upsert(ObjectKinds.PEER_AUTHENTICATION, p);
  const metrics = createMetrics({ registry: createRegistry() });
  const server = new XdsServer({
    source: index,
    reviewer,
    audiences: ['istio-ca'],
    requireAuth: true,
    enableAmbient: true,
    metrics,
    logger: silentLogger(),
    debug: { systemNamespace: 'istio-system', controlPlane: controlPlaneIdentifier('istiod-0', buildInfo) },
  });
  const queue = new PushQueue({
    debounceAfterMs: 5,
    debounceMaxMs: 50,
    flush: batch => {
      server.push(batch);
    },
  });
  const off = index.onChange(cs => {
    queue.enqueue(cs);
  });
  const grpcServer = await startGrpcServer({
    address: { host: '127.0.0.1', port: 0 },
    credentials: serving,
    register: s => {
      server.register(s);
    },
    ...(options.maxReceiveMessageBytes === undefined
      ? {}
      : { maxReceiveMessageBytes: options.maxReceiveMessageBytes }),
  });
  cleanups.push(async () => {
    off();
    queue.close();
    server.closeAll();
    await grpcServer.close(200);
  });
  return {
    index,
    metrics,
    server,
    port: grpcServer.port,
    rootPem: signed.rootBundlePem,
    client: (token = 'istio-system:ztunnel') => {
      const c = new DeltaTestClient({
        address: `127.0.0.1:${grpcServer.port}`,
        rootCertPem: signed.rootBundlePem,
        token,
      });
      cleanups.push(() => {
        c.close();
      });
      return c;
    },
  };
}

export function subscribe(c: DeltaTestClient, initial: Record<string, string> = {}): void {
  c.send({ node: ztunnelNode(), typeUrl: TypeUrls.ADDRESS, initialResourceVersions: initial });
  c.send({ typeUrl: TypeUrls.AUTHORIZATION });
}

export async function firstResponses(
  c: DeltaTestClient,
): Promise<Map<string, discovery.DeltaDiscoveryResponse>> {
  const out = new Map<string, discovery.DeltaDiscoveryResponse>();
  for (let i = 0; i < 2; i++) {
    const r = await c.next();
    out.set(r.typeUrl, r);
    c.ack(r);
  }
  return out;
}
