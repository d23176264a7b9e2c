// Cluster tier: a ServiceEntry bound to a waypoint (egress) against a real apiserver. Our istiod
// runs in the test process (listeners on loopback) so a delta-xDS client can watch WDS like a
// ztunnel; the Gateway API CRDs are the upstream v1.4.1 bundle, applied as the mesh installer
// does. The waypoint's Envoy resources for the entry are covered by
// apps/istiod/src/waypoint/service-entry-waypoint.test.ts.
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

const NS = 'se-egress';
const SE_PATH = `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`;
const GW_PATH = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways`;

let cluster: Cluster;
let ours: OurIstiod;
let ztunnel: ZtunnelIdentity;
let wds: DeltaXdsClient;
const cleanups: (() => Promise<void> | void)[] = [];

function serviceEntry(name: string, address: string, labels: Record<string, string>): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS, labels },
    spec: {
      hosts: [`${name}.example.com`],
      addresses: [address],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'DNS',
    },
  };
}

const get = (path: string): Promise<Obj | undefined> => cluster.client.find<Obj>(path);
const condition = (o: Obj | undefined, type: string): Condition | undefined =>
  o?.status?.conditions?.find(c => c.type === type);
const wdsEntryService = (host: string): workload.Service | undefined =>
  wds.address(`${NS}/${host}`)?.service ?? undefined;

async function entryBound(name: string, status: string, reason: string): Promise<Condition> {
  return waitFor(`ServiceEntry ${NS}/${name} WaypointBound=${status} (${reason})`, async () => {
    const c = condition(await get(`${SE_PATH}/${name}`), 'istio.io/WaypointBound');
    return c?.status === status && c.reason === reason ? c : undefined;
  });
}

describe('ServiceEntry bound to a waypoint on the local cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'sebind',
      slot: 117,
      nodes: 1,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
    cleanups.push(() => cluster.stop());
    await applyMeshCrdsWithGatewayApi(cluster.client);
    await prepareIstioSystem(cluster.client);
    await cluster.client.ensure('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS },
    });
    ztunnel = await createZtunnelIdentity(cluster.client, cluster.nodes[0]!.name);
    ours = await startOurIstiodOn(cluster, 'sebind-e2e-', cleanups);
    wds = ourXdsClient(ours, ztunnel, cleanups);
    await wds.waitForSync();
    await cluster.client.create(GW_PATH, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'egress', namespace: NS },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    });
    await waitFor('egress waypoint Programmed=True', async () => {
      const g = await get(`${GW_PATH}/egress`);
      return condition(g, 'Programmed')?.status === 'True' ? g : undefined;
    });
  }, 900_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 180_000);

  it('a ServiceEntry labelled istio.io/use-waypoint gets the waypoint in WDS and WaypointBound=True', async () => {
    await cluster.client.create(
      SE_PATH,
      serviceEntry('httpbin', '240.240.17.1', { 'istio.io/use-waypoint': 'egress' }),
    );
    const waypoint = await wds.waitFor(
      'httpbin.example.com with its waypoint in WDS',
      () => wdsEntryService('httpbin.example.com')?.waypoint ?? undefined,
    );
    expect(waypoint.hostname).toEqual({ namespace: NS, hostname: `egress.${NS}.svc.cluster.local` });
    expect(waypoint.hboneMtlsPort).toBe(15008);
    const c = await entryBound('httpbin', 'True', 'WaypointAccepted');
    expect(c.message).toBe(`Successfully attached to waypoint ${NS}/egress`);
  }, 120_000);

  it('a ServiceEntry naming a missing waypoint gets WaypointBound=False (WaypointIsNotReady) and no waypoint', async () => {
    await cluster.client.create(
      SE_PATH,
      serviceEntry('lost', '240.240.17.2', { 'istio.io/use-waypoint': 'no-such' }),
    );
    const c = await entryBound('lost', 'False', 'WaypointIsNotReady');
    expect(c.message).toBe(`waypoint "${NS}/no-such" is not ready`);
    await wds.waitFor('lost.example.com in WDS', () => wdsEntryService('lost.example.com'));
    expect(wdsEntryService('lost.example.com')?.waypoint ?? undefined).toBeUndefined();
  }, 120_000);

  it('removing the label unbinds the ServiceEntry and removes the condition', async () => {
    await cluster.client.mergePatch(`${SE_PATH}/httpbin`, {
      metadata: { labels: { 'istio.io/use-waypoint': null } },
    });
    await wds.waitFor('httpbin.example.com without a waypoint', () => {
      const s = wdsEntryService('httpbin.example.com');
      return s !== undefined && (s.waypoint ?? undefined) === undefined ? true : undefined;
    });
    await waitFor('WaypointBound removed from httpbin', async () =>
      condition(await get(`${SE_PATH}/httpbin`), 'istio.io/WaypointBound') === undefined ? true : undefined,
    );
  }, 120_000);

  it('a class-defaults ConfigMap (gateway.istio.io/defaults-for-class) patches the generated waypoint Deployment', async () => {
    await cluster.client.create('/api/v1/namespaces/istio-system/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'waypoint-defaults',
        namespace: 'istio-system',
        labels: { 'gateway.istio.io/defaults-for-class': 'istio-waypoint' },
      },
      data: {
        deployment: 'metadata:\n  annotations:\n    example.com/from: class-defaults\nspec:\n  replicas: 2\n',
      },
    });
    const deployment = await waitFor('egress Deployment with 2 replicas', async () => {
      const d = await cluster.client.find<Obj & { metadata?: { annotations?: Record<string, string> } }>(
        `/apis/apps/v1/namespaces/${NS}/deployments/egress`,
      );
      return d?.spec?.['replicas'] === 2 ? d : undefined;
    });
    expect(deployment.metadata?.annotations).toMatchObject({ 'example.com/from': 'class-defaults' });
  }, 120_000);
});
