/**
 * The mesh's readiness, from its pods: istiod (one Ready pod), the cni-agent and ztunnel (one
 * Ready pod per node), each with a one-line reason when not ready.
 */
import type { KubeClient } from '@ambient-mesh/kube';
import type { PodView } from './pod.ts';
import { MESH_NAMESPACE } from './manifests.ts';

export type ComponentName = 'istiod' | 'cni-agent' | 'ztunnel';

export interface ComponentStatus {
  readonly name: ComponentName;
  readonly ready: boolean;
  /** Ready pods / wanted pods, and when not ready, why (container states, restarts). */
  readonly detail: string;
}

export interface MeshStatus {
  readonly components: readonly ComponentStatus[];
}

/** What the installer needs of a cluster: a client and, optionally, the nodes to expect agents on. */
export interface MeshTarget {
  readonly client: KubeClient;
  /** The nodes the cni-agent and ztunnel must run on; default: every node of the cluster. */
  readonly nodes?: readonly { readonly name: string }[];
}

/** Label selectors of the components' pods (deploy/). */
export const COMPONENT_SELECTORS: Readonly<Record<ComponentName, string>> = {
  istiod: 'app=istiod',
  'cni-agent': 'k8s-app=istio-cni-node',
  ztunnel: 'app=ztunnel',
};

export const isPodReady = (p: PodView): boolean =>
  p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;

/** Why pods are not ready, in one line: `node-0: Running, restarts 2 (last: Error exit 1)`. */
export function describePods(pods: readonly PodView[]): string {
  if (pods.length === 0) return 'no pods';
  return pods
    .map(p => {
      const c = p.status?.containerStatuses?.[0];
      const state =
        c?.state?.waiting?.reason ?? (c?.state?.terminated ? 'Terminated' : (p.status?.phase ?? '?'));
      const last = c?.lastState?.terminated;
      const lastText = last ? ` (last: ${last.reason ?? ''} exit ${last.exitCode})` : '';
      const msg = p.status?.message === undefined ? '' : ` ${p.status.message}`;
      return `${p.spec?.nodeName ?? '?'}: ${isPodReady(p) ? 'Ready' : state}, restarts ${c?.restartCount ?? 0}${lastText}${msg}`;
    })
    .join('; ');
}

/** The mesh's pods with a label selector (`P`: the caller's Pod type, e.g. client-node's `V1Pod`). */
export async function meshPods<P extends PodView = PodView>(
  client: KubeClient,
  selector: string,
): Promise<P[]> {
  return (await client.list<P>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, { labelSelector: selector }))
    .items;
}

/** The nodes of the target: the given ones, else every node of the cluster. */
export async function targetNodes(target: MeshTarget): Promise<readonly { readonly name: string }[]> {
  if (target.nodes !== undefined) return target.nodes;
  const list = await target.client.list<{ metadata?: { name?: string } }>('/api/v1/nodes');
  return list.items.map(n => ({ name: n.metadata?.name ?? '' }));
}

export async function componentStatus(
  client: KubeClient,
  name: ComponentName,
  want: number,
): Promise<ComponentStatus> {
  const pods = await meshPods(client, COMPONENT_SELECTORS[name]);
  const ready = pods.filter(isPodReady).length;
  return { name, ready: ready >= want, detail: `${ready}/${want} ready; ${describePods(pods)}` };
}

/** The current readiness of the mesh's components. */
export async function meshStatus(target: MeshTarget): Promise<MeshStatus> {
  const n = (await targetNodes(target)).length;
  return {
    components: [
      await componentStatus(target.client, 'istiod', 1),
      await componentStatus(target.client, 'cni-agent', n),
      await componentStatus(target.client, 'ztunnel', n),
    ],
  };
}
