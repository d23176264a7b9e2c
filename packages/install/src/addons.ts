/**
 * The optional addons beside the mesh (deploy/prometheus, deploy/console): server-side apply in
 * order, then a bounded wait for each addon's Deployment to have a Ready pod, with progress lines
 * and a timeout error that says which pods are not ready and why. `removeAddons` deletes them
 * (their ClusterRoles and bindings too, which deleting the namespace would leave).
 */
import { describePods, isPodReady } from './status.ts';
import type { MeshTarget } from './status.ts';
import { ADDONS, MESH_NAMESPACE, renderComponent, type Addon, type RenderOptions } from './manifests.ts';
import type { PodView } from './pod.ts';
import { applyObjects } from './apply.ts';
import { waitUntil } from './wait.ts';
import { InstallError, InstallErrorCode } from './errors.ts';
import type { Timers } from '@ambient-mesh/kube';

export interface AddonOptions extends RenderOptions {
  /** Which addons (default: all of {@link ADDONS}, in that order). */
  readonly addons?: readonly Addon[];
  /** How long to wait for each addon's pod to be Ready (default 120 s). */
  readonly timeoutMs?: number;
  readonly progress?: (line: string) => void;
  readonly timers?: Timers;
  readonly intervalMs?: number;
}

/** Label selector of an addon's pods (deploy/<addon>: `app: <addon>`). */
export const addonSelector = (addon: Addon): string => `app=${addon}`;

async function addonPods(target: MeshTarget, addon: Addon): Promise<PodView[]> {
  return (
    await target.client.list<PodView>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
      labelSelector: addonSelector(addon),
    })
  ).items;
}

/** Applies the addons and waits until each has a Ready pod; throws InstallError(Timeout) if not. */
export async function installAddons(target: MeshTarget, options: AddonOptions = {}): Promise<void> {
  const progress = options.progress ?? (() => undefined);
  const addons = options.addons ?? ADDONS;
  for (const addon of addons) {
    const objects = renderComponent(addon, options);
    progress(`apply ${addon} (${objects.length} objects)`);
    await applyObjects(target.client, objects);
  }
  for (const addon of addons) {
    progress(`waiting for ${addon} Ready`);
    await waitUntil(
      `${addon} Ready`,
      async () => ((await addonPods(target, addon)).some(isPodReady) ? true : undefined),
      {
        timeoutMs: options.timeoutMs ?? 120_000,
        intervalMs: options.intervalMs ?? 500,
        ...(options.timers === undefined ? {} : { timers: options.timers }),
        onProgress: progress,
      },
      async () => {
        const pods = await addonPods(target, addon);
        return pods.length === 0
          ? `no ${addon} pod yet (kubectl -n ${MESH_NAMESPACE} describe deploy/${addon})`
          : `${addon}: ${describePods(pods)}`;
      },
    );
  }
}

/**
 * Deletes the addons' objects (absent ones are skipped), last addon first. A deploy root without
 * an addon's folder has nothing of it to delete.
 */
export async function removeAddons(
  target: MeshTarget,
  options: Pick<AddonOptions, 'addons' | 'deployRoot' | 'progress'> = {},
): Promise<void> {
  for (const addon of [...(options.addons ?? ADDONS)].reverse()) {
    let objects;
    try {
      objects = renderComponent(addon, options);
    } catch (e) {
      if (e instanceof InstallError && e.code === InstallErrorCode.ManifestsMissing) continue;
      throw e;
    }
    let deleted = 0;
    for (const o of objects.reverse()) {
      const gone = await target.client.delete(await target.client.resources.objectPath(o), {
        propagationPolicy: 'Background',
      });
      if (gone) deleted++;
    }
    if (deleted > 0) options.progress?.(`delete ${addon}`);
  }
}
