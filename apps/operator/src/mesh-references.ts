// Reads what may refer to a revision or tag from the cluster: the namespaces, the waypoint
// Gateways (none when the Gateway API is not installed) and the tags' current targets.
import type { KubeClient } from '@ambient-mesh/kube';
import { sailPath, type SailObject } from './resources.ts';
import { WAYPOINT_CLASS, type MeshReferences } from './usage.ts';

interface Meta {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

const GATEWAYS = '/apis/gateway.networking.k8s.io/v1/gateways';

export async function readMeshReferences(client: KubeClient): Promise<MeshReferences> {
  const [namespaces, gateways, tags] = await Promise.all([
    client.list<Meta>('/api/v1/namespaces'),
    client.list<Meta & { spec?: { gatewayClassName?: string } }>(GATEWAYS).catch((err: unknown) => {
      // No Gateway API CRDs: no waypoints.
      if ((err as { status?: number }).status === 404) return { items: [] };
      throw err;
    }),
    client.list<SailObject<unknown> & { status?: { istioRevision?: string } }>(sailPath('IstioRevisionTag')),
  ]);
  return {
    namespaces: namespaces.items.map(n => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} })),
    waypoints: gateways.items
      .filter(g => g.spec?.gatewayClassName === WAYPOINT_CLASS)
      .map(g => ({
        namespace: g.metadata.namespace ?? '',
        name: g.metadata.name,
        labels: g.metadata.labels ?? {},
      })),
    tags: tags.items
      .filter(t => t.metadata.deletionTimestamp === undefined && (t.status?.istioRevision ?? '') !== '')
      .map(t => ({ name: t.metadata.name, revision: t.status?.istioRevision ?? '' })),
  };
}
