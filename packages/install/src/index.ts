export { installMesh, uninstallMesh, applyObjects, INSTALL_FIELD_MANAGER } from './install.ts';
export type { InstallOptions } from './install.ts';
export { installAddons, removeAddons, addonSelector } from './addons.ts';
export type { AddonOptions } from './addons.ts';
export {
  ADDONS,
  MESH_COMPONENTS,
  MESH_NAMESPACE,
  OPERATOR_SETS,
  defaultDeployRoot,
  loadManifests,
  renderComponent,
  CNI_NOT_READY_TAINT,
  withApprovalAnnotation,
} from './manifests.ts';
export type { Addon, ManifestObject, ManifestSet, MeshComponent, RenderOptions } from './manifests.ts';
export {
  meshStatus,
  componentStatus,
  describePods,
  isPodReady,
  meshPods,
  targetNodes,
  COMPONENT_SELECTORS,
} from './status.ts';
export type { MeshStatus, ComponentStatus, ComponentName, MeshTarget } from './status.ts';
export {
  ztunnelPods,
  ztunnelMetrics,
  ztunnelConfigDump,
  apiserverPodGetter,
  ZTUNNEL_ADMIN_PORT,
  ZTUNNEL_STATS_PORT,
} from './ztunnel.ts';
export type { ZtunnelPod, PodHttpGet } from './ztunnel.ts';
export type { PodView, ContainerStateView } from './pod.ts';
export { parsePrometheus, mtlsConnections } from './prometheus.ts';
export type { MetricSample } from './prometheus.ts';
export { waitUntil } from './wait.ts';
export type { WaitOptions } from './wait.ts';
export {
  crdApplyDecision,
  withGatewayApiCrds,
  BUNDLE_VERSION_ANNOTATION,
  GATEWAY_API_GROUP,
} from './crd-guard.ts';
export type { CrdDecision, LiveCrd } from './crd-guard.ts';
export { InstallError, InstallErrorCode } from './errors.ts';
