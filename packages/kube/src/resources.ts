/**
 * REST paths of Kubernetes objects: the built-in kinds the mesh uses are known here; any other
 * kind (a CRD) is resolved once through the apiserver's discovery documents and cached.
 */
import { KubeError, KubeErrorCode } from './errors.ts';

/** The minimum of an object: what a path is built from. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly deletionTimestamp?: unknown;
  };
}

/** A list answer. */
export interface KubeList<T> {
  readonly items: T[];
  readonly metadata: { resourceVersion?: string; continue?: string };
}

/** A resource type: `apiVersion` plus its plural and scope. */
export interface ResourceType {
  /** `v1`, `apps/v1`, `security.istio.io/v1`. */
  readonly apiVersion: string;
  /** `pods`, `authorizationpolicies`. */
  readonly plural: string;
  readonly namespaced: boolean;
}

const CORE: Readonly<Record<string, readonly [plural: string, namespaced: boolean]>> = {
  Namespace: ['namespaces', false],
  Node: ['nodes', false],
  ServiceAccount: ['serviceaccounts', true],
  Service: ['services', true],
  Endpoints: ['endpoints', true],
  ConfigMap: ['configmaps', true],
  Secret: ['secrets', true],
  Pod: ['pods', true],
  Event: ['events', true],
  ClusterRole: ['clusterroles', false],
  ClusterRoleBinding: ['clusterrolebindings', false],
  Role: ['roles', true],
  RoleBinding: ['rolebindings', true],
  Deployment: ['deployments', true],
  DaemonSet: ['daemonsets', true],
  StatefulSet: ['statefulsets', true],
  ReplicaSet: ['replicasets', true],
  Lease: ['leases', true],
  PodDisruptionBudget: ['poddisruptionbudgets', true],
  EndpointSlice: ['endpointslices', true],
  CustomResourceDefinition: ['customresourcedefinitions', false],
  MutatingWebhookConfiguration: ['mutatingwebhookconfigurations', false],
  ValidatingWebhookConfiguration: ['validatingwebhookconfigurations', false],
  GatewayClass: ['gatewayclasses', false],
};

/** The resource type of a built-in kind, or undefined when discovery must tell. */
export function knownResourceType(apiVersion: string, kind: string): ResourceType | undefined {
  const known = CORE[kind];
  return known === undefined ? undefined : { apiVersion, plural: known[0], namespaced: known[1] };
}

export interface PathParts {
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  /** `status`, `scale`, `proxy`, ... */
  readonly subresource?: string | undefined;
}

/** `/api/v1/namespaces/ns/pods/name/status` and friends; a collection when `name` is absent. */
export function resourcePath(type: ResourceType, parts: PathParts = {}): string {
  const root = type.apiVersion.includes('/') ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const ns =
    type.namespaced && parts.namespace !== undefined && parts.namespace !== ''
      ? `/namespaces/${encodeURIComponent(parts.namespace)}`
      : '';
  const name = parts.name === undefined ? '' : `/${encodeURIComponent(parts.name)}`;
  const sub = parts.subresource === undefined || parts.name === undefined ? '' : `/${parts.subresource}`;
  return `${root}${ns}/${type.plural}${name}${sub}`;
}

interface DiscoveryList {
  readonly resources?: readonly { name: string; kind: string; namespaced: boolean }[];
}

/** Resolves kinds to resource types, from the table above or from discovery (cached). */
export class ResourceResolver {
  readonly #get: (path: string) => Promise<unknown>;
  readonly #cache = new Map<string, Promise<DiscoveryList>>();

  /** `get` fetches a discovery document (`/api/v1`, `/apis/<group>/<version>`). */
  constructor(get: (path: string) => Promise<unknown>) {
    this.#get = get;
  }

  async resolve(apiVersion: string, kind: string): Promise<ResourceType> {
    const known = knownResourceType(apiVersion, kind);
    if (known !== undefined) return known;
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let doc = this.#cache.get(path);
    if (doc === undefined) {
      doc = this.#get(path) as Promise<DiscoveryList>;
      this.#cache.set(path, doc);
      // A failed discovery is not cached: the CRD may be installed a moment later.
      doc.catch(() => this.#cache.delete(path));
    }
    const found = (await doc).resources?.find(r => r.kind === kind && !r.name.includes('/'));
    if (found === undefined) {
      this.#cache.delete(path);
      throw new KubeError(
        KubeErrorCode.NotFound,
        `the apiserver serves no kind ${kind} in ${apiVersion}; check that its CRD is installed and established`,
      );
    }
    return { apiVersion, plural: found.name, namespaced: found.namespaced };
  }

  /** The path of one object (its namespace defaults to `default` for namespaced kinds). */
  async objectPath(o: KubeObject, subresource?: string): Promise<string> {
    const { apiVersion, kind } = o;
    const name = o.metadata?.name;
    if (apiVersion === undefined || kind === undefined || name === undefined) {
      throw new KubeError(KubeErrorCode.Invalid, 'an object needs apiVersion, kind and metadata.name');
    }
    const type = await this.resolve(apiVersion, kind);
    return resourcePath(type, { namespace: o.metadata?.namespace ?? 'default', name, subresource });
  }
}

/** `namespace/name`, or `name` for cluster-scoped objects: the cache key. */
export function objectKey(o: KubeObject): string {
  const ns = o.metadata?.namespace;
  const name = o.metadata?.name ?? '';
  return ns === undefined || ns === '' ? name : `${ns}/${name}`;
}
