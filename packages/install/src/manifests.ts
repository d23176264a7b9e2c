/**
 * The mesh's manifests: `<deployRoot>/<component>/*.yaml` for the CRDs, istiod, the cni-agent
 * and ztunnel (and the addons Prometheus and the console), parsed and rendered for a cluster (image overrides, the Kubernetes API approval
 * annotation that `*.k8s.io` CRDs need).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { InstallError, InstallErrorCode } from './errors.ts';

/** One Kubernetes object of a manifest, as parsed. */
export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [key: string]: unknown;
}

/** The mesh's manifest folders, in install order. */
export const MESH_COMPONENTS = ['crds', 'istiod', 'cni-agent', 'ztunnel'] as const;
export type MeshComponent = (typeof MESH_COMPONENTS)[number];

/** The operator's manifest folders, in install order: its CRDs (sailoperator.io), then itself. */
export const OPERATOR_SETS = ['operator/crds', 'operator'] as const;
/**
 * Optional components beside the mesh, in install order: Prometheus (scraping by Istio's
 * `prometheus.io/*` pod annotations), then the console, which queries it.
 */
export const ADDONS = ['prometheus', 'console'] as const;
export type Addon = (typeof ADDONS)[number];

/** A folder of `deploy/`: a mesh component, an addon or one of the operator's. */
export type ManifestSet = MeshComponent | Addon | (typeof OPERATOR_SETS)[number];

/** The namespace the mesh runs in. */
export const MESH_NAMESPACE = 'istio-system';

/**
 * The repository's `deploy/` when running from a checkout of the Ambient Mesh repository;
 * installs from elsewhere pass `deployRoot`.
 */
export function defaultDeployRoot(): string {
  return fileURLToPath(new URL('../../../deploy', import.meta.url));
}

/** The objects of every `*.yaml` in `<root>/<component>/`, in file name order. */
export function loadManifests(component: ManifestSet, root = defaultDeployRoot()): ManifestObject[] {
  const dir = join(root, component);
  if (!existsSync(dir)) {
    throw new InstallError(
      InstallErrorCode.ManifestsMissing,
      `no manifests at ${dir}; pass deployRoot (the folder holding crds/, istiod/, cni-agent/, ztunnel/)`,
    );
  }
  const out: ManifestObject[] = [];
  for (const f of readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .sort()) {
    const file = join(dir, f);
    for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
      if (d.errors.length > 0) {
        throw new InstallError(
          InstallErrorCode.InvalidManifest,
          `${file}: ${d.errors[0]?.message ?? 'invalid YAML'}`,
        );
      }
      const doc = d.toJS() as unknown;
      if (doc === null || doc === undefined) continue;
      out.push(checkObject(doc, file));
    }
  }
  return out;
}

function checkObject(doc: unknown, where: string): ManifestObject {
  const o = doc as Partial<ManifestObject>;
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || !o.metadata?.name) {
    throw new InstallError(
      InstallErrorCode.InvalidManifest,
      `${where}: a document lacks apiVersion, kind or metadata.name`,
    );
  }
  return o as ManifestObject;
}

/**
 * CRDs in a `*.k8s.io` group need `api-approved.kubernetes.io`; the Gateway API CRDs lack it
 * when copied, so it is added with Kubernetes' documented "unapproved" value.
 */
export function withApprovalAnnotation(o: ManifestObject): ManifestObject {
  const group = (o as { spec?: { group?: string } }).spec?.group ?? '';
  if (o.kind !== 'CustomResourceDefinition' || !/(^|\.)k8s\.io$/.test(group)) return o;
  if (o.metadata.annotations?.['api-approved.kubernetes.io'] !== undefined) return o;
  return {
    ...o,
    metadata: {
      ...o.metadata,
      annotations: {
        ...o.metadata.annotations,
        'api-approved.kubernetes.io': 'unapproved, local copy of the Gateway API CRD',
      },
    },
  };
}

export interface RenderOptions {
  /** Manifests root (default: the repository's `deploy/`). */
  readonly deployRoot?: string;
  /** Replaces container images by their name before the tag: `{ 'ambient-mesh/istiod': 'registry/istiod:1.2' }`. */
  readonly images?: Readonly<Record<string, string>>;
  /**
   * istiod's replica count (default: as in `deploy/`, 2). With fewer than 2 the
   * PodDisruptionBudget is left out, as it would block every drain of the node.
   */
  readonly istiodReplicas?: number;
  /**
   * Upstream's `taint.enabled`: istiod runs the node untaint controller
   * (`PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS=true`), may patch nodes, and tolerates the
   * `cni.istio.io/not-ready` taint itself, so it starts on nodes provisioned with it.
   */
  readonly nodeUntaint?: boolean;
  /**
   * Upstream's `taint.namespace`: the namespace of the CNI agent pods the untaint controller
   * waits for, passed to istiod as `--cniNamespace` (unset: istiod's own namespace).
   */
  readonly cniNamespace?: string;
}

/** The taint nodes carry until their CNI agent is Ready (upstream's key). */
export const CNI_NOT_READY_TAINT = 'cni.istio.io/not-ready';

interface IstiodPodSpec {
  tolerations?: { key?: string; operator?: string; effect?: string }[];
  containers?: { name?: string; args?: string[]; env?: { name: string; value?: string }[] }[];
}

/**
 * `nodeUntaint`: the env switch, the toleration and the ClusterRole rule to patch nodes; with a
 * `cniNamespace`, the `--cniNamespace` flag too.
 */
function withNodeUntaint(objects: ManifestObject[], cniNamespace: string | undefined): ManifestObject[] {
  return objects.map(o => {
    if (o.kind === 'Deployment') {
      const copy = structuredClone(o) as ManifestObject & { spec?: { template?: { spec?: IstiodPodSpec } } };
      const spec = copy.spec?.template?.spec;
      if (spec === undefined) return o;
      spec.tolerations = [...(spec.tolerations ?? []), { key: CNI_NOT_READY_TAINT, operator: 'Exists' }];
      for (const c of spec.containers ?? []) {
        if (c.name !== 'discovery') continue;
        c.env = [
          ...(c.env ?? []).filter(e => e.name !== 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS'),
          { name: 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS', value: 'true' },
        ];
        if (cniNamespace !== undefined && cniNamespace !== '') {
          c.args = [
            ...(c.args ?? []).filter(a => !a.startsWith('--cniNamespace')),
            `--cniNamespace=${cniNamespace}`,
          ];
        }
      }
      return copy;
    }
    if (o.kind === 'ClusterRole') {
      const copy = structuredClone(o) as ManifestObject & { rules?: unknown[] };
      copy.rules = [...(copy.rules ?? []), { apiGroups: [''], resources: ['nodes'], verbs: ['patch'] }];
      return copy;
    }
    return o;
  });
}

/** Sets the istiod Deployment's replicas; drops its PodDisruptionBudget below 2. */
function withIstiodReplicas(objects: ManifestObject[], replicas: number): ManifestObject[] {
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new RangeError(`istiodReplicas must be a whole number >= 0 (got ${String(replicas)})`);
  }
  return objects
    .filter(o => !(o.kind === 'PodDisruptionBudget' && replicas < 2))
    .map(o => {
      if (o.kind !== 'Deployment') return o;
      const copy = structuredClone(o) as ManifestObject & { spec?: { replicas?: number } };
      copy.spec = { ...copy.spec, replicas };
      return copy;
    });
}

interface PodTemplateHolder {
  spec?: {
    template?: { spec?: { containers?: { image?: string }[]; initContainers?: { image?: string }[] } };
  };
}

function withImages(o: ManifestObject, images: Readonly<Record<string, string>>): ManifestObject {
  const spec = (o as PodTemplateHolder).spec?.template?.spec;
  if (spec === undefined) return o;
  const swap = (cs: { image?: string }[] | undefined): { image?: string }[] | undefined =>
    cs?.map(c => {
      const repo = c.image?.replace(/:[^/:]+$/, '');
      const to = repo === undefined ? undefined : images[repo];
      return to === undefined ? c : { ...c, image: to };
    });
  const copy = structuredClone(o) as ManifestObject & PodTemplateHolder;
  const s = copy.spec!.template!.spec!;
  const containers = swap(s.containers);
  const initContainers = swap(s.initContainers);
  if (containers !== undefined) s.containers = containers;
  if (initContainers !== undefined) s.initContainers = initContainers;
  return copy;
}

/** The objects `installMesh` applies for one component, rendered for the cluster. */
export function renderComponent(component: ManifestSet, options: RenderOptions = {}): ManifestObject[] {
  const objects = loadManifests(component, options.deployRoot)
    .map(withApprovalAnnotation)
    .map(o => (options.images === undefined ? o : withImages(o, options.images)));
  if (component !== 'istiod') return objects;
  const counted =
    options.istiodReplicas === undefined ? objects : withIstiodReplicas(objects, options.istiodReplicas);
  return options.nodeUntaint === true ? withNodeUntaint(counted, options.cniNamespace) : counted;
}
