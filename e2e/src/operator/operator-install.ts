/**
 * The operator on a harness cluster: the mesh's CRDs (with the Gateway API bundle), the
 * operator's sailoperator.io CRDs and its Deployment, all rendered from `deploy/` by the install
 * package; then the Sail CRs, and reading them back; the namespaces and the two pods the
 * operator's tests run traffic between. Used by the operator's cluster tests and benchmark.
 */
import {
  OPERATOR_SETS,
  applyObjects,
  renderComponent,
  withGatewayApiCrds,
  type ManifestObject,
} from '@ambient-mesh/install';
import type { KubeClient } from '@ambient-mesh/kube';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import {
  createAppNamespace,
  echoPod,
  inEveryZtunnelConfig,
  readyPod,
  type MeshPod,
} from '../mesh/workloads.ts';
import { ensureGatewayApiCrds, gatewayApiCrdObjects } from '../upstream-tools/gateway-api.ts';

export const OPERATOR_NAMESPACE = 'ambient-mesh-operator';
export const SAIL = '/apis/sailoperator.io/v1';

export interface SailCr {
  readonly metadata: {
    name: string;
    uid?: string;
    generation?: number;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  readonly spec: Record<string, unknown>;
  readonly status?: {
    observedGeneration?: number;
    state?: string;
    activeRevisionName?: string;
    istioRevision?: string;
    istiodNamespace?: string;
    revisions?: { total: number; ready: number; inUse: number };
    conditions?: {
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastTransitionTime?: string;
    }[];
  };
}

/** Applies the CRDs (mesh, Gateway API, sailoperator.io) and the operator; waits for it Ready. */
export async function installOperator(cluster: Cluster, progress: (line: string) => void): Promise<void> {
  const { client } = cluster;
  const crds: ManifestObject[] = [
    ...withGatewayApiCrds(
      renderComponent('crds'),
      gatewayApiCrdObjects(await ensureGatewayApiCrds(progress)),
    ),
    ...renderComponent(OPERATOR_SETS[0]),
  ];
  progress(`apply ${crds.length} CRDs`);
  await applyObjects(client, crds);
  await waitFor(
    'CRDs established',
    async () => {
      for (const crd of crds) {
        const live = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
        );
        if (!live.status?.conditions?.some(c => c.type === 'Established' && c.status === 'True'))
          return undefined;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const operator = renderComponent(OPERATOR_SETS[1]);
  progress(`apply the operator (${operator.length} objects)`);
  await applyObjects(client, operator);
  await waitFor(
    'the operator Ready',
    async () => {
      const d = await client.get<{ status?: { readyReplicas?: number } }>(
        `/apis/apps/v1/namespaces/${OPERATOR_NAMESPACE}/deployments/ambient-mesh-operator`,
      );
      return (d.status?.readyReplicas ?? 0) >= 1 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

export function sailPath(
  plural: 'istios' | 'istiocnis' | 'ztunnels' | 'istiorevisions' | 'istiorevisiontags',
  name?: string,
): string {
  return `${SAIL}/${plural}${name === undefined ? '' : `/${name}`}`;
}

/** A Sail CR named `default`. */
export function sailCr(kind: string, spec: object): object {
  return { apiVersion: 'sailoperator.io/v1', kind, metadata: { name: 'default' }, spec };
}

/** Sail's ambient install: `Istio` and `IstioCNI` with profile ambient, and `ZTunnel` `default`. */
export function ambientCrs(options: {
  readonly ztunnelNamespace: string;
  readonly cniNamespace: string;
  /** `spec.version` of all three (default: the CRDs' default). */
  readonly version?: string;
  /** More of the `Istio`'s spec (e.g. `updateStrategy`). */
  readonly istio?: object;
}): [istio: SailObject, cni: SailObject, ztunnel: SailObject] {
  const cr = (kind: string, spec: object): object =>
    sailCr(kind, { ...spec, ...(options.version === undefined ? {} : { version: options.version }) });
  return [
    {
      path: sailPath('istios'),
      body: cr('Istio', { namespace: 'istio-system', profile: 'ambient', ...options.istio }),
    },
    {
      path: sailPath('istiocnis'),
      body: cr('IstioCNI', { namespace: options.cniNamespace, profile: 'ambient' }),
    },
    { path: sailPath('ztunnels'), body: cr('ZTunnel', { namespace: options.ztunnelNamespace }) },
  ];
}

/** A Sail CR with the collection it is created in. */
export interface SailObject {
  readonly path: string;
  readonly body: object;
}

export function condition(
  cr: SailCr | undefined,
  type: string,
): { status: string; reason?: string; message?: string; lastTransitionTime?: string } | undefined {
  return cr?.status?.conditions?.find(c => c.type === type);
}

/** Waits until the CR's `Ready` is True for its current generation. */
export async function waitReady(client: KubeClient, path: string, timeoutMs = 240_000): Promise<SailCr> {
  return waitFor(
    `${path} Ready=True`,
    async () => {
      const cr = await client.get<SailCr>(path);
      return condition(cr, 'Ready')?.status === 'True' &&
        cr.status?.observedGeneration === cr.metadata.generation
        ? cr
        : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** Creates the namespaces the Sail CRs install into (`istio-system`, the CNI's). */
export async function createNamespaces(client: KubeClient, names: readonly string[]): Promise<void> {
  for (const name of names) {
    await client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
  }
}

/**
 * The ambient namespace `ns` with service accounts `echo` and `client`: pod `echo` (app=echo,
 * port 8080) on node-1 and pod `client` (PORT 9090) on node-0, both waited for Ready and in every
 * ztunnel's config. `labels` go on both pods: beside echo's app=echo, instead of client's
 * app=client.
 */
export async function echoAndClient(
  cluster: Cluster,
  ns: string,
  options: { readonly labels?: Record<string, string> } = {},
): Promise<Map<string, MeshPod>> {
  const { labels } = options;
  await createAppNamespace(cluster, ns, ['echo', 'client']);
  await cluster.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    echoPod('echo', {
      namespace: ns,
      node: 'node-1',
      serviceAccount: 'echo',
      labels: { app: 'echo', ...labels },
      containerPorts: [8080],
    }),
  );
  await cluster.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    echoPod('client', {
      namespace: ns,
      node: 'node-0',
      serviceAccount: 'client',
      ...(labels === undefined ? {} : { labels }),
      env: { PORT: '9090' },
    }),
  );
  const pods = new Map<string, MeshPod>();
  for (const name of ['echo', 'client']) pods.set(name, await readyPod(cluster, ns, name));
  for (const p of pods.values()) await inEveryZtunnelConfig(cluster, p.ip);
  return pods;
}
