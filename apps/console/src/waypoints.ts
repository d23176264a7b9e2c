/**
 * The waypoint view, as a pure function of a snapshot: every Gateway of class `istio-waypoint` with
 * its Programmed condition, its proxies' pods, and what it serves, each with what binds it (Kiali's
 * "Labeled by"):
 *
 * - enrolled services: the Service's own `istio.io/use-waypoint`, else its namespace's (a Service
 *   labelled `none` opts out);
 * - enrolled workloads: resolved as for the workloads list (the pod's label, a selecting Service's,
 *   then the namespace's), waypoint and ztunnel pods excluded.
 */
import { GatewayClassName, Label } from '@ambient-mesh/mesh-api';
import { MeshIndex, isWaypointPod, isZtunnelPod, workloadOf } from './mesh-view.ts';
import type { EnrolledService, EnrolledWorkload, WaypointRef, WaypointView } from './model.ts';
import type { MeshSnapshot, PodObject } from './snapshot.ts';

const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const key = (namespace: string, name: string): string => `${namespace}/${name}`;

function podReady(pod: PodObject): boolean {
  return (pod.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True');
}

export function waypointViews(snapshot: MeshSnapshot): WaypointView[] {
  const index = new MeshIndex(snapshot);
  const services = new Map<string, EnrolledService[]>();
  const workloads = new Map<string, Map<string, EnrolledWorkload>>();

  for (const svc of snapshot.services) {
    const ns = svc.metadata.namespace ?? '';
    const own = index.waypointLabel(svc.metadata, 'service', ns);
    const nsObj = index.namespace(ns);
    const ref: WaypointRef | null | undefined =
      own !== undefined
        ? own
        : nsObj === undefined
          ? undefined
          : index.waypointLabel(nsObj.metadata, 'namespace', ns);
    if (!ref) continue;
    const list = services.get(key(ref.namespace, ref.name)) ?? [];
    list.push({ namespace: ns, name: svc.metadata.name, labelledBy: ref.labelledBy });
    services.set(key(ref.namespace, ref.name), list);
  }

  for (const pod of snapshot.pods) {
    if (isWaypointPod(pod) || isZtunnelPod(pod)) continue;
    const ref = index.waypointForPod(pod);
    if (ref === undefined) continue;
    const ns = pod.metadata.namespace ?? '';
    const w = workloadOf(pod);
    const byWorkload = workloads.get(key(ref.namespace, ref.name)) ?? new Map<string, EnrolledWorkload>();
    const id = `${ns}/${w.kind}/${w.name}`;
    const prev = byWorkload.get(id);
    byWorkload.set(id, {
      namespace: ns,
      name: w.name,
      kind: w.kind,
      pods: (prev?.pods ?? 0) + 1,
      labelledBy: prev?.labelledBy ?? ref.labelledBy,
    });
    workloads.set(key(ref.namespace, ref.name), byWorkload);
  }

  const byName = (a: { namespace: string; name: string }, b: { namespace: string; name: string }): number =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
  return snapshot.gateways
    .filter(gw => gw.spec?.gatewayClassName === GatewayClassName.waypoint)
    .map(gw => {
      const ns = gw.metadata.namespace ?? '';
      const name = gw.metadata.name;
      const proxies = snapshot.pods.filter(
        p => p.metadata.namespace === ns && p.metadata.labels?.[GATEWAY_NAME_LABEL] === name,
      );
      const programmed = gw.status?.conditions?.find(c => c.type === 'Programmed');
      return {
        namespace: ns,
        name,
        waypointFor: gw.metadata.labels?.[Label.waypointFor] ?? 'service',
        programmed:
          programmed === undefined
            ? undefined
            : {
                status: programmed.status,
                ...(programmed.reason === undefined ? {} : { reason: programmed.reason }),
                ...(programmed.message === undefined ? {} : { message: programmed.message }),
              },
        pods: proxies.length,
        readyPods: proxies.filter(podReady).length,
        proxyPods: proxies.map(p => p.metadata.name).sort(),
        services: [...(services.get(key(ns, name)) ?? [])].sort(byName),
        workloads: [...(workloads.get(key(ns, name))?.values() ?? [])].sort(byName),
      };
    })
    .sort(byName);
}
