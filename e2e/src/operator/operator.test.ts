// Cluster tier: the mesh installed by the operator from Sail's ambient resources (`Istio` and
// `IstioCNI` with profile ambient, `ZTunnel` `default`) on an empty 2-node local cluster; the L4
// scenario's checks (`mesh/l4-scenario.ts`, as on the direct install) on that mesh; then what a
// Sail user does to it: read the CRs, give bad input, edit an owned object by hand, upgrade it in
// place under L4 and L7 (waypoint) load, delete the Istio. One cluster is shared by the whole
// file; the cases run in order, each in its own namespaces.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../cluster.ts';
import { runCommand, waitFor, type RunResult } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { kubectl as kubectlIn } from '../mesh/kubectl.ts';
import { L4_CHECKS, setUpL4Scenario, type L4Scenario } from '../mesh/l4-scenario.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { waypointMetrics, waypointRequests, type WaypointPod } from '../mesh/waypoint.ts';
import { setUpWaypointNamespace } from '../mesh/waypoint-mesh.ts';
import { curlInPod, echoPod, httpCode, mtlsConnectionsTo, type MeshPod } from '../mesh/workloads.ts';
import {
  OPERATOR_NAMESPACE,
  condition,
  echoAndClient,
  installMeshWithOperator,
  sailPath,
  waitReady,
  type SailCr,
} from './operator-install.ts';

const NS = 'op-l4';
/** The L4 scenario's namespaces (its pods and Service; the plaintext pod outside the mesh). */
const L4_NS = 'op-l4s';
const PLAIN_NS = 'op-plain';
/** Service `l7-echo` bound to the waypoint `waypoint`, and the client of the L7 load. */
const L7_NS = 'op-l7';
const L7_URL = `http://l7-echo.${L7_NS}.svc.cluster.local/`;
const TD = 'spiffe://cluster.local';
const scenario = new ScenarioContext<MeshPod>('operator');
const { log, kube, pod } = scenario;
let l4: L4Scenario | undefined;
let waypoint: WaypointPod | undefined;
/** As Sail's documented ambient install, but ztunnel beside istiod (its trusted node namespace). */
const CNI_NS = 'istio-cni';
const ZTUNNEL_NS = 'istio-system';
const ISTIOD = '/apis/apps/v1/namespaces/istio-system/deployments/istiod';
/** Installed at FROM, upgraded in place to TO: two releases, the same build in the local image map. */
const FROM = 'v1.27.8';
const TO = 'v1.27.9';

function kubectl(args: string[]): Promise<RunResult> {
  return kubectlIn(kube(), args);
}

const get = (path: string): Promise<SailCr> => kube().client.get<SailCr>(path);

/** The status code of a refused write (0 when it was accepted). */
async function refused(write: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await write();
    return { code: 0, message: '' };
  } catch (err) {
    const e = err as { status?: number; statusCode?: number; message?: string };
    return { code: e.status ?? e.statusCode ?? -1, message: e.message ?? String(err) };
  }
}

async function operatorPod(): Promise<V1Pod> {
  const pods = await kube().client.list<V1Pod>(`/api/v1/namespaces/${OPERATOR_NAMESPACE}/pods`, {
    labelSelector: 'app=ambient-mesh-operator',
  });
  const p = pods.items.find(x => x.status?.phase === 'Running');
  if (p === undefined) throw new Error('no running operator pod');
  return p;
}

describe('the operator installs the mesh from Sail-compatible resources', () => {
  beforeAll(async () => {
    scenario.cluster = await startCluster({ name: 'opmesh', slot: 78, nodes: 2, progress: log });
    const cluster = kube();
    // As `npm run up` installs it.
    const started = Date.now();
    await installMeshWithOperator(cluster, {
      cniNamespace: CNI_NS,
      ztunnelNamespace: ZTUNNEL_NS,
      version: FROM,
      progress: log,
    });
    log(`the operator installed and the three CRs Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    for (const [name, p] of await echoAndClient(cluster, NS)) scenario.pods.set(name, p);
    l4 = await setUpL4Scenario(cluster, L4_NS, PLAIN_NS);
    waypoint = await setUpWaypointNamespace(scenario, {
      namespace: L7_NS,
      serviceAccounts: ['l7-echo', 'l7-client'],
      pods: [
        ['l7-echo', echoPod('l7-echo', { namespace: L7_NS, node: 'node-1', containerPorts: [8080] })],
        ['l7-client', echoPod('l7-client', { namespace: L7_NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['l7-echo', { app: 'l7-echo' }]],
      probe: { from: 'l7-client', service: 'l7-echo' },
    });
    scenario.logSetupTime();
  }, 1_200_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('Istio, IstioCNI and ZTunnel reach Ready=True and an L4 request crosses nodes over HBONE mTLS', async () => {
    for (const plural of ['istios', 'istiocnis', 'ztunnels'] as const) {
      const cr = await get(sailPath(plural, 'default'));
      expect(condition(cr, 'Ready')?.status, plural).toBe('True');
      expect(condition(cr, 'Reconciled')?.status, plural).toBe('True');
      expect(cr.status?.state, plural).toBe('Healthy');
      expect(cr.metadata.finalizers, plural).toContain('sailoperator.io/ambient-mesh-operator');
    }
    const revision = await get(sailPath('istiorevisions', 'default'));
    expect(condition(revision, 'Ready')?.status).toBe('True');

    const client = pod('client');
    const echo = pod('echo');
    expect(client.node).not.toBe(echo.node);
    const principal = `${TD}/ns/${NS}/sa/client`;
    const before = await mtlsConnectionsTo(kube(), 'echo', principal);
    for (let i = 0; i < 3; i++) expect(await httpCode(client, `http://${echo.ip}:8080/`)).toBe(200);
    await waitFor(
      'the destination ztunnel to count 3 mTLS connections from the client',
      async () => ((await mtlsConnectionsTo(kube(), 'echo', principal)) - before >= 3 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 120_000);

  for (const check of L4_CHECKS) {
    it(
      `the L4 scenario on the operator's mesh: ${check.name}`,
      async () => {
        if (l4 === undefined) throw new Error('the L4 scenario was not set up (see beforeAll)');
        await check.run(l4);
      },
      check.timeoutMs,
    );
  }

  it("kubectl get istio,istiocni,ztunnel shows Sail's columns with the CRs' values", async () => {
    // The ambient namespace makes the default revision InUse (beyond Sail: ambient counts).
    await waitFor(
      'the Istio to count its revision in use',
      async () =>
        (await get(sailPath('istios', 'default'))).status?.revisions?.inUse === 1 ? true : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const r = await kubectl(['get', 'istio,istiocni,ztunnel']);
    log(`kubectl get istio,istiocni,ztunnel:\n${r.stdout}`);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').map(l => l.trim().split(/\s{2,}/));
    const row = (prefix: string): string[] | undefined => lines.find(l => l[0] === prefix);
    const header = (first: string): string[] | undefined =>
      lines.find((l, i) => l[0] === 'NAME' && lines[i + 1]?.[0] === first);
    expect(header('istio.sailoperator.io/default')).toEqual([
      'NAME',
      'NAMESPACE',
      'PROFILE',
      'REVISIONS',
      'READY',
      'IN USE',
      'ACTIVE REVISION',
      'STATUS',
      'VERSION',
      'AGE',
    ]);
    expect(row('istio.sailoperator.io/default')?.slice(0, 9)).toEqual([
      'istio.sailoperator.io/default',
      'istio-system',
      'ambient',
      '1',
      '1',
      '1',
      'default',
      'Healthy',
      FROM,
    ]);
    expect(header('istiocni.sailoperator.io/default')).toEqual([
      'NAME',
      'NAMESPACE',
      'PROFILE',
      'READY',
      'STATUS',
      'VERSION',
      'AGE',
    ]);
    expect(row('istiocni.sailoperator.io/default')?.slice(0, 6)).toEqual([
      'istiocni.sailoperator.io/default',
      CNI_NS,
      'ambient',
      'True',
      'Healthy',
      FROM,
    ]);
    expect(header('ztunnel.sailoperator.io/default')).toEqual([
      'NAME',
      'NAMESPACE',
      'READY',
      'STATUS',
      'VERSION',
      'AGE',
    ]);
    expect(row('ztunnel.sailoperator.io/default')?.slice(0, 5)).toEqual([
      'ztunnel.sailoperator.io/default',
      ZTUNNEL_NS,
      'True',
      'Healthy',
      FROM,
    ]);
  }, 90_000);

  it('an unknown values field gives Reconciled=False InvalidValues naming its path, and the mesh is left as it was', async () => {
    const istio = sailPath('istios', 'default');
    const deployment = async () => kube().client.get<{ metadata: { generation: number } }>(ISTIOD);
    const generation = (await deployment()).metadata.generation;
    const revisionGeneration = (await get(sailPath('istiorevisions', 'default'))).metadata.generation;
    await kube().client.mergePatch(istio, { spec: { values: { pilot: { replicaCont: 3 } } } });
    const bad = await waitFor(
      'Reconciled=False on the Istio',
      async () => {
        const cr = await get(istio);
        return condition(cr, 'Reconciled')?.status === 'False' &&
          cr.status?.observedGeneration === cr.metadata.generation
          ? cr
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(condition(bad, 'Reconciled')?.reason).toBe('InvalidValues');
    expect(condition(bad, 'Reconciled')?.message).toContain('spec.values.pilot.replicaCont: unknown field');
    expect(bad.status?.state).toBe('InvalidValues');
    expect((await get(sailPath('istiorevisions', 'default'))).metadata.generation).toBe(revisionGeneration);
    expect((await deployment()).metadata.generation).toBe(generation);

    await kube().client.mergePatch(istio, { spec: { values: null } });
    const fixed = await waitReady(kube().client, istio, 60_000);
    expect(condition(fixed, 'Reconciled')?.status).toBe('True');
  }, 120_000);

  it('the CEL rules refuse a second IstioCNI not named default and a change of spec.namespace', async () => {
    const second = await refused(() =>
      kube().client.create(sailPath('istiocnis'), {
        apiVersion: 'sailoperator.io/v1',
        kind: 'IstioCNI',
        metadata: { name: 'second' },
        spec: { namespace: 'istio-cni-2', profile: 'ambient' },
      }),
    );
    expect(second.code).toBe(422);
    expect(await kube().client.find(sailPath('istiocnis', 'second'))).toBeUndefined();
    const moved = await refused(() =>
      kube().client.mergePatch(sailPath('istios', 'default'), { spec: { namespace: 'elsewhere' } }),
    );
    expect(moved.code).toBe(422);
    expect((await get(sailPath('istios', 'default'))).spec.namespace).toBe('istio-system');
  }, 60_000);

  it('istiod scaled to 0 by hand is scaled back by the next reconcile, and the edit is logged', async () => {
    await kube().client.mergePatch(ISTIOD, { spec: { replicas: 0 } });
    const back = await waitFor(
      'istiod back to 1 replica and Ready',
      async () => {
        const d = await kube().client.get<{
          spec: { replicas: number };
          status?: { readyReplicas?: number };
        }>(ISTIOD);
        return d.spec.replicas === 1 && d.status?.readyReplicas === 1 ? d : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    expect(back.spec.replicas).toBe(1);
    await waitReady(kube().client, sailPath('istios', 'default'), 60_000);
    // The edit is logged, naming the object and its owner.
    const logs = await kubectl(['logs', '-n', OPERATOR_NAMESPACE, 'deploy/ambient-mesh-operator']);
    const edit = logs.stdout
      .split('\n')
      .find(l => l.includes('an owned object was edited by hand') && l.includes('deployments/istiod'));
    expect(edit, logs.stdout.slice(-3000)).toBeDefined();
    expect(edit).toContain('istiorevision.default');
  }, 180_000);

  it('the operator counts its reconciles on /metrics and records an Event for each transition', async () => {
    const p = await operatorPod();
    const r = await runCommand(
      [
        'ip',
        'netns',
        'exec',
        podNetnsName(kube().layout, p.metadata?.uid ?? ''),
        'curl',
        '-s',
        '--max-time',
        '5',
        'http://127.0.0.1:8080/metrics',
      ],
      { allowFailure: true },
    );
    expect(r.stdout).toMatch(
      /controller_runtime_reconcile_total\{controller="Istio",result="success"\} [1-9]/,
    );
    expect(r.stdout).toMatch(/controller_runtime_reconcile_time_seconds_count\{controller="ZTunnel"\} [1-9]/);
    const events = await kube().client.list<{
      reason: string;
      type: string;
      message: string;
      involvedObject: { kind: string; name: string };
    }>('/api/v1/namespaces/default/events');
    const on = (kind: string) =>
      events.items.filter(e => e.involvedObject.kind === kind && e.involvedObject.name === 'default');
    expect(on('Istio').map(e => e.reason)).toContain('InvalidValues');
    expect(on('Istio').some(e => e.type === 'Normal' && e.message.startsWith('Ready is True'))).toBe(true);
    expect(on('ZTunnel').some(e => e.type === 'Normal' && e.message.startsWith('Ready is True'))).toBe(true);
  }, 60_000);

  it('spec.version changed on Istio, then IstioCNI, then ZTunnel rolls each in place under L4 and L7 (waypoint) load: >= 99 % of each succeed, no workload pod restarts', async () => {
    const client = pod('client');
    const url = `http://${pod('echo').ip}:8080/`;
    if (waypoint === undefined) throw new Error('the waypoint was not set up (see beforeAll)');
    const wp = waypoint;
    /** Every workload pod of the file's mesh namespaces (not the waypoint): name, UID, restarts. */
    const workloads = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const ns of [NS, L4_NS, L7_NS]) {
        const pods = await kube().client.list<V1Pod>(`/api/v1/namespaces/${ns}/pods`, {
          labelSelector: '!gateway.networking.k8s.io/gateway-name',
        });
        for (const p of pods.items)
          out.push(
            `${ns}/${p.metadata?.name}/${p.metadata?.uid}/${(p.status?.containerStatuses ?? []).map(c => c.restartCount).join(',')}`,
          );
      }
      return out.sort();
    };
    /** Requests to l7-echo the waypoint counted (its istio_requests_total, reporter waypoint). */
    const throughWaypoint = async (): Promise<number> =>
      waypointRequests(await waypointMetrics(wp))
        .filter(x => x.labels.destination_service_name === 'l7-echo' && x.labels.response_code === '200')
        .reduce((n, x) => n + x.value, 0);
    const before = await workloads();
    expect(before.filter(w => w.startsWith(`${L7_NS}/`))).toHaveLength(2);
    const countedBefore = await throughWaypoint();
    const load$ = { stop: false };
    const t0 = Date.now();
    /** A load client: one request at a time, each on a new connection, until stopped. */
    const loadClient = (send: () => Promise<number>) => {
      const tally = { ok: 0, failed: 0, failures: [] as string[] };
      const done = (async () => {
        for (let i = 0; i < 20_000 && !load$.stop; i++) {
          if ((await send()) === 200) tally.ok++;
          else {
            tally.failed++;
            tally.failures.push(((Date.now() - t0) / 1000).toFixed(1));
          }
        }
      })();
      return { tally, done };
    };
    // L4: client -> echo's pod IP (ztunnels only). L7: l7-client -> Service l7-echo, which the
    // ztunnel sends through the waypoint.
    const l4Load = loadClient(() => httpCode(client, url));
    const l7Load = loadClient(() => httpCode(pod('l7-client'), L7_URL));
    const l4 = l4Load.tally;
    const l7 = l7Load.tally;
    const load = Promise.all([l4Load.done, l7Load.done]);
    const image = (o: { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } }) =>
      o.spec?.template?.spec?.containers?.[0]?.image ?? '';
    const rolled = (path: string, done: (st: Record<string, number | undefined>) => boolean) =>
      waitFor(
        `${path} rolled to ${TO}`,
        async () => {
          const o = await kube().client.get<{
            metadata: { generation?: number };
            spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
            status?: Record<string, number | undefined>;
          }>(path);
          const st = o.status ?? {};
          return image(o).endsWith(`:${TO}`) && st.observedGeneration === o.metadata.generation && done(st)
            ? true
            : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
    const nodes = kube().nodes.length;
    const ztunnelStates = async (): Promise<string[]> => {
      const zs = (
        await kube().client.list<V1Pod>(`/api/v1/namespaces/${ZTUNNEL_NS}/pods`, {
          labelSelector: 'app=ztunnel',
        })
      ).items;
      const out: string[] = [];
      for (const z of zs) {
        const ready = (z.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True');
        const code = await curlInPod(
          { netns: podNetnsName(kube().layout, z.metadata?.uid ?? '') },
          'http://127.0.0.1:15021/healthz/ready',
        );
        out.push(
          `${z.metadata?.name} on ${z.spec?.nodeName}: pod Ready ${String(ready)}, /healthz/ready ${code}`,
        );
      }
      return out;
    };
    const everyZtunnelReady = async (): Promise<void> => {
      try {
        await waitFor(
          'every ztunnel Ready (pod condition and /healthz/ready)',
          async () => {
            const states = await ztunnelStates();
            return states.length === nodes &&
              states.every(x => x.endsWith('pod Ready true, /healthz/ready 200'))
              ? true
              : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 500 },
        );
      } catch (err) {
        log(`ztunnels not Ready:\n${(await ztunnelStates()).join('\n')}`);
        for (const [ns, selector] of [
          [ZTUNNEL_NS, 'app=ztunnel'],
          [CNI_NS, 'k8s-app=istio-cni-node'],
        ] as const) {
          const r = await kubectl(['logs', '-n', ns, '-l', selector, '--tail', '15', '--prefix']);
          log(`logs in ${ns}:\n${r.stdout}`);
        }
        throw err;
      }
    };
    await everyZtunnelReady();
    try {
      for (const [plural, path, done] of [
        [
          'istios',
          ISTIOD,
          (st: Record<string, number | undefined>) =>
            st.updatedReplicas === 1 && st.readyReplicas === 1 && st.replicas === 1,
        ],
        [
          'istiocnis',
          `/apis/apps/v1/namespaces/${CNI_NS}/daemonsets/istio-cni-node`,
          (st: Record<string, number | undefined>) =>
            st.updatedNumberScheduled === nodes && st.numberReady === nodes,
        ],
        [
          'ztunnels',
          `/apis/apps/v1/namespaces/${ZTUNNEL_NS}/daemonsets/ztunnel`,
          (st: Record<string, number | undefined>) =>
            st.updatedNumberScheduled === nodes &&
            st.numberReady === nodes &&
            st.currentNumberScheduled === nodes,
        ],
      ] as const) {
        const started = Date.now();
        log(`${plural}: version ${TO} at t=${((started - t0) / 1000).toFixed(1)} s`);
        await kube().client.mergePatch(sailPath(plural, 'default'), { spec: { version: TO } });
        await rolled(path, done);
        const cr = await waitReady(kube().client, sailPath(plural, 'default'), 120_000);
        // As the upgrade docs say: wait for every component Ready before the next step. After the
        // cni-agent's rollout each ztunnel reconnects over ZDS (backoff up to 15 s) and is not
        // Ready until then; a ztunnel that is not Ready is replaced without the surge handover.
        await everyZtunnelReady();
        log(
          `${plural}: ${FROM} -> ${TO} rolled and Ready in ${((Date.now() - started) / 1000).toFixed(1)} s (requests so far: L4 ${l4.ok} ok, ${l4.failed} failed; L7 ${l7.ok} ok, ${l7.failed} failed)`,
        );
        expect(cr.spec.version).toBe(TO);
      }
    } finally {
      load$.stop = true;
      await load;
    }
    for (const [name, t] of [
      ['L4', l4],
      ['L7', l7],
    ] as const)
      log(
        `upgrade under ${name} load: ${t.ok} ok, ${t.failed} failed${t.failed > 0 ? ` (at t= ${t.failures.join(' ')} s)` : ''}`,
      );
    if (l4.failed + l7.failed > 0) {
      for (const ns of [ZTUNNEL_NS, CNI_NS]) {
        const r = await kubectl([
          'logs',
          '-n',
          ns,
          '-l',
          ns === CNI_NS ? 'k8s-app=istio-cni-node' : 'app=ztunnel',
          '--tail',
          '40',
          '--prefix',
        ]);
        log(`logs in ${ns}:\n${r.stdout}`);
      }
    }
    expect(l4.ok).toBeGreaterThan(20);
    expect(l4.ok / (l4.ok + l4.failed)).toBeGreaterThanOrEqual(0.99);
    expect(l7.ok).toBeGreaterThan(20);
    expect(l7.ok / (l7.ok + l7.failed)).toBeGreaterThanOrEqual(0.99);
    expect(await workloads()).toEqual(before);
    // Every answered L7 request went through the waypoint (the same pod: in the local cluster both
    // versions run the same waypoint build, so the control plane's upgrade leaves it as it is).
    const counted = await waitFor(
      'the waypoint to count the L7 load',
      async () => {
        const n = (await throughWaypoint()) - countedBefore;
        return n >= l7.ok ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    );
    log(`the waypoint ${wp.name} counted ${counted} answered requests of the L7 load's ${l7.ok}`);
    // Still over the mesh after the upgrade.
    const principal = `${TD}/ns/${NS}/sa/client`;
    const mtls = await mtlsConnectionsTo(kube(), 'echo', principal);
    expect(await httpCode(client, url)).toBe(200);
    await waitFor(
      'the upgraded destination ztunnel to count the connection',
      async () => ((await mtlsConnectionsTo(kube(), 'echo', principal)) > mtls ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 600_000);

  it('deleting the Istio removes every object it owned; the CRDs and the other CRs remain', async () => {
    await kube().client.delete(sailPath('istios', 'default'));
    await waitFor(
      'the Istio and its revision gone',
      async () =>
        (await kube().client.find(sailPath('istios', 'default'))) === undefined &&
        (await kube().client.find(sailPath('istiorevisions', 'default'))) === undefined
          ? true
          : undefined,
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    for (const path of [
      ISTIOD,
      '/api/v1/namespaces/istio-system/services/istiod',
      '/api/v1/namespaces/istio-system/configmaps/istio',
      '/api/v1/namespaces/istio-system/serviceaccounts/istiod',
      '/apis/rbac.authorization.k8s.io/v1/clusterroles/istiod-istio-system',
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/istiod-istio-system',
    ]) {
      expect(await kube().client.find(path), path).toBeUndefined();
    }
    await waitFor(
      'the istiod pods gone',
      async () =>
        (await kube().client.list('/api/v1/namespaces/istio-system/pods', { labelSelector: 'app=istiod' }))
          .items.length === 0
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const crd of ['istios', 'istiorevisions', 'istiocnis', 'ztunnels']) {
      expect(
        await kube().client.find(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}.sailoperator.io`,
        ),
        crd,
      ).toBeDefined();
    }
    expect(await kube().client.find(sailPath('istiocnis', 'default'))).toBeDefined();
    expect(await kube().client.find(sailPath('ztunnels', 'default'))).toBeDefined();
    expect(
      await kube().client.find(`/apis/apps/v1/namespaces/${ZTUNNEL_NS}/daemonsets/ztunnel`),
    ).toBeDefined();
    expect(
      await kube().client.find(`/apis/apps/v1/namespaces/${CNI_NS}/daemonsets/istio-cni-node`),
    ).toBeDefined();
  }, 180_000);
});
