// The steps every reconciler shares on a CR and the objects it owns: the finalizer, the status
// write (only when it changed), and the API path of a rendered object.
import type { KubeClient } from '@ambient-mesh/kube';
import { MergePatch, knownResourceType, resourcePath } from '@ambient-mesh/kube';
import type { ManifestObject } from '@ambient-mesh/install';
import { FINALIZER, sailPath, type SailKind, type SailObject, type SailStatus } from './resources.ts';

/** The API path of a rendered object; undefined for a type the client does not know. */
export function objectPath(o: ManifestObject): string | undefined {
  const type = knownResourceType(o.apiVersion, o.kind);
  if (type === undefined) return undefined;
  const meta = o.metadata as { name: string; namespace?: string };
  return resourcePath(type, {
    name: meta.name,
    ...(type.namespaced && meta.namespace !== undefined ? { namespace: meta.namespace } : {}),
  });
}

/** Adds the operator's finalizer when the CR lacks it (optimistic on resourceVersion). */
export async function ensureFinalizer(
  client: KubeClient,
  kind: SailKind,
  cr: SailObject<unknown>,
): Promise<void> {
  const finalizers = cr.metadata.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return;
  await client.request('PATCH', sailPath(kind, cr.metadata.name), {
    body: {
      metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: cr.metadata.resourceVersion },
    },
    contentType: MergePatch,
  });
}

/** Removes the operator's finalizer, letting the apiserver finish the CR's deletion. */
export async function releaseFinalizer(
  client: KubeClient,
  kind: SailKind,
  cr: SailObject<unknown>,
): Promise<void> {
  const finalizers = (cr.metadata.finalizers ?? []).filter(f => f !== FINALIZER);
  await client.request('PATCH', sailPath(kind, cr.metadata.name), {
    body: { metadata: { finalizers, resourceVersion: cr.metadata.resourceVersion } },
    contentType: MergePatch,
  });
}

/** Deletes each object (background propagation); answers how many were there. */
export async function deleteObjects(client: KubeClient, objects: readonly ManifestObject[]): Promise<number> {
  let deleted = 0;
  for (const o of objects) {
    const path = objectPath(o);
    if (path !== undefined && (await client.delete(path, { propagationPolicy: 'Background' }))) deleted += 1;
  }
  return deleted;
}

/** Writes the status subresource when `status` differs from what the CR carries. */
export async function writeStatus(
  client: KubeClient,
  kind: SailKind,
  cr: SailObject<unknown>,
  status: SailStatus,
): Promise<void> {
  if (JSON.stringify(status) === JSON.stringify(cr.status)) return;
  await client.request('PATCH', `${sailPath(kind, cr.metadata.name)}/status`, {
    body: { status },
    contentType: MergePatch,
  });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
