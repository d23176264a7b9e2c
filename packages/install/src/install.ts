/**
 * Installing and removing the mesh on a cluster: server-side apply of the rendered manifests in
 * order (CRDs first, waited for Established), then waits for istiod Ready (its readiness probe is
 * `/ready`) and the cni-agent Ready on every node. ztunnel is waited for a bounded time; when it
 * is not Ready by then the returned status says so and why, instead of failing the install.
 * Every step and every long wait reports through `progress`.
 */
import type { KubeClient } from '@ambient-mesh/kube';
import type { Timers } from '@ambient-mesh/kube';
import {
  MESH_COMPONENTS,
  MESH_NAMESPACE,
  renderComponent,
  type ManifestObject,
  type RenderOptions,
} from './manifests.ts';
import {
  componentStatus,
  meshStatus,
  targetNodes,
  type ComponentName,
  type MeshStatus,
  type MeshTarget,
} from './status.ts';
import { waitUntil } from './wait.ts';
import { crdApplyDecision, withGatewayApiCrds, type LiveCrd } from './crd-guard.ts';

import { applyObjects } from './apply.ts';
import { removeAddons } from './addons.ts';

export { INSTALL_FIELD_MANAGER, applyObjects } from './apply.ts';

export interface InstallOptions extends RenderOptions {
  /** How long to wait for istiod and for the cni-agent (default 120 s each). */
  readonly timeoutMs?: number;
  /** How long to wait for ztunnel before reporting it not ready (default 60 s). */
  readonly ztunnelTimeoutMs?: number;
  /** One line per step, and now and then during long waits. */
  readonly progress?: (line: string) => void;
  readonly timers?: Timers;
  /** Between readiness checks (default 500 ms). */
  readonly intervalMs?: number;
  /**
   * The Gateway API CRDs to install instead of the repository's hand-written subset (e2e passes
   * the v1.4.1 experimental bundle). Either way an installed CRD is never downgraded.
   */
  readonly gatewayApiCrds?: readonly ManifestObject[];
}

interface CrdStatus {
  status?: { conditions?: { type: string; status: string }[] };
}

async function waitForComponent(
  client: KubeClient,
  name: ComponentName,
  want: number,
  timeoutMs: number,
  options: InstallOptions,
): Promise<void> {
  await waitUntil(
    `${name} Ready${want > 1 ? ` on ${want} nodes` : ''}`,
    async () => {
      const s = await componentStatus(client, name, want);
      return s.ready ? s : undefined;
    },
    {
      timeoutMs,
      intervalMs: options.intervalMs ?? 500,
      ...(options.timers === undefined ? {} : { timers: options.timers }),
      ...(options.progress === undefined ? {} : { onProgress: options.progress }),
    },
    async () => `${name}: ${(await componentStatus(client, name, want)).detail}`,
  );
}

/** The CRDs that may be applied: those that would downgrade an installed one are left out. */
async function crdsToApply(
  client: KubeClient,
  crds: readonly ManifestObject[],
  progress: (line: string) => void,
): Promise<ManifestObject[]> {
  const out: ManifestObject[] = [];
  for (const crd of crds) {
    const live = await client.find<LiveCrd>(await client.resources.objectPath(crd));
    const decision = crdApplyDecision(crd, live);
    if (decision.apply) out.push(crd);
    else progress(`keep the installed CRD ${crd.metadata.name}: ${decision.reason}`);
  }
  return out;
}

/** Installs the mesh and answers its status. */
export async function installMesh(target: MeshTarget, options: InstallOptions = {}): Promise<MeshStatus> {
  const progress = options.progress ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const { client } = target;
  const waits = {
    intervalMs: options.intervalMs ?? 500,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    onProgress: progress,
  };
  for (const component of MESH_COMPONENTS) {
    let objects = renderComponent(component, options);
    if (component === 'crds') {
      objects = await crdsToApply(client, withGatewayApiCrds(objects, options.gatewayApiCrds), progress);
    }
    progress(`apply ${component} (${objects.length} objects)`);
    await applyObjects(client, objects);
    if (component === 'crds') {
      await waitUntil(
        'CRDs established',
        async () => {
          for (const o of objects) {
            const crd = await client.get<CrdStatus>(await client.resources.objectPath(o));
            if (!crd.status?.conditions?.some(c => c.type === 'Established' && c.status === 'True'))
              return undefined;
          }
          return true;
        },
        { timeoutMs: 30_000, ...waits },
      );
    }
  }
  const n = (await targetNodes(target)).length;
  progress('waiting for istiod Ready (/ready)');
  await waitForComponent(client, 'istiod', 1, timeoutMs, options);
  progress(`waiting for the cni-agent Ready on ${n} nodes`);
  await waitForComponent(client, 'cni-agent', n, timeoutMs, options);
  const ztunnelTimeoutMs = options.ztunnelTimeoutMs ?? 60_000;
  progress(`waiting up to ${ztunnelTimeoutMs / 1000} s for ztunnel Ready`);
  await waitForComponent(client, 'ztunnel', n, ztunnelTimeoutMs, options).catch(() => undefined);
  return meshStatus(target);
}

/**
 * Removes the addons (`installAddons`) if present, then what `installMesh` applied, in reverse, waits for the mesh's pods and namespace to be
 * gone, and deletes the `istio-ca-root-cert` ConfigMaps istiod published in other namespaces.
 */
export async function uninstallMesh(
  target: MeshTarget,
  options: Pick<InstallOptions, 'progress' | 'deployRoot' | 'timeoutMs' | 'timers' | 'intervalMs'> = {},
): Promise<void> {
  const progress = options.progress ?? (() => undefined);
  const { client } = target;
  await removeAddons(target, { ...options, progress });
  const waits = {
    timeoutMs: options.timeoutMs ?? 120_000,
    intervalMs: options.intervalMs ?? 500,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    onProgress: progress,
  };
  for (const component of [...MESH_COMPONENTS].reverse()) {
    const objects = renderComponent(component, options).reverse();
    progress(`delete ${component}`);
    for (const o of objects) {
      if (o.kind === 'Namespace') continue; // last, once its pods are gone
      await client.delete(await client.resources.objectPath(o), { propagationPolicy: 'Background' });
    }
  }
  await waitUntil(
    'mesh pods gone',
    async () =>
      (await client.list(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`)).items.length === 0 ? true : undefined,
    waits,
  );
  const cms = await client.list<{ metadata: { name: string; namespace: string } }>('/api/v1/configmaps', {
    fieldSelector: 'metadata.name=istio-ca-root-cert',
  });
  for (const cm of cms.items) {
    await client.delete(`/api/v1/namespaces/${cm.metadata.namespace}/configmaps/istio-ca-root-cert`);
  }
  progress(`delete namespace ${MESH_NAMESPACE}`);
  await client.delete(`/api/v1/namespaces/${MESH_NAMESPACE}`);
  await waitUntil(
    `namespace ${MESH_NAMESPACE} gone`,
    async () =>
      (await client.find(`/api/v1/namespaces/${MESH_NAMESPACE}`)) === undefined ? true : undefined,
    waits,
  );
}
