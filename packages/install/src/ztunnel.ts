/**
 * Looking into a running ztunnel: its `/metrics` (stats port 15020) and admin `/config_dump`
 * (workloads, services, policies, certificates; admin port 15000). How a pod's port is reached is
 * a capability: through the apiserver's pod proxy on any cluster (`apiserverPodGetter`), or
 * whatever the caller has (the local cluster runs curl inside the pod's network namespace, since
 * ztunnel's admin port listens on localhost only).
 */
import type { KubeClient } from '@ambient-mesh/kube';
import { Port } from '@ambient-mesh/mesh-api';
import type { V1Pod } from '@kubernetes/client-node';
import { MESH_NAMESPACE } from './manifests.ts';
import { parsePrometheus, type MetricSample } from './prometheus.ts';
import { COMPONENT_SELECTORS } from './status.ts';

export const ZTUNNEL_ADMIN_PORT: number = Port.admin;
export const ZTUNNEL_STATS_PORT: number = Port.stats;

export interface ZtunnelPod {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  readonly uid: string;
  readonly ip: string;
}

/** GETs `path` on `port` of a pod; undefined when it does not answer. */
export type PodHttpGet = (pod: ZtunnelPod, port: number, path: string) => Promise<string | undefined>;

/** Through the apiserver's pod proxy (`pods/<name>:<port>/proxy`): works where the pod's port listens on its IP. */
export function apiserverPodGetter(client: KubeClient): PodHttpGet {
  return async (pod, port, path) => {
    try {
      return await client.proxyGet(pod.namespace, pod.name, port, path);
    } catch {
      return undefined;
    }
  };
}

/** The ztunnel pods that are Running, one per node. */
export async function ztunnelPods(client: KubeClient): Promise<ZtunnelPod[]> {
  const list = await client.list<V1Pod>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: COMPONENT_SELECTORS.ztunnel,
  });
  return list.items
    .filter(p => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined)
    .map(p => ({
      name: p.metadata?.name ?? '',
      namespace: p.metadata?.namespace ?? MESH_NAMESPACE,
      node: p.spec?.nodeName ?? '',
      uid: p.metadata?.uid ?? '',
      ip: p.status?.podIP ?? '',
    }));
}

/** ztunnel's metrics, parsed; [] when the pod does not answer. */
export async function ztunnelMetrics(pod: ZtunnelPod, get: PodHttpGet): Promise<MetricSample[]> {
  return parsePrometheus((await get(pod, ZTUNNEL_STATS_PORT, '/metrics')) ?? '');
}

/** ztunnel's `/config_dump`, parsed; undefined when the pod does not answer or answers no JSON. */
export async function ztunnelConfigDump(
  pod: ZtunnelPod,
  get: PodHttpGet,
): Promise<Record<string, unknown> | undefined> {
  const text = await get(pod, ZTUNNEL_ADMIN_PORT, '/config_dump');
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
