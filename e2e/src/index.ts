export { startCluster, lastLogsDir } from './cluster.ts';
export type { Cluster, ClusterNode, StartClusterOptions } from './cluster.ts';
export { startKindCluster, dockerAvailable } from './kind/kind-provider.ts';
export type { KindCluster, KindClusterOptions } from './kind/kind-provider.ts';
export { ClusterError, ClusterErrorCode } from './errors.ts';
// The harness talks to its cluster through @ambient-mesh/kube; re-exported for scripts and benchmarks.
export { KubeClient, KubeApiError } from '@ambient-mesh/kube';
export type { KubeList, KubeObject, WatchEventType, RequestOptions } from '@ambient-mesh/kube';
export { runCommand, waitFor } from './exec.ts';
export type { CommandRunner, RunOptions, RunResult } from './exec.ts';
export { clusterLayout, nodeLayout, podNetnsName, apiserverUrl, NAME_PREFIX } from './layout.ts';
export type { ClusterIpFamily, ClusterIpv6Layout, ClusterLayout, NodeLayout } from './layout.ts';
export { ensureBinaries, K8S_VERSION, ETCD_VERSION } from './binaries.ts';
export type { Binaries } from './binaries.ts';
export { reapCluster, leftovers } from './reaper.ts';
export type { ReapReport, ClusterState } from './reaper.ts';
export { nodeCniConfig, CniRunner } from './network/cni.ts';
export type { CniPluginConfig, CniNetworkConfig, CniResult } from './network/cni.ts';
export { loadImageMap, defaultImagesFile } from './kubelet/images.ts';
export type { ImageEntry, ImageMap } from './kubelet/images.ts';
export { DeltaXdsClient, ZTUNNEL_TYPE_URLS } from './xds-client/delta-client.ts';
export type {
  DeltaXdsClientOptions,
  XdsResourceEntry,
  XdsResourceState,
  XdsResponseRecord,
} from './xds-client/delta-client.ts';
export { ztunnelNode, ztunnelNodeId } from './xds-client/node.ts';
export type { ZtunnelNodeOptions } from './xds-client/node.ts';
export { normalizeSnapshot, snapshotToJson, diffNormalized, ipToString } from './xds-client/normalize.ts';
export type {
  NormalizedSnapshot,
  NormalizedObject,
  NormalizedValue,
  NormalizeOptions,
  SnapshotDifference,
} from './xds-client/normalize.ts';
export { XdsClientError, XdsClientErrorCode } from './xds-client/errors.ts';
export {
  ensureUpstreamIstio,
  upstreamIstioAt,
  upstreamInstallScriptPath,
  parseBuildInfo,
} from './upstream/install.ts';
export type { UpstreamIstio } from './upstream/install.ts';
export { applyCrds, readCrds } from './upstream/crds.ts';
export type { AppliedCrds } from './upstream/crds.ts';
export {
  startUpstreamIstiod,
  prepareIstioSystem,
  createZtunnelIdentity,
  mintServiceAccountToken,
  freeLoopbackPort,
  COMPATIBILITY_1_27_ENV,
  ISTIO_SYSTEM,
} from './upstream/istiod.ts';
export type {
  UpstreamIstiod,
  StartUpstreamIstiodOptions,
  IstiodPorts,
  ZtunnelIdentity,
} from './upstream/istiod.ts';
export { installMesh, uninstallMesh, meshStatus, MESH_NAMESPACE } from './mesh/install.ts';
export type { MeshStatus, ComponentStatus, MeshTarget, InstallOptions } from './mesh/install.ts';
export {
  parsePrometheus,
  mtlsConnections,
  ztunnelPods,
  ztunnelMetrics,
  ztunnelConfigDump,
  getInNetns,
  inNetnsCommand,
  ZTUNNEL_ADMIN_PORT,
  ZTUNNEL_STATS_PORT,
} from './mesh/observe.ts';
export type { MetricSample, ZtunnelPod } from './mesh/observe.ts';
export {
  waypointGateway,
  weightedRoute,
  readyWaypoint,
  requestBatch,
  waypointMetrics,
  waypointRequests,
  GATEWAY_PATH,
  HTTPROUTE_PATH,
  WAYPOINT_STATS_PORT,
} from './mesh/waypoint.ts';
export type { Backend, BatchResult, WaypointPod } from './mesh/waypoint.ts';
export { ensureGatewayApiCrds, gatewayApiCrdObjects } from './upstream-tools/gateway-api.ts';
// The operator on a harness cluster (its cluster test, benchmark and `npm run up`).
export {
  OPERATOR_NAMESPACE,
  ambientCrs,
  condition as sailCondition,
  installMeshWithOperator,
  installOperator,
  readiness as sailReadiness,
  sailPath,
  uninstallMeshWithOperator,
  waitReady as waitSailReady,
} from './operator/operator-install.ts';
export type { OperatorMeshOptions, SailCr } from './operator/operator-install.ts';
