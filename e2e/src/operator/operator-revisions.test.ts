// Cluster tier: the RevisionBased update strategy through the operator, as a Sail user runs it on
// an empty 2-node local cluster: an `Istio` with `updateStrategy.type: RevisionBased` and the
// `IstioRevisionTag` `default` pointing at it, Sail's ambient IstioCNI and ZTunnel, an ambient
// namespace with two pods and a waypoint. A new `spec.version` makes a second revision; the tag
// follows the Istio's active revision and takes the namespace and the waypoint along (the new
// istiod deploys the waypoint, the old one lets it go); the old revision is pruned only once it
// is not InUse and the grace period has passed. One cluster for the file; the cases run in order.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../cluster.ts';
import { waitFor, type RunResult } from '../exec.ts';
import { kubectl as kubectlIn } from '../mesh/kubectl.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { GATEWAY_PATH, readyWaypoint, waypointGateway } from '../mesh/waypoint.ts';
import { httpCode, mtlsConnectionsTo, type MeshPod } from '../mesh/workloads.ts';
import {
  ambientCrs,
  condition,
  createNamespaces,
  echoAndClient,
  installOperator,
  sailCr,
  sailPath,
  waitReady,
  type SailCr,
} from './operator-install.ts';

const NS = 'op-rev';
const TD = 'spiffe://cluster.local';
const CNI_NS = 'istio-cni';
/** ztunnel beside istiod: its node credentials are trusted there without extra values. */
const ZTUNNEL_NS = 'istio-system';
const FROM = 'v1.27.8';
const TO = 'v1.27.9';
const OLD = 'default-v1-27-8';
const NEW = 'default-v1-27-9';
/** Long enough to see the old revision kept while unused, short enough for the test. */
const GRACE_S = 40;
const MWCS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const DEPLOYMENTS = '/apis/apps/v1/namespaces';
const scenario = new ScenarioContext<MeshPod>('operator-revisions');
const { log, kube, pod } = scenario;

const get = (path: string): Promise<SailCr> => kube().client.get<SailCr>(path);

function kubectl(args: string[]): Promise<RunResult> {
  return kubectlIn(kube(), args);
}

/** Says why a step did not complete: the CRs, the mesh's pods and the ends of their logs. */
async function diagnose(): Promise<void> {
  for (const args of [
    ['get', 'istio,istiorevision,istiorevisiontag,istiocni,ztunnel', '-o', 'yaml'],
    ['get', 'pods', '-A', '-o', 'wide'],
    ['get', 'deploy,svc', '-n', 'istio-system', '-o', 'wide'],
    ['logs', '-n', 'ambient-mesh-operator', '-l', 'app=ambient-mesh-operator', '--tail', '40'],
    ['logs', '-n', 'istio-system', '-l', 'app=istiod', '--tail', '30', '--prefix'],
    ['logs', '-n', ZTUNNEL_NS, '-l', 'app=ztunnel', '--tail', '15', '--prefix'],
  ]) {
    const r = await kubectl(args);
    log(`kubectl ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  }
}

/** Runs a step; on failure logs the diagnosis before failing. */
async function step<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (err) {
    await diagnose();
    throw err;
  }
}

interface DeploymentLike {
  metadata: { generation?: number };
  spec: {
    template: {
      metadata?: { annotations?: Record<string, string> };
      spec: { containers: { env?: { name: string; value?: string }[] }[] };
    };
  };
  status?: {
    observedGeneration?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    replicas?: number;
  };
}

const deploymentPath = (ns: string, name: string): string => `${DEPLOYMENTS}/${ns}/deployments/${name}`;
const envOf = (d: DeploymentLike, name: string): string | undefined =>
  d.spec.template.spec.containers[0]?.env?.find(e => e.name === name)?.value;

/** The waypoint Deployment once it is rendered by `revision`'s istiod and rolled out. */
async function waypointOf(revision: string): Promise<DeploymentLike> {
  return waitFor(
    `the waypoint deployed by istiod-${revision} and rolled out`,
    async () => {
      const d = await kube().client.find<DeploymentLike>(deploymentPath(NS, 'waypoint'));
      if (d === undefined) return undefined;
      const st = d.status ?? {};
      return envOf(d, 'XDS_ADDRESS') === `istiod-${revision}.istio-system.svc:15012` &&
        d.spec.template.metadata?.annotations?.['istio.io/rev'] === revision &&
        st.observedGeneration === d.metadata.generation &&
        st.updatedReplicas === 1 &&
        st.readyReplicas === 1 &&
        st.replicas === 1
        ? d
        : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

async function workloads(): Promise<string[]> {
  return (
    await kube().client.list<V1Pod>(`/api/v1/namespaces/${NS}/pods`, { labelSelector: 'mesh-test=workload' })
  ).items
    .map(
      p =>
        `${p.metadata?.name}/${p.metadata?.uid}/${(p.status?.containerStatuses ?? []).map(c => c.restartCount).join(',')}`,
    )
    .sort();
}

/** A request from the client to echo, counted as mTLS by the destination ztunnel. */
async function l4OverHbone(): Promise<void> {
  const principal = `${TD}/ns/${NS}/sa/client`;
  const before = await mtlsConnectionsTo(kube(), 'echo', principal);
  expect(await httpCode(pod('client'), `http://${pod('echo').ip}:8080/`)).toBe(200);
  await waitFor(
    'the destination ztunnel to count the mTLS connection',
    async () => ((await mtlsConnectionsTo(kube(), 'echo', principal)) > before ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

describe('the operator: RevisionBased updates with the default IstioRevisionTag', () => {
  beforeAll(async () => {
    scenario.cluster = await startCluster({ name: 'oprev', slot: 107, nodes: 2, progress: log });
    const cluster = kube();
    await installOperator(cluster, log);
    await createNamespaces(cluster.client, ['istio-system', CNI_NS]);
    const [istio, cni, ztunnel] = ambientCrs({
      cniNamespace: CNI_NS,
      ztunnelNamespace: ZTUNNEL_NS,
      version: FROM,
      istio: {
        updateStrategy: { type: 'RevisionBased', inactiveRevisionDeletionGracePeriodSeconds: GRACE_S },
      },
    });
    await cluster.client.create(istio.path, istio.body);
    await cluster.client.create(
      sailPath('istiorevisiontags'),
      sailCr('IstioRevisionTag', { targetRef: { kind: 'Istio', name: 'default' } }),
    );
    for (const { path, body } of [cni, ztunnel]) await cluster.client.create(path, body);
    for (const plural of ['istios', 'istiocnis', 'ztunnels'] as const)
      await step(() => waitReady(cluster.client, sailPath(plural, 'default')));

    const labels = { 'mesh-test': 'workload' };
    for (const [name, p] of await echoAndClient(cluster, NS, { labels })) scenario.pods.set(name, p);
    await cluster.client.create(GATEWAY_PATH(NS), waypointGateway(NS));
    await readyWaypoint(cluster.client, cluster.layout, NS, 'waypoint', 180_000);
    scenario.logSetupTime();
  }, 1_200_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('RevisionBased names the revision <name>-v<x>-<y>-<z>; the default tag points at it; its istiod serves the namespace and deploys the waypoint', async () => {
    const istio = await get(sailPath('istios', 'default'));
    expect(istio.status?.activeRevisionName).toBe(OLD);
    const revisions = await kube().client.list<SailCr>(sailPath('istiorevisions'));
    expect(revisions.items.map(r => r.metadata.name)).toEqual([OLD]);
    const istiod = await kube().client.get<DeploymentLike>(deploymentPath('istio-system', `istiod-${OLD}`));
    expect(envOf(istiod, 'REVISION')).toBe(OLD);

    const tag = await waitFor(
      'the tag reconciled and in use',
      async () => {
        const t = await get(sailPath('istiorevisiontags', 'default'));
        return condition(t, 'Reconciled')?.status === 'True' && condition(t, 'InUse')?.status === 'True'
          ? t
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(tag.status).toMatchObject({
      istioRevision: OLD,
      istiodNamespace: 'istio-system',
      state: 'Healthy',
    });
    const mwc = await kube().client.get<{ metadata: { labels?: Record<string, string> } }>(
      `${MWCS}/istio-revision-tag-default`,
    );
    expect(mwc.metadata.labels).toMatchObject({ 'istio.io/tag': 'default', 'istio.io/rev': OLD });

    await waypointOf(OLD);
    const used = await waitFor(
      'the revision InUse by the namespace and the waypoint',
      async () => {
        const r = await get(sailPath('istiorevisions', OLD));
        const c = condition(r, 'InUse');
        return c?.status === 'True' && c.message?.includes(`waypoint ${NS}/waypoint`) === true
          ? c
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    expect(used.message).toContain(`namespace ${NS}`);
    await l4OverHbone();
  }, 400_000);

  it('a new spec.version makes a second revision; the tag moves the namespace and waypoint to it; the old one is pruned only after InUse=False and the grace period', async () => {
    const before = await workloads();
    await kube().client.mergePatch(sailPath('istios', 'default'), { spec: { version: TO } });

    // The second revision and its istiod, beside the first.
    await waitReady(kube().client, sailPath('istiorevisions', NEW));
    const both = (await kube().client.list<SailCr>(sailPath('istiorevisions'))).items.map(
      r => r.metadata.name,
    );
    log(`revisions once ${NEW} is Ready: ${both.join(', ')}`);
    expect(both).toContain(NEW);

    // The tag follows the Istio's active revision, and with it the waypoint.
    await waitFor(
      'the default tag pointing at the new revision',
      async () =>
        (await get(sailPath('istiorevisiontags', 'default'))).status?.istioRevision === NEW
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const svc = await kube().client.get<{ spec: { selector: Record<string, string> } }>(
      '/api/v1/namespaces/istio-system/services/istiod',
    );
    expect(svc.spec.selector['istio.io/rev']).toBe(NEW);
    await waypointOf(NEW);
    await readyWaypoint(kube().client, kube().layout, NS, 'waypoint', 180_000);

    // Watch the old revision until it is gone: it must be unused for the whole grace period first.
    let lastSeen: SailCr | undefined;
    let removedAt = 0;
    await waitFor(
      `revision ${OLD} pruned`,
      async () => {
        const r = await kube().client.find<SailCr>(sailPath('istiorevisions', OLD));
        if (r !== undefined) {
          lastSeen = r;
          return undefined;
        }
        removedAt = Date.now();
        return true;
      },
      { timeoutMs: (GRACE_S + 180) * 1000, intervalMs: 500 },
    );
    const inUse = condition(lastSeen, 'InUse');
    log(`${OLD} last seen with InUse ${inUse?.status} since ${inUse?.lastTransitionTime}`);
    expect(inUse?.status).toBe('False');
    const unusedSince = Date.parse(inUse?.lastTransitionTime ?? '');
    // The condition's time is truncated to seconds; allow that and the poll interval.
    expect(removedAt - unusedSince).toBeGreaterThanOrEqual((GRACE_S - 2) * 1000);

    const revision = await waitFor(
      'the new revision InUse by the namespace and the waypoint',
      async () => {
        const c = condition(await get(sailPath('istiorevisions', NEW)), 'InUse');
        return c?.status === 'True' && c.message?.includes(`waypoint ${NS}/waypoint`) === true
          ? c
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    expect(revision.message).toContain(`namespace ${NS}`);
    await waitFor(
      `istiod-${OLD} gone`,
      async () =>
        (await kube().client.find(deploymentPath('istio-system', `istiod-${OLD}`))) === undefined
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await waitReady(kube().client, sailPath('istios', 'default'), 120_000);
    // The Istio recounts once the pruned revision is gone (its finalizer released).
    const istio = await waitFor(
      'the Istio to count one revision',
      async () => {
        const i = await get(sailPath('istios', 'default'));
        return i.status?.revisions?.total === 1 ? i : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(istio.status).toMatchObject({
      activeRevisionName: NEW,
      revisions: { total: 1, ready: 1, inUse: 1 },
    });
    // Workloads were never restarted, and still talk over HBONE (ztunnel now on the new istiod).
    expect(await workloads()).toEqual(before);
    await l4OverHbone();
  }, 900_000);

  it('deleting the Istio removes its revisions and istiods; the tag then reports RefNotFound, and deleting it removes its objects', async () => {
    await kube().client.delete(sailPath('istios', 'default'));
    await waitFor(
      'the Istio, its revision and istiod gone',
      async () =>
        (await kube().client.find(sailPath('istios', 'default'))) === undefined &&
        (await kube().client.list(sailPath('istiorevisions'))).items.length === 0 &&
        (await kube().client.find(deploymentPath('istio-system', `istiod-${NEW}`))) === undefined
          ? true
          : undefined,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const tag = await waitFor(
      'the tag RefNotFound',
      async () => {
        const t = await get(sailPath('istiorevisiontags', 'default'));
        return condition(t, 'Reconciled')?.reason === 'RefNotFound' ? t : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(tag.status?.state).toBe('RefNotFound');
    expect(await kube().client.find(sailPath('ztunnels', 'default'))).toBeDefined();
    expect(await kube().client.find(sailPath('istiocnis', 'default'))).toBeDefined();

    await kube().client.delete(sailPath('istiorevisiontags', 'default'));
    await waitFor(
      'the tag and its objects gone',
      async () =>
        (await kube().client.find(sailPath('istiorevisiontags', 'default'))) === undefined &&
        (await kube().client.find(`${MWCS}/istio-revision-tag-default`)) === undefined &&
        (await kube().client.find('/api/v1/namespaces/istio-system/services/istiod')) === undefined
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 300_000);
});
