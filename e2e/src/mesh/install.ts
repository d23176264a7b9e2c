/**
 * The mesh install of the e2e harness: `@ambient-mesh/install` against the harness's cluster
 * (its client and nodes), re-exported under the names the scenarios use.
 */
export {
  installMesh,
  uninstallMesh,
  meshStatus,
  describePods,
  withApprovalAnnotation,
  applyObjects,
  MESH_NAMESPACE,
} from '@ambient-mesh/install';
export type { MeshStatus, ComponentStatus, MeshTarget, InstallOptions } from '@ambient-mesh/install';
