/** Server-side apply as the installer: one field manager for everything it applies. */
import type { KubeClient } from '@ambient-mesh/kube';
import type { ManifestObject } from './manifests.ts';

/** The field manager of everything the installer applies. */
export const INSTALL_FIELD_MANAGER = 'ambient-mesh-installer';

/** Server-side apply of objects, in order, as the installer's field manager (taking over conflicts). */
export async function applyObjects(client: KubeClient, objects: readonly ManifestObject[]): Promise<void> {
  for (const o of objects) await client.apply(o, { fieldManager: INSTALL_FIELD_MANAGER, force: true });
}
