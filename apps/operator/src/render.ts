// Desired objects (pure): the install package's manifests for a component (the one source
// deploy/ is rendered from), placed in the CR's namespace, owned by the CR, and adjusted by the
// typed values (images, env, resources, scheduling, replicas, ztunnel grace period).
import type { ManifestObject } from '@ambient-mesh/install';
import {
  FIELD_MANAGER,
  OWNER_LABEL,
  ownerLabel,
  ownerReference,
  type ObjectMeta,
  type SailKind,
} from './resources.ts';
import type { CniValues, GlobalValues, IstioValues, PodValues, ZtunnelValues } from './values.ts';

/** The namespace the checked-in manifests are written for. */
const MANIFEST_NAMESPACE = 'istio-system';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name: string;
  image?: string;
  env?: EnvVar[];
  resources?: Record<string, unknown>;
}
interface PodSpec {
  serviceAccountName?: string;
  containers?: Container[];
  initContainers?: Container[];
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
}
interface Workload {
  replicas?: number;
  template?: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: PodSpec;
  };
}
type Obj = ManifestObject & { metadata: ObjectMeta; spec?: Workload };

export interface RenderTarget {
  readonly kind: SailKind;
  /** The owning CR (cluster-scoped, with its uid). */
  readonly owner: { readonly metadata: ObjectMeta };
  /** Where namespaced objects go (the CR's spec.namespace). */
  readonly namespace: string;
  /** Non-empty for a revisioned istiod: names get `-<revision>` and objects `istio.io/rev`. */
  readonly revision?: string;
  /** The CR's `spec.version` (resolved): the images' tag unless the values name one. */
  readonly version?: string;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
]);

function setEnv(container: Container, name: string, value: string): void {
  const env = (container.env ??= []);
  const at = env.findIndex(e => e.name === name);
  if (at >= 0) env[at] = { name, value };
  else env.push({ name, value });
}

function imageFor(
  current: string,
  global: GlobalValues | undefined,
  pod: PodValues | undefined,
  version: string | undefined,
): string {
  const match = /^(.*)\/([^/:]+)(?::([^/:]+))?$/.exec(current);
  if (match === null) return current;
  const [, hub0, name0, tag0] = match;
  const hub = pod?.hub ?? global?.hub ?? hub0;
  const tag = pod?.tag ?? global?.tag ?? version ?? tag0;
  const name = pod?.image ?? name0;
  return `${hub ?? ''}/${name ?? ''}${tag === undefined ? '' : `:${tag}`}`;
}

/** Applies the settings every component's pod accepts. */
function applyPodValues(
  o: Obj,
  global: GlobalValues | undefined,
  pod: PodValues | undefined,
  version: string | undefined,
): void {
  const template = o.spec?.template;
  const spec = template?.spec;
  if (template === undefined || spec === undefined) return;
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    if (c.image !== undefined) c.image = imageFor(c.image, global, pod, version);
  }
  const main = spec.containers?.[0];
  if (main !== undefined) {
    for (const [k, v] of Object.entries(pod?.env ?? {})) setEnv(main, k, v);
    const resources = pod?.resources ?? global?.resources;
    if (resources !== undefined) main.resources = structuredClone(resources);
  }
  if (pod?.nodeSelector !== undefined) spec.nodeSelector = { ...pod.nodeSelector };
  if (pod?.tolerations !== undefined) spec.tolerations = structuredClone(pod.tolerations);
  if (pod?.podLabels !== undefined)
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...pod.podLabels } };
  if (pod?.podAnnotations !== undefined) {
    template.metadata = {
      ...template.metadata,
      annotations: { ...template.metadata?.annotations, ...pod.podAnnotations },
    };
  }
}

/** Namespace, ownership and (for a revision) names and labels; drops Namespace objects. */
function place(objects: readonly ManifestObject[], target: RenderTarget): Obj[] {
  const suffix = target.revision === undefined || target.revision === '' ? '' : `-${target.revision}`;
  return objects
    .filter(o => o.kind !== 'Namespace')
    .map(input => {
      const o = structuredClone(input) as Obj;
      const clusterScoped = CLUSTER_SCOPED.has(o.kind);
      const name = clusterScoped
        ? o.metadata.name.replaceAll(MANIFEST_NAMESPACE, target.namespace)
        : o.metadata.name;
      o.metadata = {
        ...o.metadata,
        name: `${name}${suffix}`,
        ...(clusterScoped ? {} : { namespace: target.namespace }),
        labels: {
          ...o.metadata.labels,
          [OWNER_LABEL]: ownerLabel(target.kind, target.owner.metadata.name),
          'app.kubernetes.io/managed-by': FIELD_MANAGER,
          ...(suffix === '' ? {} : { 'istio.io/rev': target.revision ?? '' }),
        },
        ownerReferences: [ownerReference(target.owner, target.kind)],
      };
      return o;
    });
}

const workload = (objects: Obj[], kind: string): Obj | undefined => objects.find(o => o.kind === kind);

/** istiod's objects for an IstioRevision. */
export function renderIstiod(
  manifests: readonly ManifestObject[],
  target: RenderTarget,
  values: IstioValues,
): Obj[] {
  const objects = place(manifests, target);
  const deployment = workload(objects, 'Deployment');
  if (deployment?.spec !== undefined) {
    applyPodValues(deployment, values.global, values.pilot, target.version);
    if (values.pilot?.replicaCount !== undefined) deployment.spec.replicas = values.pilot.replicaCount;
    const main = deployment.spec.template?.spec?.containers?.[0];
    if (main !== undefined) {
      const ztunnelNs = values.pilot?.trustedZtunnelNamespace;
      if (ztunnelNs !== undefined) setEnv(main, 'CA_TRUSTED_NODE_ACCOUNTS', `${ztunnelNs}/ztunnel`);
      if (values.revision !== undefined && values.revision !== '') setEnv(main, 'REVISION', values.revision);
      // Upstream's waypoint template takes CA_ADDR from global.caAddress.
      if (values.global?.caAddress !== undefined) setEnv(main, 'WAYPOINT_CA_ADDR', values.global.caAddress);
    }
  }
  // Each revision's pods carry their revision, and its Deployment, Service and disruption budget
  // select only them (the manifests' selectors would span every revision's pods).
  const rev = target.revision === undefined || target.revision === '' ? undefined : target.revision;
  for (const o of objects) {
    const spec = (o as { spec?: Record<string, unknown> }).spec;
    if (spec === undefined) continue;
    if (o.kind === 'Deployment') {
      const w = spec as Workload & { selector?: { matchLabels?: Record<string, string> } };
      if (w.template !== undefined)
        w.template.metadata = {
          ...w.template.metadata,
          labels: { ...w.template.metadata?.labels, 'istio.io/rev': rev ?? 'default' },
        };
      // The ServiceAccount is suffixed with the revision like every other object.
      const pod = w.template?.spec;
      if (rev !== undefined && pod?.serviceAccountName !== undefined)
        pod.serviceAccountName = `${pod.serviceAccountName}-${rev}`;
      if (rev !== undefined)
        w.selector = { ...w.selector, matchLabels: { ...w.selector?.matchLabels, 'istio.io/rev': rev } };
    } else if (o.kind === 'Service') {
      const selector = spec['selector'] as Record<string, string> | undefined;
      spec['selector'] = { ...selector, 'istio.io/rev': rev ?? 'default' };
    } else if (o.kind === 'PodDisruptionBudget' && rev !== undefined) {
      const selector = spec['selector'] as { matchLabels?: Record<string, string> } | undefined;
      spec['selector'] = { ...selector, matchLabels: { ...selector?.matchLabels, 'istio.io/rev': rev } };
    }
  }
  // Role bindings name the service account and the role by their placed (suffixed) names.
  for (const o of objects) {
    const roleRef = (o as { roleRef?: { kind: string; name: string } }).roleRef;
    if (roleRef !== undefined) {
      const name =
        roleRef.kind === 'ClusterRole'
          ? roleRef.name.replaceAll(MANIFEST_NAMESPACE, target.namespace)
          : roleRef.name;
      roleRef.name = rev === undefined ? name : `${name}-${rev}`;
    }
    const subjects = (o as { subjects?: { kind: string; name: string; namespace?: string }[] }).subjects;
    for (const s of subjects ?? []) {
      if (s.kind !== 'ServiceAccount') continue;
      s.namespace = target.namespace;
      if (target.revision !== undefined && target.revision !== '') s.name = `${s.name}-${target.revision}`;
    }
  }
  return objects;
}

/** The cni-agent's objects for an IstioCNI. */
export function renderCni(
  manifests: readonly ManifestObject[],
  target: RenderTarget,
  values: CniValues,
): Obj[] {
  const objects = place(manifests, target);
  const ds = workload(objects, 'DaemonSet');
  if (ds !== undefined) applyPodValues(ds, values.global, values.cni, target.version);
  fixSubjects(objects, target.namespace);
  return objects;
}

/** ztunnel's objects for a ZTunnel. */
export function renderZtunnel(
  manifests: readonly ManifestObject[],
  target: RenderTarget,
  values: ZtunnelValues,
): Obj[] {
  const objects = place(manifests, target);
  const ds = workload(objects, 'DaemonSet');
  const z = values.ztunnel;
  if (ds?.spec?.template?.spec !== undefined) {
    applyPodValues(ds, values.global, z, target.version);
    const pod = ds.spec.template.spec;
    const main = pod.containers?.[0];
    const grace = z?.terminationGracePeriodSeconds;
    if (grace !== undefined) pod.terminationGracePeriodSeconds = grace;
    if (main !== undefined) {
      const istioNs = z?.istioNamespace ?? values.global?.istioNamespace ?? MANIFEST_NAMESPACE;
      const istiod = `https://istiod.${istioNs}.svc:15012`;
      setEnv(main, 'CA_ADDRESS', z?.caAddress ?? istiod);
      setEnv(main, 'XDS_ADDRESS', z?.xdsAddress ?? istiod);
      if (grace !== undefined) setEnv(main, 'TERMINATION_GRACE_PERIOD_SECONDS', String(grace));
      if (z?.logLevel !== undefined) setEnv(main, 'RUST_LOG', z.logLevel);
      const cluster = z?.multiCluster?.clusterName ?? values.global?.multiCluster?.clusterName;
      if (cluster !== undefined) setEnv(main, 'ISTIO_META_CLUSTER_ID', cluster);
    }
  }
  fixSubjects(objects, target.namespace);
  return objects;
}

function fixSubjects(objects: Obj[], namespace: string): void {
  for (const o of objects) {
    for (const s of (o as { subjects?: { kind: string; namespace?: string }[] }).subjects ?? []) {
      if (s.kind === 'ServiceAccount') s.namespace = namespace;
    }
  }
}

/**
 * Replaces container images by repository (`ambient-mesh/ztunnel` → `registry/ztunnel:2`), the
 * operator's OPERATOR_IMAGES map; applied after the version tags, so a mapped image wins.
 */
export function overrideImages<T extends ManifestObject>(
  objects: T[],
  images: Readonly<Record<string, string>> | undefined,
): T[] {
  if (images === undefined || Object.keys(images).length === 0) return objects;
  for (const o of objects) {
    const spec = (o as Obj).spec?.template?.spec;
    for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
      const repo = c.image?.replace(/:[^/:]+$/, '');
      const to = repo === undefined ? undefined : images[repo];
      if (to !== undefined) c.image = to;
    }
  }
  return objects;
}
