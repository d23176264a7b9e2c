import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../errors.ts';
import { runCli } from '../testing.ts';
import { startFakeApiserver, type FakeApiserver } from '../testing-apiserver.ts';
import {
  formatProxyStatus,
  isDebugClient,
  orderTypes,
  proxyStatusRows,
  syncState,
  type SyncStatusEntry,
} from './proxy-status.ts';

const WDS = 'type.googleapis.com/istio.workload.Address';
const WADS = 'type.googleapis.com/istio.security.Authorization';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';

const ztunnel = (
  pod: string,
  wds: { sent?: string; acked?: string; lastError?: string },
): SyncStatusEntry => ({
  cluster_id: 'Kubernetes',
  proxy: `${pod}.istio-system`,
  proxy_type: 'ztunnel',
  istio_version: '0.1.0',
  resources: { [WDS]: wds, [WADS]: { sent: 'n1', acked: 'n1' } },
});
const waypoint: SyncStatusEntry = {
  cluster_id: 'Kubernetes',
  proxy: 'waypoint-7f9.sample',
  proxy_type: 'router',
  istio_version: '0.1.0',
  resources: { [LDS]: { sent: 'a' } },
};

describe('proxy-status', () => {
  it("leaves out debug clients (istioctl's own stream), as istioctl does, but keeps sidecars", () => {
    const istioctl: SyncStatusEntry = {
      cluster_id: 'Kubernetes',
      proxy: 'istioctl-4c2d.istio-system',
      proxy_type: 'sidecar',
      resources: { 'istio.io/debug/syncz': { sent: 'd1', acked: 'd1' } },
    };
    const bare: SyncStatusEntry = { proxy: 'istioctl-9a1b.istio-system', proxy_type: 'sidecar' };
    const sidecar: SyncStatusEntry = {
      proxy: 'app-1.sample',
      proxy_type: 'sidecar',
      resources: { [LDS]: { sent: 'a', acked: 'a' } },
    };
    const rows = proxyStatusRows([
      {
        istiod: 'istiod-a',
        entries: [istioctl, bare, sidecar, ztunnel('ztunnel-1', { sent: 'y', acked: 'y' })],
      },
    ]);
    expect(rows.map(r => r.name)).toEqual(['app-1.sample', 'ztunnel-1.istio-system']);
    expect(isDebugClient(istioctl)).toBe(true);
    expect(isDebugClient({ ...waypoint, resources: {} })).toBe(false);
  });

  it('orders types as istioctl does: CDS, LDS, EDS, RDS, then the others by name', () => {
    expect(orderTypes(['RDS', 'EDS', 'WDS', 'LDS', 'CDS', 'WADS'])).toEqual([
      'CDS',
      'LDS',
      'EDS',
      'RDS',
      'WADS',
      'WDS',
    ]);
    const rows = proxyStatusRows([
      {
        istiod: 'istiod-a',
        entries: [
          {
            proxy: 'waypoint-1.sample',
            proxy_type: 'router',
            resources: Object.fromEntries(
              [
                'type.googleapis.com/envoy.config.cluster.v3.Cluster',
                'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
                LDS,
                'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
              ].map(u => [u, { sent: 'a', acked: 'a' }]),
            ),
          },
        ],
      },
    ]);
    expect(formatProxyStatus(rows, 'table')).toMatch(/ 4 \(CDS,LDS,EDS,RDS\)\n$/);
  });

  it('derives each type state: SYNCED when the last send is ACKed, STALE when not, ERROR on a NACK', () => {
    expect(syncState({ sent: 'n2', acked: 'n2' })).toBe('SYNCED');
    expect(syncState({ sent: 'n2', acked: 'n1' })).toBe('STALE');
    expect(syncState({ sent: 'n2' })).toBe('STALE');
    expect(syncState({})).toBe('NOT SENT');
    expect(syncState({ sent: 'n2', acked: 'n1', lastError: 'bad' })).toBe('ERROR');
  });

  it("prints istioctl's default columns and, with -v, one column per type", () => {
    const rows = proxyStatusRows([
      { istiod: 'istiod-b', entries: [waypoint] },
      {
        istiod: 'istiod-a',
        entries: [ztunnel('ztunnel-2', { sent: 'x' }), ztunnel('ztunnel-1', { sent: 'y', acked: 'y' })],
      },
    ]);
    expect(formatProxyStatus(rows, 'table')).toBe(
      [
        'NAME                   CLUSTER    ISTIOD   VERSION SUBSCRIBED TYPES',
        'waypoint-7f9.sample    Kubernetes istiod-b 0.1.0   1 (LDS)',
        'ztunnel-1.istio-system Kubernetes istiod-a 0.1.0   2 (WADS,WDS)',
        'ztunnel-2.istio-system Kubernetes istiod-a 0.1.0   2 (WADS,WDS)',
        '',
      ].join('\n'),
    );
    expect(formatProxyStatus(rows, 'table', true)).toBe(
      [
        'NAME                   CLUSTER    LDS     WADS    WDS     ISTIOD   VERSION',
        'waypoint-7f9.sample    Kubernetes STALE   IGNORED IGNORED istiod-b 0.1.0',
        'ztunnel-1.istio-system Kubernetes IGNORED SYNCED  SYNCED  istiod-a 0.1.0',
        'ztunnel-2.istio-system Kubernetes IGNORED SYNCED  STALE   istiod-a 0.1.0',
        '',
      ].join('\n'),
    );
  });

  it('filters by proxy (with or without its namespace) and by namespace', () => {
    const answers = [{ istiod: 'i', entries: [waypoint, ztunnel('ztunnel-1', {})] }];
    expect(proxyStatusRows(answers, { proxy: 'ztunnel-1' }).map(r => r.name)).toEqual([
      'ztunnel-1.istio-system',
    ]);
    expect(proxyStatusRows(answers, { proxy: 'waypoint-7f9.sample' })).toHaveLength(1);
    expect(proxyStatusRows(answers, { namespace: 'sample' }).map(r => r.name)).toEqual([
      'waypoint-7f9.sample',
    ]);
  });
});

describe('proxy-status against a cluster', () => {
  let api: FakeApiserver;
  let answer: { status: number; body: string } | undefined;
  beforeAll(async () => {
    api = await startFakeApiserver();
  });
  afterAll(async () => {
    await api.close();
  });
  const run = (...argv: string[]): ReturnType<typeof runCli> =>
    runCli(['--kubeconfig', api.kubeconfig, ...argv], {
      cluster: api.cluster((pod, port, method, path) =>
        pod.name === 'istiod-1' && port === 15014 && method === 'GET' && path === '/debug/syncz'
          ? answer
          : undefined,
      ),
    });

  it('says there is no istiod, exit 7', async () => {
    const r = await run('proxy-status');
    expect(r.code).toBe(ExitCode.MeshUnavailable);
    expect(r.stderr).toMatch(/no running istiod pod in istio-system; check the mesh is installed/);
  });

  it("reads every istiod's /debug/syncz on 15014 and prints the proxies", async () => {
    api.put('/api/v1/namespaces/istio-system/pods/istiod-1', {
      metadata: { name: 'istiod-1', namespace: 'istio-system', labels: { app: 'istiod' } },
      spec: { nodeName: 'node-0' },
      status: { phase: 'Running' },
    });
    answer = { status: 200, body: JSON.stringify([ztunnel('ztunnel-1', { sent: 'a', acked: 'a' })]) };
    const r = await run('proxy-status', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      {
        name: 'ztunnel-1.istio-system',
        cluster: 'Kubernetes',
        istiod: 'istiod-1',
        version: '0.1.0',
        proxyType: 'ztunnel',
        types: { WDS: 'SYNCED', WADS: 'SYNCED' },
      },
    ]);
    const missing = await run('proxy-status', 'ztunnel-9');
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toMatch(/no proxy "ztunnel-9" is connected to istiod; check the name/);
  });

  it('names the istiod that does not answer and what to check, exit 7', async () => {
    answer = undefined;
    const r = await run('ps');
    expect(r.code).toBe(ExitCode.MeshUnavailable);
    expect(r.stderr).toMatch(
      /istiod istiod-1 did not answer \/debug\/syncz on its monitoring port 15014 \(no answer\); check the pod is Ready/,
    );
    answer = { status: 200, body: '<html>' };
    expect((await run('ps')).stderr).toMatch(/the answer is not a list of sync states/);
  });
});
