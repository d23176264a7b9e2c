/**
 * The in-pod mesh of the namespaced tier (root only): two pod netns on one test node with the
 * in-pod redirection rules applied (nft-rules), an echo server on B:8080, a test delta-xDS
 * server and a test CA; `startInpodZtunnel` enrols both pods in a real ztunnel over a ZDS stand-in.
 * Everything created is registered in the caller's `cleanups` (run them in reverse order).
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { connectInNetns, listenInNetns, netnsInode } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';
import { createLocalFetcher, createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { packAny, TypeUrl, WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from '../app.ts';
import type { Bound } from '../app.ts';
import type { Config } from '../config.ts';
import { inPodProxyFactory } from '../proxy/inpod-factory.ts';
import { netnsPodSockets } from '../proxy/netns-pod-sockets.ts';
import type { ZdsConnector, ZdsMessage } from '../zds/zds-client.ts';
import { TestDeltaXdsServer } from './delta-xds-server.ts';
import { createTestNode } from './node-netns.ts';
import type { TestNode, TestPod } from './node-netns.ts';
import { testZtunnelConfig } from './test-config.ts';
import { waitFor } from './wait.ts';

/** What a test registers to undo, run in reverse order after it. */
export type Cleanups = (() => unknown)[];

/** One WDS resource as the test xDS server pushes it. */
export type WdsResource = NonNullable<Parameters<TestDeltaXdsServer['push']>[0]['resources']>[number];

/** The 16 bytes of an IPv6 literal (`::` expanded). */
export function ip6Bytes(ip: string): Uint8Array {
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const front = groups(head);
  const back = ip.includes('::') ? groups(tail) : [];
  const all = [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return Uint8Array.from(all.flatMap(g => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

export function podAddress(pod: TestPod): WdsResource {
  const uid = `Kubernetes//Pod/default/${pod.name}`;
  return {
    name: uid,
    version: '1',
    resource: packAny(TypeUrl.ADDRESS, {
      workload: {
        uid,
        name: pod.name,
        namespace: 'default',
        serviceAccount: `sa-${pod.name}`,
        node: 'node-1',
        addresses: [
          Uint8Array.from(pod.ip.split('.').map(Number)),
          ...(pod.ip6 === undefined ? [] : [ip6Bytes(pod.ip6)]),
        ],
        tunnelProtocol: 1,
      },
    }),
  };
}

export interface Setup {
  readonly node: TestNode;
  readonly a: TestPod;
  readonly b: TestPod;
  readonly xds: TestDeltaXdsServer;
  readonly ca: CertificateAuthority;
  readonly config: Config;
  readonly peersOfB: string[];
}

/** `ipv6`: the pods get an IPv6 address too, and B's echo server also listens on `::`. */
export async function setupInpodMesh(
  label: string,
  cleanups: Cleanups,
  options: { readonly ipv6?: boolean } = {},
): Promise<Setup> {
  const ipv6 = options.ipv6 === true;
  const node = createTestNode(label, ['a', 'b'], { ipv6 });
  cleanups.push(() => {
    node.remove();
  });
  const [a, b] = node.pods as [TestPod, TestPod];
  for (const pod of [a, b]) {
    await new InpodRedirection(netnsExecutor({ name: pod.netns }), {
      dnsCapture: false,
      ipv6,
    }).apply();
  }
  const peersOfB: string[] = [];
  const echo: Server = createServer({ allowHalfOpen: true }, socket => {
    peersOfB.push(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await listenInNetns(b.fd, { host: '0.0.0.0', port: 8080 }, echo);
  cleanups.push(() => echo.close());
  if (ipv6) {
    const echo6: Server = createServer({ allowHalfOpen: true }, socket => {
      echo.emit('connection', socket);
    });
    await listenInNetns(b.fd, { host: '::', port: 8080, v6Only: true }, echo6);
    cleanups.push(() => echo6.close());
  }
  const xds = new TestDeltaXdsServer();
  const xdsAddress = await xds.start();
  cleanups.push(() => xds.stop());
  const ca = await createTestCa();
  const { config, cleanup: removeToken } = testZtunnelConfig(xdsAddress);
  cleanups.push(removeToken);
  return { node, a, b, xds, ca, config, peersOfB };
}

export interface StartOptions {
  /** Enrol the pods before istiod has sent their workloads (push them with `pushWds`). */
  readonly wdsAfterAdd?: boolean;
  readonly lookupTimeoutMs?: number;
  /** Receives the `error` of every ZDS WorkloadResponse ('' = ACK). */
  readonly replies?: string[];
  readonly config?: Config;
  readonly logs?: ReturnType<typeof captureLogs>['logs'];
}

export function pushWds(s: Setup): void {
  s.xds.push({ typeUrl: TypeUrl.ADDRESS, resources: [podAddress(s.a), podAddress(s.b)] });
}

/** Starts a ztunnel, feeds it WDS, and enrols both pods with a ZDS snapshot. */
export async function startInpodZtunnel(
  s: Setup,
  cleanups: Cleanups,
  options: StartOptions = {},
): Promise<Bound> {
  let deliver: ((message: ZdsMessage) => void) | undefined;
  const replies = options.replies ?? [];
  let hello = true;
  const connector: ZdsConnector = {
    connect: () => ({
      send: data => {
        if (!hello) replies.push(WorkloadResponseCodec.decode(data).ack?.error ?? '');
        hello = false;
      },
      onMessage: listener => {
        deliver = listener;
      },
      onClose: () => undefined,
      close: () => undefined,
    }),
    // The pod fds belong to the test topology, which closes them.
    netns: fd => ({ inode: String(netnsInode(fd)), fd, close: () => undefined }),
    closeFd: () => undefined,
  };
  const bound = await build(options.config ?? s.config, {
    logs: options.logs ?? captureLogs().logs,
    caFetch: createLocalFetcher(s.ca),
    zdsConnector: connector,
    proxyFactory: inPodProxyFactory({
      sockets: ({ netns }) => netnsPodSockets({ netns, mark: 0x539, origSrc: 'try' }),
      ...(options.lookupTimeoutMs === undefined ? {} : { lookupTimeoutMs: options.lookupTimeoutMs }),
    }),
  });
  cleanups.push(() => bound.shutdown());
  const streams = s.xds.streams;
  await waitFor(() => s.xds.streams > streams && deliver !== undefined, 'xDS and ZDS connections');
  if (options.wdsAfterAdd !== true) pushWds(s);
  s.xds.push({ typeUrl: TypeUrl.AUTHORIZATION, resources: [] });
  for (const pod of [s.a, s.b]) {
    const add = WorkloadRequestCodec.encode({
      add: {
        uid: `uid-${pod.name}`,
        workloadInfo: { name: pod.name, namespace: 'default', serviceAccount: `sa-${pod.name}` },
      },
    });
    deliver?.({ data: Buffer.from(add), fds: [pod.fd], truncated: false });
  }
  deliver?.({
    data: Buffer.from(WorkloadRequestCodec.encode({ snapshotSent: {} })),
    fds: [],
    truncated: false,
  });
  if (options.wdsAfterAdd === true) {
    await waitFor(() => replies.length >= 3, 'ZDS replies to both Adds and SnapshotSent');
    return bound;
  }
  await waitFor(() => bound.readiness.ready, 'ztunnel ready', 15_000);
  return bound;
}

/** The app in A opens TCP to B:8080 (captured by the rules) and reads the echo. */
export function echoFromA(s: Setup, payload: string, host = s.b.ip): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connectInNetns(s.a.fd, { host, port: 8080 });
    let echoed = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo within 10 s (got ${JSON.stringify(echoed)})`));
    }, 10_000);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', chunk => {
      echoed += String(chunk);
      if (echoed.length >= payload.length) {
        clearTimeout(timer);
        socket.end();
        resolve(echoed);
      }
    });
    socket.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (echoed.length < payload.length) reject(new Error(`closed after ${JSON.stringify(echoed)}`));
    });
  });
}
