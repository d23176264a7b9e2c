import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { repoRoot } from '../kubelet/images.ts';

/** One Kubernetes object of a manifest, as parsed. */
export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [key: string]: unknown;
}

/** The mesh's manifest dirs under `deploy/`, in install order. */
export const MESH_COMPONENTS = ['crds', 'istiod', 'cni-agent', 'ztunnel'] as const;
export type MeshComponent = (typeof MESH_COMPONENTS)[number];

export function deployDir(): string {
  return join(repoRoot(), 'deploy');
}

/** The objects of every `*.yaml` in `deploy/<component>/` (file name order). */
export function loadManifests(component: MeshComponent, root = deployDir()): ManifestObject[] {
  const dir = join(root, component);
  const files = readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .sort();
  const out: ManifestObject[] = [];
  for (const f of files) {
    const docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map(d => d.toJS() as unknown);
    for (const doc of docs) {
      if (doc === null || doc === undefined) continue;
      const o = doc as Partial<ManifestObject>;
      if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || !o.metadata?.name) {
        throw new ClusterError(
          ClusterErrorCode.Unsupported,
          `${join(dir, f)}: a document lacks apiVersion, kind or metadata.name`,
        );
      }
      out.push(o as ManifestObject);
    }
  }
  return out;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'GatewayClass',
]);

/** Plural resource names of the kinds the mesh's manifests use. */
const PLURALS: Readonly<Record<string, string>> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  Service: 'services',
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Pod: 'pods',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  Deployment: 'deployments',
  DaemonSet: 'daemonsets',
  CustomResourceDefinition: 'customresourcedefinitions',
};

/** The REST path of one object (`/api/v1/namespaces/ns/services/name`). */
export function objectPath(o: Pick<ManifestObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const plural = PLURALS[o.kind];
  if (plural === undefined) {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `kind ${o.kind} is not known to the mesh installer; add its plural to e2e/src/mesh/manifests.ts`,
    );
  }
  const group = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const ns = CLUSTER_SCOPED.has(o.kind) ? '' : `/namespaces/${o.metadata.namespace ?? 'default'}`;
  return `${group}${ns}/${plural}/${o.metadata.name}`;
}
