/**
 * Pure views of the mesh from a {@link MeshSnapshot}: the control-plane card, namespaces with their
 * ambient badge, and workloads with their mesh mode (Kiali's L4/L7/sidecar/out-of-mesh badges) and
 * the waypoint that serves them, resolved the way istiod does (workload label, then a selecting
 * service's label, then the namespace's; `none` switches it off).
 */
import {
  Annotation,
  DataplaneMode,
  GATEWAY_MANAGED_BY_MESH,
  GatewayClassName,
  Label,
  REDIRECTION_ENABLED,
} from '@ambient-mesh/mesh-api';
import type {
  ControlPlaneView,
  LabelledBy,
  MeshMode,
  NamespaceView,
  ServiceView,
  WaypointRef,
  WorkloadDetailView,
  WorkloadView,
  ZtunnelPod,
} from './model.ts';
import type { MeshSnapshot, Meta, NamespaceObject, PodObject, ServiceObject } from './snapshot.ts';

const SIDECAR_CONTAINER = 'istio-proxy';

export function isAmbientNamespace(ns: NamespaceObject | undefined): boolean {
  return ns?.metadata.labels?.[Label.dataplaneMode] === DataplaneMode.ambient;
}

export function hasSidecar(pod: PodObject): boolean {
  return (
    pod.metadata.annotations?.[Annotation.sidecarStatus] !== undefined ||
    (pod.spec?.containers ?? []).some(c => c.name === SIDECAR_CONTAINER)
  );
}

/** In ambient: the pod or its namespace says ambient, the pod does not opt out, and it has no sidecar. */
export function isAmbientPod(pod: PodObject, ns: NamespaceObject | undefined): boolean {
  const own = pod.metadata.labels?.[Label.dataplaneMode];
  if (own === DataplaneMode.none) return false;
  if (hasSidecar(pod)) return false;
  return own === DataplaneMode.ambient || isAmbientNamespace(ns);
}

export function isZtunnelPod(pod: PodObject): boolean {
  return pod.metadata.labels?.app === 'ztunnel';
}

export function isWaypointPod(pod: PodObject): boolean {
  const labels = pod.metadata.labels ?? {};
  return (
    labels[Label.gatewayManaged] === GATEWAY_MANAGED_BY_MESH ||
    labels['gateway.networking.k8s.io/gateway-class-name'] === GatewayClassName.waypoint
  );
}

/** The workload a pod belongs to: its controller (a ReplicaSet's Deployment), else the pod. */
export function workloadOf(pod: PodObject): { readonly name: string; readonly kind: string } {
  const owner = pod.metadata.ownerReferences?.[0];
  if (owner === undefined) return { name: pod.metadata.name, kind: 'Pod' };
  if (owner.kind === 'ReplicaSet') {
    const hash = pod.metadata.labels?.['pod-template-hash'];
    const name =
      hash !== undefined && owner.name.endsWith(`-${hash}`)
        ? owner.name.slice(0, -hash.length - 1)
        : owner.name;
    return { name, kind: 'Deployment' };
  }
  return { name: owner.name, kind: owner.kind };
}

function selects(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Lookup helpers over one snapshot. */
export class MeshIndex {
  readonly #namespaces = new Map<string, NamespaceObject>();
  readonly #waypoints = new Set<string>();
  readonly snapshot: MeshSnapshot;

  constructor(snapshot: MeshSnapshot) {
    this.snapshot = snapshot;
    for (const ns of snapshot.namespaces) this.#namespaces.set(ns.metadata.name, ns);
    for (const gw of snapshot.gateways) {
      if (gw.spec?.gatewayClassName === GatewayClassName.waypoint) {
        this.#waypoints.add(`${gw.metadata.namespace ?? ''}/${gw.metadata.name}`);
      }
    }
  }

  namespace(name: string): NamespaceObject | undefined {
    return this.#namespaces.get(name);
  }

  waypointExists(namespace: string, name: string): boolean {
    return this.#waypoints.has(`${namespace}/${name}`);
  }

  /** The waypoint an object's own labels name (`undefined` when unlabelled, `null` for `none`). */
  waypointLabel(meta: Meta, labelledBy: LabelledBy, ownNamespace: string): WaypointRef | null | undefined {
    const name = meta.labels?.[Label.useWaypoint];
    if (name === undefined || name === '') return undefined;
    if (name === 'none') return null;
    const namespace = meta.labels?.[Label.useWaypointNamespace] ?? ownNamespace;
    return { name, namespace, labelledBy, exists: this.waypointExists(namespace, name) };
  }

  servicesSelecting(pod: PodObject): ServiceObject[] {
    const ns = pod.metadata.namespace;
    return this.snapshot.services.filter(
      s => s.metadata.namespace === ns && selects(s.spec?.selector, pod.metadata.labels),
    );
  }

  /** The waypoint serving a pod: its own label, a selecting service's, then its namespace's. */
  waypointForPod(pod: PodObject): WaypointRef | undefined {
    const nsName = pod.metadata.namespace ?? '';
    const own = this.waypointLabel(pod.metadata, 'workload', nsName);
    if (own !== undefined) return own ?? undefined;
    for (const svc of this.servicesSelecting(pod)) {
      const ref = this.waypointLabel(svc.metadata, 'service', nsName);
      if (ref) return ref;
    }
    const ns = this.namespace(nsName);
    return ns === undefined ? undefined : (this.waypointLabel(ns.metadata, 'namespace', nsName) ?? undefined);
  }

  modeOf(pod: PodObject): MeshMode {
    if (hasSidecar(pod)) return 'sidecar';
    if (!isAmbientPod(pod, this.namespace(pod.metadata.namespace ?? ''))) return 'out-of-mesh';
    return this.waypointForPod(pod) === undefined ? 'L4' : 'L7';
  }
}

function podReady(pod: PodObject): boolean {
  return (pod.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True');
}

export function controlPlaneView(snapshot: MeshSnapshot, systemNamespace: string): ControlPlaneView {
  const ztunnels = snapshot.pods.filter(isZtunnelPod).map(p => ({
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? '',
    node: p.spec?.nodeName,
    ready: podReady(p),
  }));
  const istiodPods = snapshot.pods.filter(
    p => p.metadata.namespace === systemNamespace && p.metadata.labels?.app === 'istiod',
  ).length;
  return { namespace: systemNamespace, ambient: ztunnels.length > 0, ztunnels, istiodPods };
}

export function workloadViews(snapshot: MeshSnapshot, namespace?: string): WorkloadView[] {
  const index = new MeshIndex(snapshot);
  const groups = new Map<string, { kind: string; name: string; namespace: string; pods: PodObject[] }>();
  for (const pod of snapshot.pods) {
    const ns = pod.metadata.namespace ?? '';
    if (namespace !== undefined && ns !== namespace) continue;
    const w = workloadOf(pod);
    const key = `${ns}/${w.kind}/${w.name}`;
    const group = groups.get(key) ?? { ...w, namespace: ns, pods: [] };
    group.pods.push(pod);
    groups.set(key, group);
  }
  const views: WorkloadView[] = [];
  for (const g of groups.values()) {
    const first = g.pods[0]!;
    const modes = g.pods.map(p => index.modeOf(p));
    // The weakest mode of its pods: one pod out of the mesh makes the workload's badge say so.
    const order: MeshMode[] = ['out-of-mesh', 'sidecar', 'L4', 'L7'];
    const mode = order.find(m => modes.includes(m)) ?? 'out-of-mesh';
    views.push({
      namespace: g.namespace,
      name: g.name,
      kind: g.kind,
      pods: g.pods.length,
      mode,
      redirected: g.pods.every(p => p.metadata.annotations?.[Annotation.redirection] === REDIRECTION_ENABLED),
      waypoint: mode === 'L7' ? index.waypointForPod(first) : undefined,
      isWaypoint: isWaypointPod(first),
      isZtunnel: isZtunnelPod(first),
    });
  }
  return views.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

export function namespaceViews(snapshot: MeshSnapshot): NamespaceView[] {
  const index = new MeshIndex(snapshot);
  const counts = new Map<string, number>();
  for (const w of workloadViews(snapshot)) counts.set(w.namespace, (counts.get(w.namespace) ?? 0) + 1);
  return snapshot.namespaces
    .map(ns => ({
      name: ns.metadata.name,
      ambient: isAmbientNamespace(ns),
      workloads: counts.get(ns.metadata.name) ?? 0,
      waypoint: index.waypointLabel(ns.metadata, 'namespace', ns.metadata.name) ?? undefined,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The ztunnel on a node (the pod's `spec.nodeName`), as the detail pages link to it. */
export function ztunnelOnNode(snapshot: MeshSnapshot, node: string | undefined): ZtunnelPod | undefined {
  if (node === undefined) return undefined;
  const p = snapshot.pods.find(x => isZtunnelPod(x) && x.spec?.nodeName === node);
  return p === undefined
    ? undefined
    : { name: p.metadata.name, namespace: p.metadata.namespace ?? '', node, ready: podReady(p) };
}

/** One workload with its pods (node, address, HBONE or TCP, that node's ztunnel) and services. */
export function workloadDetailView(
  snapshot: MeshSnapshot,
  namespace: string,
  name: string,
): WorkloadDetailView | undefined {
  const workload = workloadViews(snapshot, namespace).find(w => w.name === name);
  if (workload === undefined) return undefined;
  const index = new MeshIndex(snapshot);
  const pods = snapshot.pods.filter(p => p.metadata.namespace === namespace && workloadOf(p).name === name);
  const services = new Set<string>();
  for (const p of pods) for (const s of index.servicesSelecting(p)) services.add(s.metadata.name);
  return {
    workload,
    pods: pods
      .map(p => ({
        name: p.metadata.name,
        node: p.spec?.nodeName,
        ip: p.status?.podIP,
        ready: podReady(p),
        protocol:
          p.metadata.annotations?.[Annotation.redirection] === REDIRECTION_ENABLED
            ? ('HBONE' as const)
            : ('TCP' as const),
        ztunnel: ztunnelOnNode(snapshot, p.spec?.nodeName),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    services: [...services].sort(),
  };
}

/** Services (of a namespace) with their waypoint and the workloads they select. */
export function serviceViews(snapshot: MeshSnapshot, namespace?: string): ServiceView[] {
  const index = new MeshIndex(snapshot);
  return snapshot.services
    .filter(s => namespace === undefined || s.metadata.namespace === namespace)
    .map(s => {
      const ns = s.metadata.namespace ?? '';
      const selected = snapshot.pods.filter(
        p => p.metadata.namespace === ns && selects(s.spec?.selector, p.metadata.labels),
      );
      const own = index.waypointLabel(s.metadata, 'service', ns);
      const nsObj = index.namespace(ns);
      const waypoint =
        own === null
          ? undefined
          : (own ??
            (nsObj === undefined
              ? undefined
              : (index.waypointLabel(nsObj.metadata, 'namespace', ns) ?? undefined)));
      return {
        namespace: ns,
        name: s.metadata.name,
        waypoint,
        workloads: [...new Set(selected.map(p => workloadOf(p).name))].sort(),
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}
