/**
 * Direct tier: one ztunnel app, two enrolled "pods" that are loopback addresses of this host, a
 * test delta-xDS server and a test CA. Traffic: app A → A's 15001 → HBONE mTLS → B's 15008 → app B.
 */
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher, createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { packAny, TypeUrl, WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';
import type { security } from '@ambient-mesh/xds-types';
import { build } from '../app.ts';
import type { Bound } from '../app.ts';
import { loadConfig } from '../config.ts';
import { TestDeltaXdsServer } from '../testing/delta-xds-server.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import type { ZdsConnector, ZdsMessage } from '../zds/zds-client.ts';
import { inPodProxyFactory } from './inpod-factory.ts';
import { loopbackPodSockets } from './pod-sockets.ts';
import type { Destination } from './route.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Pod {
  readonly name: string;
  readonly ip: string;
  /** What A's app "dialled" (stands in for SO_ORIGINAL_DST). */
  dial: Destination | undefined;
  plaintext: Destination | undefined;
}

interface Mesh {
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

interface MeshOptions {
  /** Enrol both pods over ZDS before istiod has sent their workloads (the real-cluster order). */
  readonly wdsAfterAdd?: boolean;
  readonly lookupTimeoutMs?: number;
}

function tokenFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-proxy-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'istio-token'), 'token');
  return join(dir, 'istio-token');
}

function ipBytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

function podResource(pod: Pod, sa: string) {
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

function policyResource(name: string, init: Omit<security.AuthorizationInit, 'name' | 'namespace'>) {
  return {
    name: `default/${name}`,
    version: '1',
    resource: packAny(TypeUrl.AUTHORIZATION, { name, namespace: 'default', ...init }),
  };
}

async function echoServer(ip: string): Promise<{ server: Server; peers: string[] }> {
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

async function mesh(options: MeshOptions = {}): Promise<Mesh> {
  const net = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
  const a: Pod = { name: 'pod-a', ip: `${net}.2`, dial: undefined, plaintext: undefined };
  const b: Pod = { name: 'pod-b', ip: `${net}.3`, dial: undefined, plaintext: undefined };
  const appB = await echoServer(b.ip);
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
  const config = {
    ...loadConfig({
      POD_NAME: 'ztunnel',
      POD_NAMESPACE: 'istio-system',
      NODE_NAME: 'node-1',
      XDS_ADDRESS: xdsAddress,
    }),
    adminAddress: { host: '127.0.0.1', port: 0 },
    statsAddress: { host: '127.0.0.1', port: 0 },
    readinessAddress: { host: '127.0.0.1', port: 0 },
    terminationGracePeriodMs: 1_000,
    tokenPath: tokenFile(),
  };
  const bound = await build(config, {
    logs,
    caFetch: createLocalFetcher(ca),
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
function exchange(
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

async function metricsText(bound: Bound): Promise<string> {
  return (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
}

describe('in-pod proxy (direct tier, loopback pods)', () => {
  it("carries A → 15001 → HBONE mTLS → 15008 → B, and B sees A's pod IP", async () => {
    const m = await mesh();
    const { echoed, socket } = await exchange(m, 'hello over hbone');
    socket.end();
    expect(echoed).toBe('hello over hbone');
    expect(m.appB.peers).toEqual([m.a.ip]);

    await waitFor(() => m.records.filter(r => r.msg === 'connection complete').length >= 2, 'access logs');
    const complete = m.records.filter(r => r.msg === 'connection complete' && r.component === 'access');
    expect(complete.find(r => r.direction === 'outbound')).toMatchObject({
      'src.workload': 'pod-a',
      'dst.addr': `${m.b.ip}:15008`,
      'dst.hbone_addr': `${m.b.ip}:8080`,
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/sa-b',
      bytes_sent: 16,
      bytes_recv: 16,
    });
    expect(complete.find(r => r.direction === 'inbound')).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sa-a',
      'src.workload': 'pod-a',
      'dst.workload': 'pod-b',
    });

    const text = await metricsText(m.bound);
    const opened = text.split('\n').filter(l => l.startsWith('istio_tcp_connections_opened_total{'));
    const source = opened.find(l => l.includes('reporter="source"'));
    const destination = opened.find(l => l.includes('reporter="destination"'));
    for (const line of [source, destination]) {
      expect(line).toContain('source_workload="pod-a"');
      expect(line).toContain('source_principal="spiffe://cluster.local/ns/default/sa/sa-a"');
      expect(line).toContain('destination_workload="pod-b"');
      expect(line).toContain('destination_principal="spiffe://cluster.local/ns/default/sa/sa-b"');
      expect(line).toContain('connection_security_policy="mutual_tls"');
      expect(line).toContain('response_flags="-"');
    }
    expect(text).toMatch(/^istio_tcp_received_bytes_total\{reporter="source".*\} 16$/m);
  });

  it('answers 401 under a DENY policy, counts DENY, and closes a connection open when the policy arrived', async () => {
    const m = await mesh();
    const { socket: open } = await exchange(m, 'before');
    // The app's socket allows half-open: ztunnel closing its side shows up as 'end'.
    let closed = false;
    open.once('end', () => (closed = true));
    open.once('close', () => (closed = true));
    m.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        policyResource('deny-8080', {
          scope: 1,
          action: 1,
          rules: [{ clauses: [{ matches: [{ destinationPorts: [8080] }] }] }],
        }),
      ],
    });
    await waitFor(() => closed, 'the open connection to be closed by the policy change');
    await expect(exchange(m, 'after')).rejects.toThrow(/closed after ""/);
    await waitFor(
      () =>
        m.records.some(
          r => r.direction === 'outbound' && typeof r.error === 'string' && r.error.includes('401'),
        ),
      'outbound 401 log',
    );
    expect(
      m.records.some(
        r =>
          r.direction === 'inbound' &&
          r.error === 'connection closed due to policy change (default/deny-8080)',
      ),
    ).toBe(true);
    const text = await metricsText(m.bound);
    expect(text).toMatch(
      /^istio_tcp_connections_opened_total\{reporter="destination".*response_flags="DENY".*\} 1$/m,
    );
  });

  it('rejects a CONNECT whose authority IP differs from the dialled IP with 400, and self-calls with 503', async () => {
    const m = await mesh();
    const client = createHboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const raw = await issueRawCert(m.ca, 'spiffe://cluster.local/ns/default/sa/sa-a');
    const identity = {
      id: 'spiffe://cluster.local/ns/default/sa/sa-a',
      certChain: raw.certChain,
      privateKey: raw.privateKeyPem,
      roots: raw.roots,
    };
    const connect = (target: string) =>
      client.connect({
        target,
        nextHop: `${m.b.ip}:15008`,
        identity,
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/sa-b'],
      });
    await expect(connect(`${m.a.ip}:8080`)).rejects.toMatchObject({ status: 400 });
    await expect(connect(`${m.b.ip}:15001`)).rejects.toMatchObject({ status: 503 });
    const ok = await connect(`${m.b.ip}:8080`);
    ok.end();
    // Only the valid CONNECT reached the app.
    expect(m.appB.peers).toHaveLength(1);
  });

  it('resets a peer from a foreign trust domain', async () => {
    const m = await mesh();
    const client = createHboneClient({ connectTimeoutMs: 3_000 });
    cleanups.push(() => {
      client.destroy();
    });
    const raw = await issueRawCert(m.ca, 'spiffe://evil.local/ns/default/sa/sa-a');
    const identity = {
      id: 'spiffe://evil.local/ns/default/sa/sa-a',
      certChain: raw.certChain,
      privateKey: raw.privateKeyPem,
      roots: raw.roots,
    };
    await expect(
      client.connect({
        target: `${m.b.ip}:8080`,
        nextHop: `${m.b.ip}:15008`,
        identity,
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/sa-b'],
      }),
    ).rejects.toThrow();
    expect(m.appB.peers).toEqual([]);
  });

  it('accepts plaintext on 15006 unless a STRICT policy denies connections without identity', async () => {
    const m = await mesh();
    m.b.plaintext = { address: m.b.ip, port: 8080 };
    const plaintext = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = netConnect({ host: m.b.ip, port: 15006, localAddress: m.a.ip });
        let data = '';
        socket.on('data', chunk => {
          data += String(chunk);
          socket.end();
        });
        socket.on('error', reject);
        socket.on('close', () => {
          resolve(data);
        });
        socket.write('plain');
      });
    expect(await plaintext()).toBe('plain');
    expect(m.appB.peers).toEqual([m.a.ip]);
    m.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        policyResource('strict', {
          scope: 1,
          action: 1,
          rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
        }),
      ],
    });
    await waitFor(() => m.xds.requestsFor(TypeUrl.AUTHORIZATION).length >= 3, 'policy ACK');
    expect(await plaintext()).toBe('');
    const { echoed, socket } = await exchange(m, 'mtls still works');
    socket.end();
    expect(echoed).toBe('mtls still works');
  });
});

describe('in-pod proxy enrolled before its WDS workload (direct tier)', () => {
  const uidA = 'Kubernetes//Pod/default/pod-a';

  it('ACKs the Add with the listeners bound, and serves a connection made before the workload arrives', async () => {
    const m = await mesh({ wdsAfterAdd: true });
    expect(m.zdsReplies()).toEqual(['', '', '']);
    expect(m.bound.state.workloadByUid(uidA)).toBeUndefined();
    expect(await metricsText(m.bound)).toMatch(/^workload_manager_active_proxy_count 2$/m);

    m.a.dial = { address: m.b.ip, port: 8080 };
    const early = netConnect({ host: m.a.ip, port: 15001, localAddress: m.a.ip, allowHalfOpen: true });
    cleanups.push(() => early.destroy());
    early.on('error', () => undefined);
    let echoed = '';
    early.on('data', chunk => (echoed += String(chunk)));
    await once(early, 'connect');
    early.write('early bird');
    expect(m.bound.state.workloadByUid(uidA)).toBeUndefined();

    m.pushWds();
    await waitFor(() => echoed === 'early bird', 'the early connection to be served', 10_000);
    early.end();
    expect(m.appB.peers).toEqual([m.a.ip]);
    await waitFor(() => m.bound.readiness.ready, 'ztunnel ready once WDS synced');
  });

  it('closes a connection that never gets its workload after the bound, with an access-log line', async () => {
    const m = await mesh({ wdsAfterAdd: true, lookupTimeoutMs: 300 });
    await expect(exchange(m, 'nobody home')).rejects.toThrow(/closed after ""/);
    const failed = (direction: string, pod: string) =>
      m.records.find(
        r =>
          r.msg === 'connection failed' &&
          r.direction === direction &&
          String(r.error).startsWith(`no WDS workload for default/${pod} (service account sa-`),
      );
    await waitFor(() => failed('outbound', 'pod-a') !== undefined, 'the outbound failure log');
    expect(failed('outbound', 'pod-a')).toMatchObject({ 'dst.addr': `${m.b.ip}:8080`, component: 'access' });

    // B's HBONE port is bound, and a connection to it is closed the same way.
    const raw = netConnect({ host: m.b.ip, port: 15008, localAddress: m.a.ip });
    cleanups.push(() => raw.destroy());
    raw.on('error', () => undefined);
    await once(raw, 'close');
    await waitFor(() => failed('inbound', 'pod-b') !== undefined, 'the inbound failure log');
    expect(m.appB.peers).toEqual([]);

    // The pods are served as soon as the workloads arrive.
    m.pushWds();
    await waitFor(() => m.bound.state.workloadByUid(uidA) !== undefined, 'the workloads');
    const { echoed, socket } = await exchange(m, 'now served');
    socket.end();
    expect(echoed).toBe('now served');
  });
});

describe('inbound destination service (direct tier)', () => {
  it('labels destination_service* from the forwarded host, or from the workload services in WDS', async () => {
    const m = await mesh();
    const svcKey = 'default/svc-b.default.svc.cluster.local';
    const pushed = m.xds.requestsFor(TypeUrl.ADDRESS).length;
    const withService = podResource(m.b, 'sa-b');
    m.xds.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          ...withService,
          version: '2',
          resource: packAny(TypeUrl.ADDRESS, {
            workload: {
              uid: 'Kubernetes//Pod/default/pod-b',
              name: 'pod-b',
              namespace: 'default',
              serviceAccount: 'sa-b',
              node: 'node-1',
              addresses: [ipBytes(m.b.ip)],
              tunnelProtocol: 1,
              canonicalName: 'pod-b',
              canonicalRevision: 'v1',
              services: { [svcKey]: { ports: [] } },
            },
          }),
        },
        {
          name: svcKey,
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, {
            service: {
              name: 'svc-b',
              namespace: 'default',
              hostname: 'svc-b.default.svc.cluster.local',
              addresses: [{ network: '', address: ipBytes('10.96.0.10') }],
              ports: [{ servicePort: 80, targetPort: 8080 }],
            },
          }),
        },
      ],
    });
    await waitFor(() => m.xds.requestsFor(TypeUrl.ADDRESS).length > pushed, 'WDS ACK');

    // Service-addressed: the client sends `forwarded: ...;host=svc-b...`.
    const viaVip = await exchange(m, 'to the service', { address: '10.96.0.10', port: 80 });
    viaVip.socket.end();
    // Pod-addressed: no host, the service is found from B's WDS services by the target port.
    const viaPod = await exchange(m, 'to the pod');
    viaPod.socket.end();
    expect(m.appB.peers).toEqual([m.a.ip, m.a.ip]);

    await waitFor(
      () => m.records.filter(r => r.msg === 'connection complete' && r.direction === 'inbound').length >= 2,
      'inbound access logs',
    );
    const inbound = m.records.filter(r => r.msg === 'connection complete' && r.direction === 'inbound');
    for (const record of inbound) expect(record['dst.service']).toBe('svc-b.default.svc.cluster.local');

    const text = await metricsText(m.bound);
    const destination = text
      .split('\n')
      .filter(l => l.startsWith('istio_tcp_connections_opened_total{reporter="destination"'));
    expect(destination).toHaveLength(1);
    expect(destination[0]).toContain('destination_service="svc-b.default.svc.cluster.local"');
    expect(destination[0]).toContain('destination_service_namespace="default"');
    expect(destination[0]).toContain('destination_service_name="svc-b"');
    expect(destination[0]).toMatch(/ 2$/);
  });
});
