/**
 * The direct-tier mesh the proxy tests share: one ztunnel app, two enrolled "pods" that are
 * loopback addresses of this host, a test delta-xDS server and a test CA. App A dials through A's
 * 15001; B runs an echo app on 8080. Everything made is registered in the caller's `cleanups`.
 */
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher, createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { packAny, TypeUrl, WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';
import type { discovery, security } from '@ambient-mesh/xds-types';

import { build } from '../app.ts';
import type { Bound } from '../app.ts';
import { inPodProxyFactory } from '../proxy/inpod-factory.ts';
import { loopbackPodSockets } from '../proxy/pod-sockets.ts';
import type { Destination } from '../proxy/route.ts';
import type { ZdsConnector, ZdsMessage } from '../zds/zds-client.ts';
import { TestDeltaXdsServer } from './delta-xds-server.ts';
import { testZtunnelConfig } from './test-config.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from './wait.ts';

/** Teardown steps, run in reverse by the test file's `afterEach`. */
export type Cleanups = (() => unknown)[];

/** One resource of a pushed delta response. */
export type PushedResource = NonNullable<discovery.DeltaDiscoveryResponseInit['resources']>[number];

export interface Pod {
  readonly name: string;
  readonly ip: string;
  /** What A's app "dialled" (stands in for SO_ORIGINAL_DST). */
  dial: Destination | undefined;
  plaintext: Destination | undefined;
}

export interface Mesh {
  readonly bound: Bound;
  readonly xds: TestDeltaXdsServer;
  readonly ca: CertificateAuthority;
  readonly a: Pod;
  readonly b: Pod;
  readonly records: Record<string, unknown>[];
  readonly appB: { server: Server; peers: string[] };
  /** The `error` of every ZDS WorkloadResponse sent so far ('' = ACK). */
  zdsReplies(): string[];
  /** Sends the WDS workloads of both pods (done by `mesh()` unless `wdsAfterAdd`). */
  pushWds(): void;
}

export interface MeshOptions {
  /** Enrol both pods over ZDS before istiod has sent their workloads (the real-cluster order). */
  readonly wdsAfterAdd?: boolean;
  readonly lookupTimeoutMs?: number;
  /** Lifetime the test CA gives workload certificates (it backdates NotBefore by 120 s). */
  readonly certTtlSeconds?: number;
}

export function ipBytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

export function podResource(pod: Pod, sa: string): PushedResource {
  const uid = `Kubernetes//Pod/default/${pod.name}`;
  return {
    name: uid,
    version: '1',
    resource: packAny(TypeUrl.ADDRESS, {
      workload: {
        uid,
        name: pod.name,
        namespace: 'default',
        serviceAccount: sa,
        node: 'node-1',
        addresses: [ipBytes(pod.ip)],
        tunnelProtocol: 1,
        canonicalName: pod.name,
        canonicalRevision: 'v1',
      },
    }),
  };
}

export function policyResource(
  name: string,
  init: Omit<security.AuthorizationInit, 'name' | 'namespace'>,
): PushedResource {
  return {
    name: `default/${name}`,
    version: '1',
    resource: packAny(TypeUrl.AUTHORIZATION, { name, namespace: 'default', ...init }),
  };
}

async function echoServer(cleanups: Cleanups, ip: string): Promise<{ server: Server; peers: string[] }> {
  const peers: string[] = [];
  const server = createServer({ allowHalfOpen: true }, socket => {
    peers.push(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>(resolve => server.listen(8080, ip, resolve));
  cleanups.push(
    () =>
      new Promise<void>(resolve =>
        server.close(() => {
          resolve();
        }),
      ),
  );
  return { server, peers };
}

export async function mesh(cleanups: Cleanups, options: MeshOptions = {}): Promise<Mesh> {
  const net = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
  const a: Pod = { name: 'pod-a', ip: `${net}.2`, dial: undefined, plaintext: undefined };
  const b: Pod = { name: 'pod-b', ip: `${net}.3`, dial: undefined, plaintext: undefined };
  const appB = await echoServer(cleanups, b.ip);
  const xds = new TestDeltaXdsServer();
  const xdsAddress = await xds.start();
  cleanups.push(() => xds.stop());
  const ca = await createTestCa();
  const { logs, records } = captureLogs();
  const deliver: ((message: ZdsMessage) => void)[] = [];
  const sent: Uint8Array[] = [];
  const connector: ZdsConnector = {
    connect: () => ({
      send: data => sent.push(data),
      onMessage: listener => deliver.push(listener),
      onClose: () => undefined,
      close: () => undefined,
    }),
    netns: fd => ({ inode: String(fd), fd, close: () => undefined }),
    closeFd: () => undefined,
  };
  const pods = new Map([a, b].map(p => [p.name, p]));
  const { config, cleanup: removeToken } = testZtunnelConfig(xdsAddress);
  cleanups.push(removeToken);
  const bound = await build(config, {
    logs,
    caFetch: createLocalFetcher(
      ca,
      options.certTtlSeconds === undefined ? {} : { ttlSeconds: options.certTtlSeconds },
    ),
    zdsConnector: connector,
    proxyFactory: inPodProxyFactory({
      sockets: ({ info }) => {
        const pod = pods.get(info.name)!;
        return loopbackPodSockets({
          podIp: pod.ip,
          outboundDestination: () => pod.dial,
          plaintextDestination: () => pod.plaintext,
        });
      },
      ...(options.lookupTimeoutMs === undefined ? {} : { lookupTimeoutMs: options.lookupTimeoutMs }),
    }),
  });
  cleanups.push(() => bound.shutdown());
  await waitFor(() => xds.requests.length >= 2 && deliver.length === 1, 'control plane connections');
  const pushWds = (): void => {
    xds.push({ typeUrl: TypeUrl.ADDRESS, resources: [podResource(a, 'sa-a'), podResource(b, 'sa-b')] });
  };
  // The first message on the connection is the hello; every later one is a WorkloadResponse.
  const zdsReplies = (): string[] =>
    sent.slice(1).map(data => WorkloadResponseCodec.decode(data).ack?.error ?? '');
  if (options.wdsAfterAdd !== true) pushWds();
  xds.push({ typeUrl: TypeUrl.AUTHORIZATION, resources: [] });
  let fd = 10;
  for (const pod of [a, b]) {
    const add = WorkloadRequestCodec.encode({
      add: {
        uid: `uid-${pod.name}`,
        workloadInfo: { name: pod.name, namespace: 'default', serviceAccount: pod === a ? 'sa-a' : 'sa-b' },
      },
    });
    deliver[0]?.({ data: Buffer.from(add), fds: [fd++], truncated: false });
  }
  deliver[0]?.({
    data: Buffer.from(WorkloadRequestCodec.encode({ snapshotSent: {} })),
    fds: [],
    truncated: false,
  });
  const result = { bound, xds, ca, a, b, records, appB, zdsReplies, pushWds };
  if (options.wdsAfterAdd === true) {
    await waitFor(() => zdsReplies().length === 3, 'ZDS replies to both Adds and SnapshotSent');
    return result;
  }
  await waitFor(() => bound.readiness.ready, 'ztunnel ready', 10_000);
  return result;
}

/** App A connects "to B" (captured by A's 15001) from A's IP; resolves with the echo or an error. */
export function exchange(
  m: Mesh,
  payload: string,
  dial: Destination = { address: m.b.ip, port: 8080 },
): Promise<{ echoed: string; socket: Socket }> {
  m.a.dial = dial;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: m.a.ip, port: 15001, localAddress: m.a.ip, allowHalfOpen: true });
    let echoed = '';
    socket.on('data', chunk => {
      echoed += String(chunk);
      if (echoed.length >= payload.length) resolve({ echoed, socket });
    });
    socket.on('error', reject);
    const closed = (): void => {
      if (echoed.length < payload.length) reject(new Error(`closed after ${JSON.stringify(echoed)}`));
    };
    socket.on('end', closed);
    socket.on('close', closed);
    socket.write(payload);
  });
}

export async function metricsText(bound: Bound): Promise<string> {
  return (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
}
