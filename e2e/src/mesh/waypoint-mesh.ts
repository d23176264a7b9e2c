/**
 * The setup the L7 scenario files share: a mesh cluster with one app namespace whose Services all
 * use the waypoint istiod deploys for the Gateway `waypoint` (namespace label
 * `istio.io/use-waypoint`), the file's pods and HTTP Services (port 80 -> 8080), every pod Ready
 * and in every ztunnel's config, and the first request through the waypoint counted by it.
 * `setUpWaypointNamespace` does the same on a mesh installed otherwise (the operator's).
 */
import { waitFor } from '../exec.ts';
import { startMeshCluster } from './mesh-cluster.ts';
import type { ScenarioContext } from './scenario.ts';
import {
  GATEWAY_PATH,
  readyWaypoint,
  waypointGateway,
  waypointMetrics,
  waypointRequests,
  type WaypointPod,
} from './waypoint.ts';
import { createAppNamespace, httpCode, inEveryZtunnelConfig, readyPod, type MeshPod } from './workloads.ts';

export interface WaypointNamespaceOptions {
  readonly namespace: string;
  readonly serviceAccounts: readonly string[];
  /** Pod manifests by name (`echoPod(...)`), created in this order. */
  readonly pods: readonly (readonly [string, object])[];
  /** Services by name and selector: one HTTP port, 80 -> 8080. */
  readonly services: readonly (readonly [string, Record<string, string>])[];
  /** Setup ends once a request from pod `from` to Service `service` is counted by the waypoint. */
  readonly probe: { readonly from: string; readonly service: string };
}

export interface WaypointMeshOptions extends WaypointNamespaceOptions {
  /** The file's cluster name and slot (10.211.<slot>.0/24). */
  readonly cluster: { readonly name: string; readonly slot: number; readonly nodes?: number };
}

/** A Service `name` in `namespace` with one HTTP port 80 -> 8080. */
export function httpService(namespace: string, name: string, selector: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  };
}

/**
 * Starts the cluster into `scenario.cluster` (stop it in `afterAll`), sets the namespace up, fills
 * `scenario.pods` and returns the waypoint pod.
 */
export async function startWaypointMesh(
  scenario: ScenarioContext<MeshPod>,
  o: WaypointMeshOptions,
): Promise<WaypointPod> {
  ({ cluster: scenario.cluster } = await startMeshCluster({
    name: o.cluster.name,
    slot: o.cluster.slot,
    nodes: o.cluster.nodes ?? 2,
  }));
  return setUpWaypointNamespace(scenario, o);
}

/**
 * On the mesh of `scenario.cluster` (however it was installed): the namespace with its waypoint,
 * pods and Services, as `startWaypointMesh` sets them up. Adds the pods to `scenario.pods` and
 * returns the waypoint pod once a request through it was counted.
 */
export async function setUpWaypointNamespace(
  scenario: ScenarioContext<MeshPod>,
  o: WaypointNamespaceOptions,
): Promise<WaypointPod> {
  const c = scenario.kube();
  const ns = o.namespace;
  await createAppNamespace(c, ns, o.serviceAccounts);
  await c.client.mergePatch(`/api/v1/namespaces/${ns}`, {
    metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } },
  });
  await c.client.create(GATEWAY_PATH(ns), waypointGateway(ns));
  for (const [, p] of o.pods) await c.client.create(`/api/v1/namespaces/${ns}/pods`, p);
  for (const [name, selector] of o.services)
    await c.client.create(`/api/v1/namespaces/${ns}/services`, httpService(ns, name, selector));
  for (const [name] of o.pods) scenario.pods.set(name, await readyPod(c, ns, name));
  for (const [name] of o.pods) await inEveryZtunnelConfig(c, scenario.pod(name).ip);
  const waypoint = await readyWaypoint(c.client, c.layout, ns, 'waypoint', 180_000);
  scenario.log(`waypoint pod ${waypoint.name} on ${waypoint.node} at ${waypoint.ip}`);
  // The client's ztunnel sends to the waypoint once WDS names it on the Service.
  const { from, service } = o.probe;
  await waitFor(
    `requests to ${service} counted by the waypoint`,
    async () => {
      await httpCode(scenario.pod(from), `http://${service}.${ns}.svc.cluster.local/`);
      return waypointRequests(await waypointMetrics(waypoint)).some(
        s => s.labels.destination_service_name === service,
      )
        ? true
        : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1_000 },
  );
  return waypoint;
}
