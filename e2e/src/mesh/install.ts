/**
 * The mesh install of the e2e harness: `@ambient-mesh/install` against the harness's cluster
 * (its client and nodes), re-exported under the names the scenarios use.
 */
import {
  installMesh as installMeshPackage,
  type InstallOptions,
  type MeshTarget,
} from '@ambient-mesh/install';

/**
 * `installMesh` with one istiod replica unless `istiodReplicas` says otherwise: the scenarios
 * written for a single istiod (rollout counts, `istioctl version`) keep it; `deploy/` runs two, and
 * the HA scenario asks for two (docs/operations.md#istiod-replicas).
 */
export function installMesh(
  target: MeshTarget,
  options: InstallOptions = {},
): ReturnType<typeof installMeshPackage> {
  return installMeshPackage(target, { istiodReplicas: 1, ...options });
}

export {
  uninstallMesh,
  meshStatus,
  describePods,
  withApprovalAnnotation,
  applyObjects,
  MESH_NAMESPACE,
} from '@ambient-mesh/install';
export type { MeshStatus, ComponentStatus, MeshTarget, InstallOptions } from '@ambient-mesh/install';
