// istiod as a library: the composition root and the pure WDS generation, for tests, benchmarks
// and the e2e harness. The executable is `main.ts`.

// Composition
export { build, startIstiod } from './app.ts';
export type { AppDeps, Bound, IstiodDeps, RunningIstiod } from './app.ts';
export { loadConfig, parseFlags, parseGoDurationMs, ENV, FLAGS, LogFormat } from './config.ts';
export type { Config, ConfigSources, ListenAddress, ServiceAccountRef } from './config.ts';
// Logging comes from @ambient-mesh/runtime; re-exported for existing consumers (e2e, benchmarks).
export { createLogger, formatText, Logs, silentLogger } from '@ambient-mesh/runtime';
export type { Logger, LogsOptions as LoggerOptions } from '@ambient-mesh/runtime';
export { createMetrics } from './metrics.ts';
export type { IstiodMetrics, MetricsOptions } from './metrics.ts';
export { debugRoutes } from './http/debug-routes.ts';
export type { DebugSources } from './http/debug-routes.ts';

// WDS generation
export { WdsIndex, TypeUrls, ObjectKinds } from './wds/wds-index.ts';
export type { ChangeSet, ObjectKind, WdsIndexOptions, WdsResource, WdsTypeUrl } from './wds/wds-index.ts';
export { buildPodWorkload, podUid, podWorkloadName, canonicalService, nodeLocality } from './wds/workload.ts';
export type { WorkloadInputs } from './wds/workload.ts';
export { buildService, serviceHostname, serviceResourceName, loadBalancing } from './wds/service.ts';
export type { ServiceInputs } from './wds/service.ts';
export { resolveWaypoint, waypointRefFor } from './wds/waypoint.ts';

// Gateway API side: GatewayClasses, gateway Deployments and status, waypoint binding
export {
  bindWaypoint,
  waypointBoundCondition,
  WaypointBindingReason,
  WAYPOINT_BOUND,
} from './gateway/binding.ts';
export type { BindingKind, BindingLookup, WaypointBinding, WaypointRef } from './gateway/binding.ts';
export { WaypointBindingIndex } from './gateway/waypoint-bindings.ts';
export type { WaypointBindings } from './gateway/waypoint-bindings.ts';
export { GatewayController, GATEWAY_FIELD_MANAGER } from './gateway/controller.ts';
export type { GatewayKubeApi, GatewayInformerFactory } from './gateway/controller.ts';
export type { GatewayDeps } from './gateway/gateway-side.ts';
export { compileAuthorizationPolicyObject } from './wds/policies.ts';
export type { CompiledPolicy, PolicyCompiler, PolicyIssue } from './wds/policies.ts';
export { renderForDebug } from './wds/debug-view.ts';
export { contentVersion } from './wds/resource-version.ts';

// xDS and CA
export { XdsServer } from './xds/delta-server.ts';
export { WaypointIndex, WaypointKinds, isWaypointKind } from './waypoint/waypoint-index.ts';
export type { WaypointChange, WaypointIndexOptions, WaypointKind } from './waypoint/waypoint-index.ts';
export type { WaypointBindingSource } from './waypoint/binding.ts';
export { WaypointPushQueue, waypointOfProxy } from './waypoint/serving.ts';
export type { WaypointBatch } from './waypoint/serving.ts';
export { EnvoyType, EnvoyTypeUrls, decodeEnvoy, encodeEnvoy } from './waypoint/envoy-protos.ts';
export type {
  XdsServerOptions,
  ConnectionStatus,
  ResourceSource,
  TypeSyncStatus,
} from './xds/delta-server.ts';
export { parseNode, ProxyTypes } from './xds/node-info.ts';
export type { ProxyInfo, ProxyType } from './xds/node-info.ts';
export { PushQueue, systemTimers } from './xds/push-queue.ts';
export type { PushBatch, PushQueueOptions, Timers } from './xds/push-queue.ts';
export { startGrpcServer, Tls13ServerCredentials } from './xds/grpc-server.ts';
export type { RunningGrpcServer, ServingCredentials } from './xds/grpc-server.ts';
export { servingDnsNames } from './ca/ca-material.ts';
export { CaService } from './ca/ca-service.ts';
export type { PodLookup, CaServiceOptions } from './ca/ca-service.ts';
export { loadMeshCa, CA_SECRET_NAME } from './ca/ca-bootstrap.ts';
export type { MeshCa, SecretStore } from './ca/ca-bootstrap.ts';
export { RootCertPublisher, ROOT_CERT_CONFIGMAP } from './ca/root-cert-publisher.ts';
export type { ConfigMapStore } from './ca/root-cert-publisher.ts';
export { authenticateBearer } from './auth/token-review.ts';
export type { TokenReviewer, TokenReviewStatus, CallerIdentity } from './auth/token-review.ts';

// Kubernetes
export { KubeWatcher, istiodWatchedKinds, kubeInformerFactory } from './kube/informers.ts';
export { kubeDependencies } from './kube/kube-dependencies.ts';
export {
  loadKubeConfig,
  kubeTokenReviewer,
  kubeSecretStore,
  kubeConfigMapStore,
  kubeStatusPatcher,
} from './kube/kube-api.ts';
export type { InformerFactory, WatchedKind } from './kube/informers.ts';

export {
  writePolicyStatus,
  policyConditions,
  PolicyStatusWriter,
  isTransientStatusError,
} from './kube/policy-status.ts';
export type { StatusPatcher, PolicyCondition, PolicyStatusWriterOptions } from './kube/policy-status.ts';

// Errors
export {
  ConfigError,
  NodeMetadataError,
  AuthenticationError,
  CertificateTtlError,
  MeshConfigError,
  CertificateRequestError,
  CaMaterialError,
} from './errors.ts';
