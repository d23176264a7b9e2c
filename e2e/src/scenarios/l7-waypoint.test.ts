// Cluster tier: L7 through a waypoint (issue 20) on a 2-node local cluster (name `l7wp`, slot 74),
// one cluster shared by the file. Every Service of the namespace uses the waypoint istiod deploys
// for the Gateway `waypoint` (namespace label `istio.io/use-waypoint`): client ztunnel -> waypoint
// -> server ztunnel, each hop HBONE mTLS. The cases run in order on the one mesh.
//
// Traffic is sent by curl inside the client pod's netns (its own, captured traffic); a batch of
// requests is one curl run over one kept-alive connection, so the waypoint routes each request on
// its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { getInNetns } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import {
  HTTPROUTE_PATH,
  denyAdminPost,
  requestBatch,
  waypointMetrics,
  waypointRequests,
  weightedRoute,
  type WaypointPod,
} from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, httpCode, ztunnelOn, type MeshPod } from '../mesh/workloads.ts';

const NS = 'l7';
const TD = 'cluster.local';
const WAYPOINT_ID = `${TD}/ns/${NS}/sa/waypoint`;
const scenario = new ScenarioContext<MeshPod>('l7');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;

const share = (n: number | undefined, total: number): number => (n ?? 0) / total;

async function create(path: string, body: object): Promise<void> {
  await kube().client.create(path, body);
}

/** The waypoint's admin `/config_dump`: `<type>/<name>` -> version of its listeners and routes. */
async function routeVersions(): Promise<Map<string, string>> {
  const text = await getInNetns(waypoint.netns, 15000, '/config_dump');
  const dump = JSON.parse(text ?? '{}') as Record<string, { name: string; version: string }[] | undefined>;
  const out = new Map<string, string>();
  // istiod may send a route inline in its listener (HCM `route_config`) or over RDS.
  for (const type of ['listeners', 'routes'])
    for (const r of dump[type] ?? []) out.set(`${type}/${r.name}`, r.version);
  return out;
}

/** Applies `change`, then waits until the waypoint holds a new RouteConfiguration version. */
async function routeChange(change: () => Promise<void>): Promise<void> {
  const before = await routeVersions();
  await change();
  await waitFor(
    'a new route configuration in the waypoint',
    async () => {
      const after = await routeVersions();
      for (const [name, version] of after) if (before.get(name) !== version) return true;
      return undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

const svc = (name: string): string => `http://${name}.${NS}.svc.cluster.local`;

describe('L7 through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    const echo = (name: string, node: string, sa: string, labels: Record<string, string>, env = {}) =>
      echoPod(name, { namespace: NS, node, serviceAccount: sa, labels, env, containerPorts: [8080] });
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'l7wp', slot: 74 },
      namespace: NS,
      serviceAccounts: ['client', 'echo', 'flaky', 'slow'],
      pods: [
        ['echo-v1', echo('echo-v1', 'node-1', 'echo', { app: 'echo', version: 'v1' }, { VERSION: 'v1' })],
        ['echo-v2', echo('echo-v2', 'node-1', 'echo', { app: 'echo', version: 'v2' }, { VERSION: 'v2' })],
        ['flaky', echo('flaky', 'node-1', 'flaky', { app: 'flaky' }, { FAIL_EVERY: '2', VERSION: 'flaky' })],
        ['slow', echo('slow', 'node-0', 'slow', { app: 'slow' }, { DELAY_MS: '2000', VERSION: 'slow' })],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [
        ['echo', { app: 'echo' }],
        ['echo-v1', { app: 'echo', version: 'v1' }],
        ['echo-v2', { app: 'echo', version: 'v2' }],
        ['flaky', { app: 'flaky' }],
        ['slow', { app: 'slow' }],
      ],
      probe: { from: 'client', service: 'echo' },
    });
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('splits 90/10 by HTTPRoute weight, and 50/50 after an edit of the route (nothing restarted)', async () => {
    const route = (v1: number, v2: number) =>
      weightedRoute(NS, 'echo-split', 'echo', [
        { service: 'echo-v1', weight: v1 },
        { service: 'echo-v2', weight: v2 },
      ]);
    await routeChange(() => create(HTTPROUTE_PATH(NS), route(90, 10)));
    const first = await requestBatch(pod('client'), `${svc('echo')}/`, 1000);
    log(`90/10: ${JSON.stringify(Object.fromEntries(first.versions))} of ${first.total}`);
    expect(first.codes.get(200)).toBe(1000);
    expect(Math.abs(share(first.versions.get('v2'), 1000) - 0.1)).toBeLessThanOrEqual(0.05);

    await routeChange(() =>
      kube().client.mergePatch(`${HTTPROUTE_PATH(NS)}/echo-split`, { spec: route(50, 50).spec }),
    );
    const second = await requestBatch(pod('client'), `${svc('echo')}/`, 1000);
    log(`50/50: ${JSON.stringify(Object.fromEntries(second.versions))} of ${second.total}`);
    expect(second.codes.get(200)).toBe(1000);
    expect(Math.abs(share(second.versions.get('v2'), 1000) - 0.5)).toBeLessThanOrEqual(0.05);
  }, 240_000);

  it('lets a pod bypass the waypoint by default; an L4 ALLOW of only the waypoint identity denies it, while traffic through the waypoint still works', async () => {
    const client = pod('client');
    const direct = `http://${pod('echo-v1').ip}:8080/`;
    expect(await httpCode(client, direct)).toBe(200);
    // The destination ztunnel's access log says the connection went past the waypoint.
    const z = await ztunnelOn(kube(), pod('echo-v1').node);
    await waitFor(
      'waypoint=bypassed in the access log of the ztunnel of echo-v1',
      async () => {
        const text = await kube().client.get<unknown>(`/api/v1/namespaces/istio-system/pods/${z?.name}/log`);
        return String(text)
          .split('\n')
          .some(l => l.includes('waypoint=bypassed') && l.includes('dst.workload=echo-v1'))
          ? true
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 1_000 },
    );
    await create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'only-waypoint', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'echo' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [WAYPOINT_ID] } }] }],
      },
    });
    await waitFor(
      'the direct request to be denied',
      async () => ((await httpCode(client, direct)) === 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const through = await requestBatch(client, `${svc('echo')}/`, 20);
    expect(through.codes.get(200)).toBe(20);
  }, 120_000);

  it('L7 DENY on POST /admin answers 403 while GET / stays 200', async () => {
    const client = pod('client');
    await denyAdminPost(kube().client, NS, client, svc('echo'));
    expect((await requestBatch(client, `${svc('echo')}/`, 10)).codes.get(200)).toBe(10);
    expect((await requestBatch(client, `${svc('echo')}/admin`, 10)).codes.get(200)).toBe(10);
    expect((await requestBatch(client, `${svc('echo')}/admin`, 10, { method: 'POST' })).codes.get(403)).toBe(
      10,
    );
  }, 120_000);

  it('a 500 ms route timeout answers 504 for a 2 s backend', async () => {
    await routeChange(() =>
      create(
        HTTPROUTE_PATH(NS),
        weightedRoute(NS, 'slow', 'slow', [{ service: 'slow', weight: 1 }], 80, {
          timeouts: { request: '500ms' },
        }),
      ),
    );
    const r = await requestBatch(pod('client'), `${svc('slow')}/`, 3);
    expect(r.codes.get(504)).toBe(3);
  }, 120_000);

  it('retries (attempts 6, on 503) recover a backend failing every other request; without retries about half fail', async () => {
    const retried = (attempts: number) =>
      weightedRoute(NS, 'flaky', 'flaky', [{ service: 'flaky', weight: 1 }], 80, {
        retry: { attempts, codes: [503] },
      });
    /** The waypoint's `envoy_cluster_upstream_rq_retry` of the flaky Service's cluster. */
    const retries = async (): Promise<number> =>
      (await waypointMetrics(waypoint))
        .filter(
          s =>
            s.name === 'envoy_cluster_upstream_rq_retry' &&
            s.labels.cluster_name?.includes('|flaky.') === true,
        )
        .reduce((n, s) => n + s.value, 0);
    await routeChange(() => create(HTTPROUTE_PATH(NS), retried(6)));
    const retriesBefore = await retries();
    const withRetries = await requestBatch(pod('client'), `${svc('flaky')}/`, 200);
    const retriesDone = (await retries()) - retriesBefore;
    log(`with retries: ${JSON.stringify(Object.fromEntries(withRetries.codes))}, ${retriesDone} retries`);
    expect(withRetries.codes.get(200) ?? 0).toBeGreaterThanOrEqual(198);
    // Every other attempt fails: about one retry per request shows the work.
    expect(retriesDone).toBeGreaterThanOrEqual(150);

    await routeChange(() =>
      kube().client.mergePatch(`${HTTPROUTE_PATH(NS)}/flaky`, { spec: retried(0).spec }),
    );
    const without = await requestBatch(pod('client'), `${svc('flaky')}/`, 200);
    log(`without retries: ${JSON.stringify(Object.fromEntries(without.codes))}`);
    expect(share(without.codes.get(200), 200)).toBeGreaterThan(0.3);
    expect(share(without.codes.get(200), 200)).toBeLessThan(0.7);
  }, 120_000);

  it('counts requests in istio_requests_total{reporter="waypoint"} with source, destination, code and mTLS', async () => {
    const samples = waypointRequests(await waypointMetrics(waypoint));
    const ok = samples.find(
      s => s.labels.destination_service_name === 'echo-v2' && s.labels.response_code === '200',
    );
    expect(ok?.labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'client',
      source_workload_namespace: NS,
      source_principal: `spiffe://${TD}/ns/${NS}/sa/client`,
      destination_workload_namespace: NS,
      destination_principal: `spiffe://${TD}/ns/${NS}/sa/echo`,
      destination_service: `echo-v2.${NS}.svc.cluster.local`,
      destination_workload: 'echo-v2',
      connection_security_policy: 'mutual_tls',
    });
    expect(ok?.value ?? 0).toBeGreaterThan(0);
    const denied = samples.find(s => s.labels.response_code === '403');
    expect(denied?.value ?? 0).toBeGreaterThanOrEqual(10);
    // Denied before any backend was chosen: the destination is the Service of the filter chain.
    expect(denied?.labels.destination_service).toBe(`echo.${NS}.svc.cluster.local`);
    const timedOut = samples.find(s => s.labels.response_code === '504');
    expect(timedOut?.labels.destination_service_name).toBe('slow');
  }, 60_000);
});
