import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { packAny, TypeUrl } from '@ambient-mesh/xds-types';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { TestDeltaXdsServer } from './testing/delta-xds-server.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { TestCaServer } from './testing/test-ca-server.ts';
import { waitFor } from './testing/wait.ts';
import type { NetnsHandle, WorkloadInfo, WorkloadProxyFactory } from './zds/state-manager.ts';
import type { ZdsConnection, ZdsConnector, ZdsMessage } from './zds/zds-client.ts';
import { WorkloadRequestCodec } from '@ambient-mesh/xds-types';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const LOCAL = { host: '127.0.0.1', port: 0 };

async function controlPlane(): Promise<{ xds: TestDeltaXdsServer; ca: TestCaServer; config: Config }> {
  const xds = new TestDeltaXdsServer();
  const xdsAddress = await xds.start();
  cleanups.push(() => xds.stop());
  const ca = new TestCaServer(await createTestCa());
  const caAddress = await ca.start();
  cleanups.push(() => {
    ca.stop();
  });
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-app-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, 'node-token');
  const config: Config = {
    ...loadConfig({
      POD_NAME: 'ztunnel-x',
      POD_NAMESPACE: 'istio-system',
      NODE_NAME: 'node-1',
      XDS_ADDRESS: xdsAddress,
      CA_ADDRESS: caAddress,
      TERMINATION_GRACE_PERIOD_SECONDS: '2',
    }),
    tokenPath,
    adminAddress: LOCAL,
    statsAddress: LOCAL,
    readinessAddress: LOCAL,
  };
  return { xds, ca, config };
}

async function get(
  bound: Bound,
  port: 'admin' | 'stats' | 'ready',
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const address =
    port === 'admin' ? bound.adminAddress : port === 'stats' ? bound.statsAddress : bound.readinessAddress;
  const res = await fetch(`http://127.0.0.1:${address.port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

function pushInitialState(xds: TestDeltaXdsServer): void {
  xds.push({
    typeUrl: TypeUrl.ADDRESS,
    resources: [
      {
        name: 'Kubernetes//Pod/default/pod-a',
        version: '1',
        resource: packAny(TypeUrl.ADDRESS, {
          workload: {
            uid: 'Kubernetes//Pod/default/pod-a',
            name: 'pod-a',
            namespace: 'default',
            serviceAccount: 'sa-a',
            node: 'node-1',
            addresses: [Uint8Array.of(10, 244, 0, 2)],
            tunnelProtocol: 1,
          },
        }),
      },
    ],
  });
  xds.push({
    typeUrl: TypeUrl.AUTHORIZATION,
    resources: [
      {
        name: 'default/deny-all',
        version: '1',
        resource: packAny(TypeUrl.AUTHORIZATION, {
          name: 'deny-all',
          namespace: 'default',
          scope: 1,
          action: 1,
        }),
      },
    ],
  });
}

describe('ztunnel app (direct tier)', () => {
  it('is not ready until both WDS types are synced, then serves config_dump, metrics and logging', async () => {
    const { xds, ca, config } = await controlPlane();
    const { logs } = captureLogs();
    const bound = await build(config, { logs });
    cleanups.push(() => bound.shutdown());

    expect(await get(bound, 'ready', '/healthz/ready')).toEqual({
      status: 500,
      body: 'not ready, pending: xds\n',
    });
    expect((await get(bound, 'ready', '/healthz/ready', 'POST')).status).toBe(405);

    await waitFor(() => xds.requests.length >= 2, 'initial xDS requests');
    expect(xds.requests[0]?.node?.id).toBe(
      'ztunnel~1.1.1.1~ztunnel-x.istio-system~istio-system.svc.cluster.local',
    );
    pushInitialState(xds);
    await waitFor(() => bound.readiness.ready, 'readiness');
    expect(await get(bound, 'ready', '/healthz/ready')).toEqual({ status: 200, body: 'ready\n' });

    // The local workload's certificate is prefetched through the CA with impersonation.
    await waitFor(() => ca.calls.length === 1, 'prefetch');
    expect(ca.calls[0]).toMatchObject({
      authorization: 'Bearer node-token',
      impersonated: 'spiffe://cluster.local/ns/default/sa/sa-a',
      ttlSeconds: 86_400,
    });
    let dump: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 200; attempt += 1) {
      dump = JSON.parse((await get(bound, 'admin', '/config_dump')).body) as Record<string, unknown>;
      const certs = dump.certificates as { state: string }[];
      if (certs[0]?.state === 'Available') break;
    }
    expect((dump.workloads as { name: string }[]).map(w => w.name)).toEqual(['pod-a']);
    const policies = dump.policies as { namespace: string; name: string }[];
    expect(policies.map(p => `${p.namespace}/${p.name}`)).toEqual(['default/deny-all']);
    expect(dump.certificates).toMatchObject([
      { identity: 'spiffe://cluster.local/ns/default/sa/sa-a', state: 'Available' },
    ]);
    expect(dump.workloadState).toEqual({});
    expect(dump).toHaveProperty('services');
    expect(dump).toHaveProperty('config');

    const stats = await get(bound, 'stats', '/stats/prometheus');
    expect(stats.body).toContain(
      'istio_xds_message_total{url="type.googleapis.com/istio.workload.Address"} 1',
    );

    expect((await get(bound, 'admin', '/logging')).body).toBe('current log level is debug\n');
    expect(await get(bound, 'admin', '/logging?level=warn', 'POST')).toEqual({
      status: 200,
      body: 'current log level is warn\n',
    });
    expect((await get(bound, 'admin', '/logging?level=loud', 'POST')).status).toBe(400);
  });

  it('shuts down gracefully on /quitquitquit and releases its ports', async () => {
    const { config } = await controlPlane();
    const bound = await build(config, { logs: captureLogs().logs });
    cleanups.push(() => bound.shutdown());
    expect((await get(bound, 'admin', '/quitquitquit', 'GET')).status).toBe(405);
    expect(await get(bound, 'admin', '/quitquitquit', 'POST')).toEqual({ status: 200, body: 'OK\n' });
    await bound.terminated;
    await expect(get(bound, 'stats', '/metrics')).rejects.toThrow();
  });

  it('reports a taken port as ZTUNNEL_BIND_FAILED', async () => {
    const { config } = await controlPlane();
    const first = await build(config, { logs: captureLogs().logs });
    cleanups.push(() => first.shutdown());
    await expect(
      build(
        { ...config, adminAddress: { host: '127.0.0.1', port: first.adminAddress.port } },
        { logs: captureLogs().logs },
      ),
    ).rejects.toMatchObject({
      code: 'ZTUNNEL_BIND_FAILED',
      message: expect.stringMatching(/admin listener/) as unknown,
    });
  });

  it('serves enrolled pods from the ZDS snapshot and drains them on shutdown', async () => {
    const { xds, config } = await controlPlane();
    const sent: Uint8Array[] = [];
    let deliver: ((message: ZdsMessage) => void) | undefined;
    const connector: ZdsConnector = {
      connect: (): ZdsConnection => ({
        send: data => sent.push(data),
        onMessage: listener => {
          deliver = listener;
        },
        onClose: () => undefined,
        close: () => undefined,
      }),
      netns: (fd: number): NetnsHandle => ({ inode: `ino-${fd}`, fd, close: () => undefined }),
      closeFd: () => undefined,
    };
    const started: string[] = [];
    const drained: string[] = [];
    const proxyFactory = (): WorkloadProxyFactory => ({
      start: (uid: string, info: WorkloadInfo) => {
        started.push(`${uid}:${info.name}`);
        return Promise.resolve({
          drain: () => {
            drained.push(uid);
            return Promise.resolve();
          },
        });
      },
    });
    const bound = await build(config, { logs: captureLogs().logs, zdsConnector: connector, proxyFactory });
    cleanups.push(() => bound.shutdown());
    await waitFor(() => deliver !== undefined && xds.requests.length >= 2, 'connections');
    pushInitialState(xds);
    await waitFor(() => bound.readiness.pending().join() === 'workload-manager', 'xds sync');
    deliver?.({
      data: Buffer.from(
        WorkloadRequestCodec.encode({
          add: {
            uid: 'pod-uid-1',
            workloadInfo: { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' },
          },
        }),
      ),
      fds: [11],
      truncated: false,
    });
    deliver?.({
      data: Buffer.from(WorkloadRequestCodec.encode({ snapshotSent: {} })),
      fds: [],
      truncated: false,
    });
    await waitFor(() => bound.readiness.ready, 'ready after the snapshot');
    expect(started).toEqual(['pod-uid-1:pod-a']);
    const dump = JSON.parse((await get(bound, 'admin', '/config_dump')).body) as { workloadState: unknown };
    expect(dump.workloadState).toEqual({
      'pod-uid-1': {
        info: { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' },
        state: 'Up',
        connections: { inbound: [], outbound: [] },
      },
    });
    expect((await get(bound, 'stats', '/metrics')).body).toContain('workload_manager_active_proxy_count 1');
    await bound.shutdown();
    expect(drained).toEqual(['pod-uid-1']);
  });
});
