// Cluster tier: istiod's Gateway controller and waypoint binding against a real apiserver with
// kube-controller-manager (its garbage collector removes what a deleted Gateway owned). Our
// istiod runs in the test process (all listeners on loopback) so a delta-xDS client can watch
// WDS like a ztunnel; the Gateway API CRDs are the upstream v1.4.1 bundle, applied the way the
// mesh installer does. The binding rules themselves are covered by gateway/binding.test.ts.
import { crdApplyDecision, renderComponent, type LiveCrd } from '@ambient-mesh/install';
import type { workload } from '@ambient-mesh/xds-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import {
  applyMeshCrdsWithGatewayApi,
  ourXdsClient,
  startOurIstiodOn,
  type GatewayObj as Obj,
  type KubeCondition as Condition,
} from '../istiod/istiod-harness.ts';
import type { OurIstiod } from '../istiod/our-istiod.ts';
import { createZtunnelIdentity, prepareIstioSystem, type ZtunnelIdentity } from '../upstream/istiod.ts';
import type { DeltaXdsClient } from '../xds-client/delta-client.ts';

const NS = 'wp-app';
const OTHER_NS = 'wp-other';
const GW_PATH = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways`;
const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

let cluster: Cluster;
let ours: OurIstiod;
let ztunnel: ZtunnelIdentity;
let wds: DeltaXdsClient;
const cleanups: (() => Promise<void> | void)[] = [];

function waypointGateway(name: string, extra: { from?: string; waypointFor?: string } = {}): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name,
      namespace: NS,
      labels: { 'istio.io/waypoint-for': extra.waypointFor ?? 'service' },
    },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [
        {
          name: 'mesh',
          port: 15008,
          protocol: 'HBONE',
          ...(extra.from === undefined ? {} : { allowedRoutes: { namespaces: { from: extra.from } } }),
        },
      ],
    },
  };
}

function service(namespace: string, name: string, labels: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080 }] },
  };
}

const get = (path: string): Promise<Obj | undefined> => cluster.client.find<Obj>(path);
const condition = (o: Obj | undefined, type: string): Condition | undefined =>
  o?.status?.conditions?.find(c => c.type === type);
const svcPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/services/${name}`;
const wdsService = (ns: string, name: string): workload.Service | undefined =>
  wds.address(`${ns}/${name}.${ns}.svc.cluster.local`)?.service ?? undefined;

async function labelNamespace(name: string, labels: Record<string, string | null>): Promise<void> {
  await cluster.client.mergePatch(`/api/v1/namespaces/${name}`, { metadata: { labels } });
}

async function waypointBound(ns: string, name: string, status: string, reason: string): Promise<Condition> {
  return waitFor(`Service ${ns}/${name} WaypointBound=${status} (${reason})`, async () => {
    const c = condition(await get(svcPath(ns, name)), 'istio.io/WaypointBound');
    return c?.status === status && c.reason === reason ? c : undefined;
  });
}

describe('waypoint Gateway controller and binding on the local cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'gwctl',
      slot: 50,
      nodes: 1,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
    cleanups.push(() => cluster.stop());
    await applyMeshCrdsWithGatewayApi(cluster.client);
    await prepareIstioSystem(cluster.client);
    for (const ns of [NS, OTHER_NS])
      await cluster.client.ensure('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns },
      });
    ztunnel = await createZtunnelIdentity(cluster.client, cluster.nodes[0]!.name);
    ours = await startOurIstiodOn(cluster, 'gwctl-e2e-', cleanups);
    wds = ourXdsClient(ours, ztunnel, cleanups);
    await wds.waitForSync();
  }, 900_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 180_000);

  it('never downgrades the installed v1.4.1 Gateway API CRDs with the repository subset', async () => {
    const ourSubset = renderComponent('crds').find(
      c => c.metadata.name === 'gateways.gateway.networking.k8s.io',
    )!;
    const live = await cluster.client.get<LiveCrd>(`${CRD_PATH}/gateways.gateway.networking.k8s.io`);
    expect(live.metadata?.annotations?.['gateway.networking.k8s.io/bundle-version']).toBe('v1.4.1');
    expect(crdApplyDecision(ourSubset, live).apply).toBe(false);
  }, 120_000);

  it('creates the istio and istio-waypoint GatewayClasses and marks them Accepted', async () => {
    for (const [name, controller] of [
      ['istio', 'istio.io/gateway-controller'],
      ['istio-waypoint', 'istio.io/mesh-controller'],
    ] as const) {
      const cls = await waitFor(`GatewayClass ${name} Accepted`, async () => {
        const c = await get(`/apis/gateway.networking.k8s.io/v1/gatewayclasses/${name}`);
        return condition(c, 'Accepted')?.status === 'True' ? c : undefined;
      });
      expect(cls.spec?.['controllerName']).toBe(controller);
    }
  }, 120_000);

  it('deploys a waypoint Gateway: ServiceAccount, Deployment and Service appear, Programmed=True with addresses', async () => {
    // A Gateway of a class that is not ours, applied first: it must stay untouched.
    await cluster.client.create(GW_PATH, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'foreign', namespace: NS },
      spec: { gatewayClassName: 'someone-else', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
    });
    await cluster.client.create(GW_PATH, waypointGateway('waypoint', { from: 'All' }));
    const gw = await waitFor('waypoint Programmed=True', async () => {
      const g = await get(`${GW_PATH}/waypoint`);
      return condition(g, 'Programmed')?.status === 'True' ? g : undefined;
    });
    const svc = await get(svcPath(NS, 'waypoint'));
    const clusterIp = (svc?.spec?.['clusterIP'] as string | undefined) ?? '';
    expect(gw.status?.addresses).toEqual([
      { type: 'IPAddress', value: clusterIp },
      { type: 'Hostname', value: `waypoint.${NS}.svc.cluster.local` },
    ]);
    expect(condition(gw, 'Programmed')?.message).toBe(
      `Resource programmed, assigned to service(s) waypoint.${NS}.svc.cluster.local:15008`,
    );
    expect(svc?.metadata?.labels).toMatchObject({
      'gateway.networking.k8s.io/gateway-name': 'waypoint',
      'gateway.istio.io/managed': 'istio.io-mesh-controller',
      'istio.io/waypoint-for': 'service',
    });
    expect((svc?.spec?.['ports'] as { port: number }[]).map(p => p.port)).toEqual([15021, 15008]);
    for (const path of [
      `/api/v1/namespaces/${NS}/serviceaccounts/waypoint`,
      `/apis/apps/v1/namespaces/${NS}/deployments/waypoint`,
      svcPath(NS, 'waypoint'),
    ]) {
      expect((await get(path))?.metadata?.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'Gateway', name: 'waypoint' }),
      ]);
    }
    // The foreign Gateway got neither objects nor status.
    expect(await get(svcPath(NS, 'foreign-someone-else'))).toBeUndefined();
    expect(await get(svcPath(NS, 'foreign'))).toBeUndefined();
    expect((await get(`${GW_PATH}/foreign`))?.status?.conditions ?? []).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ type: 'Programmed', status: 'True' })]),
    );
  }, 120_000);

  it('labelling the namespace puts the waypoint on its Services in WDS, and WaypointBound=True', async () => {
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, service(NS, 'reviews'));
    await labelNamespace(NS, { 'istio.io/use-waypoint': 'waypoint' });
    const waypoint = await wds.waitFor(
      'reviews with its waypoint in WDS',
      () => wdsService(NS, 'reviews')?.waypoint ?? undefined,
    );
    expect(waypoint.hostname).toEqual({ namespace: NS, hostname: `waypoint.${NS}.svc.cluster.local` });
    expect(waypoint.hboneMtlsPort).toBe(15008);
    const c = await waypointBound(NS, 'reviews', 'True', 'WaypointAccepted');
    expect(c.message).toBe(`Successfully attached to waypoint ${NS}/waypoint`);
    // The waypoint's own Service never binds to itself.
    expect(wdsService(NS, 'waypoint')?.waypoint ?? undefined).toBeUndefined();
  }, 120_000);

  it('a Service labelled none opts out of the namespace waypoint', async () => {
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/services`,
      service(NS, 'optout', { 'istio.io/use-waypoint': 'none' }),
    );
    await wds.waitFor('optout in WDS', () => wdsService(NS, 'optout'));
    expect(wdsService(NS, 'optout')?.waypoint ?? undefined).toBeUndefined();
    expect(condition(await get(svcPath(NS, 'optout')), 'istio.io/WaypointBound')).toBeUndefined();
  }, 120_000);

  it('a Service in another namespace binds through use-waypoint-namespace', async () => {
    await cluster.client.create(
      `/api/v1/namespaces/${OTHER_NS}/services`,
      service(OTHER_NS, 'ratings', {
        'istio.io/use-waypoint': 'waypoint',
        'istio.io/use-waypoint-namespace': NS,
      }),
    );
    const waypoint = await wds.waitFor(
      'ratings with the cross-namespace waypoint',
      () => wdsService(OTHER_NS, 'ratings')?.waypoint ?? undefined,
    );
    expect(waypoint.hostname?.hostname).toBe(`waypoint.${NS}.svc.cluster.local`);
    await waypointBound(OTHER_NS, 'ratings', 'True', 'WaypointAccepted');
  }, 120_000);

  it('use-waypoint naming a missing Gateway gives WaypointBound=False (WaypointIsNotReady)', async () => {
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/services`,
      service(NS, 'lost', { 'istio.io/use-waypoint': 'no-such-waypoint' }),
    );
    const c = await waypointBound(NS, 'lost', 'False', 'WaypointIsNotReady');
    expect(c.message).toBe(`waypoint "${NS}/no-such-waypoint" is not ready`);
    expect(wdsService(NS, 'lost')?.waypoint ?? undefined).toBeUndefined();
  }, 120_000);

  it('a parametersRef to a missing ConfigMap gives Accepted=False (InvalidParameters) until it appears', async () => {
    const gw = waypointGateway('params') as { spec: Record<string, unknown> };
    gw.spec.infrastructure = { parametersRef: { group: '', kind: 'ConfigMap', name: 'params-cm' } };
    await cluster.client.create(GW_PATH, gw);
    const rejected = await waitFor('Gateway params Accepted=False (InvalidParameters)', async () => {
      const c = condition(await get(`${GW_PATH}/params`), 'Accepted');
      return c?.status === 'False' && c.reason === 'InvalidParameters' ? c : undefined;
    });
    expect(rejected.message).toContain(`ConfigMap ${NS}/params-cm`);
    await cluster.client.create(`/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'params-cm', namespace: NS },
      data: { deployment: 'metadata:\n  annotations:\n    e2e/params: applied\n' },
    });
    await waitFor('Gateway params Accepted=True', async () =>
      condition(await get(`${GW_PATH}/params`), 'Accepted')?.status === 'True' ? true : undefined,
    );
    await cluster.client.delete(`${GW_PATH}/params`);
  }, 120_000);

  it('deleting the Gateway removes its objects and unbinds its Services', async () => {
    await cluster.client.delete(`${GW_PATH}/waypoint`);
    for (const path of [
      `/api/v1/namespaces/${NS}/serviceaccounts/waypoint`,
      `/apis/apps/v1/namespaces/${NS}/deployments/waypoint`,
      svcPath(NS, 'waypoint'),
    ]) {
      await waitFor(
        `${path} garbage-collected`,
        async () => ((await get(path)) === undefined ? true : undefined),
        {
          timeoutMs: 120_000,
        },
      );
    }
    await wds.waitFor('reviews without a waypoint', () =>
      wdsService(NS, 'reviews') !== undefined &&
      (wdsService(NS, 'reviews')?.waypoint ?? undefined) === undefined
        ? true
        : undefined,
    );
    await waypointBound(NS, 'reviews', 'False', 'WaypointIsNotReady');
    await labelNamespace(NS, { 'istio.io/use-waypoint': null });
  }, 240_000);
});
