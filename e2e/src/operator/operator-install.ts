/**
 * The operator on a harness cluster: the mesh's CRDs (with the Gateway API bundle), the
 * operator's sailoperator.io CRDs and its Deployment, all rendered from `deploy/` by the install
 * package; then the Sail CRs, and reading them back; the namespaces and the two pods the
 * operator's tests run traffic between. `installMeshWithOperator` and `uninstallMeshWithOperator`
 * are the whole install and removal, as `npm run up` and `npm run down` run them.
 * Used by the operator's cluster tests, its benchmark and `npm run up`.
 */
import {
  MESH_NAMESPACE,
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
  readonly kind?: string;
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
export async function installOperator(
  cluster: Pick<Cluster, 'client'>,
  progress: (line: string) => void,
): Promise<void> {
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

/** `Ready True (Healthy)`, `Ready False (IstiodNotReady: ...)`, or `not reconciled yet`. */
export function readiness(cr: SailCr): string {
  const ready = condition(cr, 'Ready');
  if (ready === undefined || cr.status?.observedGeneration !== cr.metadata.generation)
    return 'not reconciled yet';
  const why = [ready.reason, ready.message].filter(x => x !== undefined && x !== '').join(': ');
  return `Ready ${ready.status}${why === '' ? '' : ` (${why})`}`;
}

/**
 * Waits until the CR's `Ready` is True for its current generation. With `progress`, says each
 * change of its readiness while waiting (`Istio default: Ready False (IstiodNotReady: ...)`).
 */
export async function waitReady(
  client: KubeClient,
  path: string,
  timeoutMs = 240_000,
  progress?: (line: string) => void,
): Promise<SailCr> {
  let said = '';
  return waitFor(
    `${path} Ready=True`,
    async () => {
      const cr = await client.get<SailCr>(path);
      const now = `${cr.kind ?? path} ${cr.metadata.name}: ${readiness(cr)}`;
      if (progress !== undefined && now !== said) progress(now);
      said = now;
      return condition(cr, 'Ready')?.status === 'True' &&
        cr.status?.observedGeneration === cr.metadata.generation
        ? cr
        : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

export interface OperatorMeshOptions {
  /** The `IstioCNI`'s namespace (Sail's documented `istio-cni` by default). */
  readonly cniNamespace?: string;
  /** The `ZTunnel`'s namespace (default `istio-system`, beside istiod, whose node credentials it trusts). */
  readonly ztunnelNamespace?: string;
  /** `spec.version` of the three CRs (default: the CRDs' default). */
  readonly version?: string;
  readonly progress?: (line: string) => void;
  /** How long to wait for each CR's Ready (default 240 s). */
  readonly timeoutMs?: number;
}

/**
 * The mesh through the operator, as a Sail user installs it: the operator (`installOperator`),
 * the namespaces, then Sail's ambient `Istio`, `IstioCNI` and `ZTunnel` `default` (server-side
 * applied, so running it again changes nothing), waiting for each `Ready=True` and saying each
 * step. Answers the three CRs as they are once Ready.
 */
export async function installMeshWithOperator(
  cluster: Pick<Cluster, 'client'>,
  options: OperatorMeshOptions = {},
): Promise<SailCr[]> {
  const { client } = cluster;
  const progress = options.progress ?? (() => undefined);
  const cniNamespace = options.cniNamespace ?? 'istio-cni';
  const ztunnelNamespace = options.ztunnelNamespace ?? MESH_NAMESPACE;
  await installOperator(cluster, progress);
  const namespaces = [...new Set([MESH_NAMESPACE, cniNamespace, ztunnelNamespace])];
  progress(`apply the namespaces ${namespaces.join(', ')}`);
  await applyObjects(
    client,
    namespaces.map(name => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
  );
  const crs = ambientCrs({
    cniNamespace,
    ztunnelNamespace,
    ...(options.version === undefined ? {} : { version: options.version }),
  });
  progress('apply Istio default (profile ambient), IstioCNI default (profile ambient), ZTunnel default');
  const applied = Date.now();
  await applyObjects(
    client,
    crs.map(c => c.body as ManifestObject),
  );
  const ready: SailCr[] = [];
  for (const plural of ['istios', 'istiocnis', 'ztunnels'] as const)
    ready.push(await waitReady(client, sailPath(plural, 'default'), options.timeoutMs, progress));
  progress(`the three CRs Ready ${((Date.now() - applied) / 1000).toFixed(1)} s after they were applied`);
  return ready;
}

/**
 * Removes what `installMeshWithOperator` made, if it is there: every Sail CR (the operator then
 * deletes what each owns and releases its finalizer), waited for until gone, then the operator
 * and its CRDs and the CNI's namespace. The mesh's own CRDs and `istio-system` are left to
 * `uninstallMesh`. Answers whether the cluster had the operator's CRDs.
 */
export async function uninstallMeshWithOperator(
  cluster: Pick<Cluster, 'client'>,
  options: { readonly progress?: (line: string) => void; readonly timeoutMs?: number } = {},
): Promise<boolean> {
  const { client } = cluster;
  const progress = options.progress ?? (() => undefined);
  const crd = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/istios.sailoperator.io`;
  if ((await client.find(crd)) === undefined) return false;
  const plurals = ['istiorevisiontags', 'ztunnels', 'istiocnis', 'istios', 'istiorevisions'] as const;
  const cniNamespaces = new Set<string>();
  for (const plural of plurals) {
    for (const cr of (await client.list<SailCr>(sailPath(plural))).items) {
      if (plural === 'istiocnis' && typeof cr.spec.namespace === 'string')
        cniNamespaces.add(cr.spec.namespace);
      progress(`delete ${plural} ${cr.metadata.name}`);
      await client.delete(sailPath(plural, cr.metadata.name));
    }
  }
  await waitFor(
    'the Sail CRs gone (the operator removes what they own)',
    async () => {
      for (const plural of plurals)
        if ((await client.list(sailPath(plural))).items.length > 0) return undefined;
      return true;
    },
    { timeoutMs: options.timeoutMs ?? 180_000, intervalMs: 500 },
  );
  for (const set of [...OPERATOR_SETS].reverse()) {
    progress(`delete ${set}`);
    for (const o of renderComponent(set).reverse())
      await client.delete(await client.resources.objectPath(o), { propagationPolicy: 'Background' });
  }
  for (const ns of cniNamespaces) {
    if (ns === MESH_NAMESPACE) continue;
    progress(`delete namespace ${ns}`);
    await client.delete(`/api/v1/namespaces/${ns}`);
  }
  return true;
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
