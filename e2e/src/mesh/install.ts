import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { waitFor } from '../exec.ts';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';
import { MESH_COMPONENTS, loadManifests, objectPath, type ManifestObject } from './manifests.ts';

export const MESH_NAMESPACE = 'istio-system';
const FIELD_MANAGER = 'ambient-mesh-installer';

/** What `installMesh` needs of a cluster (a local or a kind cluster). */
export interface MeshTarget {
  readonly client: KubeClient;
  readonly nodes: readonly { readonly name: string }[];
}

export interface ComponentStatus {
  readonly name: 'istiod' | 'cni-agent' | 'ztunnel';
  readonly ready: boolean;
  /** Ready pods / wanted pods, and when not ready, why (container states, restarts). */
  readonly detail: string;
}

export interface MeshStatus {
  readonly components: readonly ComponentStatus[];
}

export interface InstallOptions {
  /** How long to wait for istiod and the cni-agent (default 120 s each). */
  readonly timeoutMs?: number;
  /** How long to wait for ztunnel before reporting it not ready (default 60 s). */
  readonly ztunnelTimeoutMs?: number;
  readonly progress?: (line: string) => void;
  /** Manifests root (default the repository's deploy/). */
  readonly deployRoot?: string;
}

/**
 * CRDs in a `*.k8s.io` group need `api-approved.kubernetes.io`; the Gateway API CRDs in
 * deploy/crds lack it, so it is added here with Kubernetes' documented "unapproved" value.
 */
export function withApprovalAnnotation(o: ManifestObject): ManifestObject {
  const group = (o as { spec?: { group?: string } }).spec?.group ?? '';
  const meta = o.metadata as { annotations?: Record<string, string> };
  if (o.kind !== 'CustomResourceDefinition' || !/(^|\.)k8s\.io$/.test(group)) return o;
  if (meta.annotations?.['api-approved.kubernetes.io'] !== undefined) return o;
  return {
    ...o,
    metadata: {
      ...o.metadata,
      annotations: {
        ...meta.annotations,
        'api-approved.kubernetes.io': 'unapproved, local copy of the Gateway API CRD',
      },
    },
  };
}

/** Server-side apply of one object. */
export async function applyObject(client: KubeClient, o: ManifestObject): Promise<void> {
  await client.request('PATCH', objectPath(o), {
    body: withApprovalAnnotation(o),
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: FIELD_MANAGER, force: true },
  });
}

async function podsOf(client: KubeClient, selector: string): Promise<V1Pod[]> {
  const list = await client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: selector,
  });
  return list.items;
}

const isReady = (p: V1Pod): boolean =>
  p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;

/** Why pods are not ready, in one line: `node-0: Running, restarts 2 (last: Error exit 1)`. */
export function describePods(pods: readonly V1Pod[]): string {
  if (pods.length === 0) return 'no pods';
  return pods
    .map(p => {
      const c = p.status?.containerStatuses?.[0];
      const state =
        c?.state?.waiting?.reason ?? (c?.state?.terminated ? 'Terminated' : (p.status?.phase ?? '?'));
      const last = c?.lastState?.terminated;
      const lastText = last ? ` (last: ${last.reason ?? ''} exit ${last.exitCode})` : '';
      const msg = p.status?.message === undefined ? '' : ` ${p.status.message}`;
      return `${p.spec?.nodeName ?? '?'}: ${isReady(p) ? 'Ready' : state}, restarts ${c?.restartCount ?? 0}${lastText}${msg}`;
    })
    .join('; ');
}

async function componentStatus(
  client: KubeClient,
  name: ComponentStatus['name'],
  selector: string,
  want: number,
): Promise<ComponentStatus> {
  const pods = await podsOf(client, selector);
  const ready = pods.filter(isReady).length;
  return { name, ready: ready >= want, detail: `${ready}/${want} ready; ${describePods(pods)}` };
}

const SELECTORS = {
  istiod: 'app=istiod',
  'cni-agent': 'k8s-app=istio-cni-node',
  ztunnel: 'app=ztunnel',
} as const;

/** The current readiness of the mesh's components. */
export async function meshStatus(cluster: MeshTarget): Promise<MeshStatus> {
  const n = cluster.nodes.length;
  return {
    components: [
      await componentStatus(cluster.client, 'istiod', SELECTORS.istiod, 1),
      await componentStatus(cluster.client, 'cni-agent', SELECTORS['cni-agent'], n),
      await componentStatus(cluster.client, 'ztunnel', SELECTORS.ztunnel, n),
    ],
  };
}

/**
 * Applies the CRDs (`deploy/crds/`) and the manifests of istiod, the cni-agent and ztunnel, then
 * waits for istiod Ready (its readiness probe is `/ready`) and the cni-agent Ready on every node.
 * ztunnel is installed too and waited for a bounded time; if it is not Ready by then the returned
 * status says so and why, instead of failing the install.
 */
export async function installMesh(cluster: MeshTarget, options: InstallOptions = {}): Promise<MeshStatus> {
  const progress = options.progress ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const { client } = cluster;
  for (const component of MESH_COMPONENTS) {
    const objects = loadManifests(component, options.deployRoot);
    progress(`apply deploy/${component} (${objects.length} objects)`);
    for (const o of objects) await applyObject(client, o);
    if (component === 'crds') {
      await waitFor(
        'CRDs established',
        async () => {
          for (const o of objects) {
            const crd = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
              objectPath(o),
            );
            if (!crd.status?.conditions?.some(c => c.type === 'Established' && c.status === 'True'))
              return undefined;
          }
          return true;
        },
        { timeoutMs: 30_000 },
      );
    }
  }
  const n = cluster.nodes.length;
  progress('waiting for istiod Ready (/ready)');
  await waitFor(
    'istiod Ready',
    async () => {
      const s = await componentStatus(client, 'istiod', SELECTORS.istiod, 1);
      return s.ready ? s : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  ).catch(async (e: unknown) => {
    const s = await componentStatus(client, 'istiod', SELECTORS.istiod, 1);
    throw new Error(`${errorMessage(e)}; istiod: ${s.detail}`, { cause: e });
  });
  progress(`waiting for the cni-agent Ready on ${n} nodes`);
  await waitFor(
    'cni-agent Ready on every node',
    async () => {
      const s = await componentStatus(client, 'cni-agent', SELECTORS['cni-agent'], n);
      return s.ready ? s : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  ).catch(async (e: unknown) => {
    const s = await componentStatus(client, 'cni-agent', SELECTORS['cni-agent'], n);
    throw new Error(`${errorMessage(e)}; cni-agent: ${s.detail}`, { cause: e });
  });
  progress(`waiting up to ${(options.ztunnelTimeoutMs ?? 60_000) / 1000} s for ztunnel Ready`);
  await waitFor(
    'ztunnel Ready',
    async () => {
      const s = await componentStatus(client, 'ztunnel', SELECTORS.ztunnel, n);
      return s.ready ? s : undefined;
    },
    { timeoutMs: options.ztunnelTimeoutMs ?? 60_000, intervalMs: 1_000 },
  ).catch(() => undefined);
  return meshStatus(cluster);
}

/**
 * Removes what `installMesh` applied, in reverse, waits for the mesh's pods and namespace to be
 * gone, and deletes the `istio-ca-root-cert` ConfigMaps istiod published in other namespaces.
 */
export async function uninstallMesh(
  cluster: MeshTarget,
  options: Pick<InstallOptions, 'progress' | 'deployRoot' | 'timeoutMs'> = {},
): Promise<void> {
  const progress = options.progress ?? (() => undefined);
  const { client } = cluster;
  for (const component of [...MESH_COMPONENTS].reverse()) {
    const objects = loadManifests(component, options.deployRoot).reverse();
    progress(`delete deploy/${component}`);
    for (const o of objects) {
      if (o.kind === 'Namespace') continue; // last, once its pods are gone
      await client.delete(objectPath(o), { propagationPolicy: 'Background' });
    }
  }
  await waitFor(
    'mesh pods gone',
    async () => {
      const list = await client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`);
      return list.items.length === 0 ? true : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 120_000, intervalMs: 500 },
  );
  const cms = await client.get<KubeList<{ metadata: { name: string; namespace: string } }>>(
    '/api/v1/configmaps',
    { fieldSelector: 'metadata.name=istio-ca-root-cert' },
  );
  for (const cm of cms.items) {
    await client.delete(`/api/v1/namespaces/${cm.metadata.namespace}/configmaps/istio-ca-root-cert`);
  }
  progress(`delete namespace ${MESH_NAMESPACE}`);
  await client.delete(`/api/v1/namespaces/${MESH_NAMESPACE}`);
  await waitFor(
    `namespace ${MESH_NAMESPACE} gone`,
    async () =>
      (await client.find(`/api/v1/namespaces/${MESH_NAMESPACE}`)) === undefined ? true : undefined,
    { timeoutMs: options.timeoutMs ?? 120_000, intervalMs: 500 },
  );
}
