export { Port, ZTUNNEL_INPOD_PORTS } from './ports.ts';
export {
  Label,
  Annotation,
  DataplaneMode,
  WaypointFor,
  GatewayClassName,
  GATEWAY_CONTROLLER_NAME,
  GATEWAY_MANAGED_BY_MESH,
  REDIRECTION_ENABLED,
  WellKnown,
} from './labels.ts';
export { ProxyType, nodeId, parseNodeId } from './node-id.ts';
export type { NodeIdParts, NodeIdParseResult } from './node-id.ts';
export { TYPE_URL_PREFIX, TypeUrl, DEBUG_TYPE_PREFIX, DebugType } from './type-urls.ts';
export {
  SHORT_TYPE,
  isDebugClient,
  orderTypes,
  parseSyncz,
  proxyStatusRows,
  shortType,
  syncState,
} from './sync-status.ts';
export type { ProxyStatusRow, SyncResource, SyncState, SyncStatusEntry } from './sync-status.ts';
export {
  TRAFFIC_LABELS,
  UNKNOWN,
  Reporter,
  trafficLabels,
  MetricName,
  REQUEST_DURATION_BUCKETS_MS,
  ConnectionSecurityPolicy,
} from './metrics.ts';
export type { TrafficLabelName, TrafficLabels } from './metrics.ts';
// CRD types, generated from deploy/crds by scripts/generate.ts.
export type { ObjectMeta, OwnerReference, ManagedFieldsEntry } from './kube-object.ts';
export { CrdResource } from './generated/crd-resources.ts';
export type { CrdKind } from './generated/crd-resources.ts';
export type {
  AuthorizationAction,
  AuthorizationPolicy,
  AuthorizationPolicySpec,
  AuthorizationProvider,
  ClaimToHeader,
  JwtHeader,
  JwtRule,
  MtlsMode,
  MutualTls,
  PeerAuthentication,
  PeerAuthenticationSpec,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicyRuleFrom,
  PolicyRuleTo,
  PolicySource,
  PolicyTargetReference,
  RequestAuthentication,
  RequestAuthenticationSpec,
  WorkloadSelector,
} from './generated/security-istio-io.ts';
export type {
  DestinationRule,
  DestinationRuleSpec,
  EnvoyFilter,
  EnvoyFilterSpec,
  IstioGateway,
  IstioGatewaySpec,
  ProxyConfig,
  ProxyConfigSpec,
  ServiceEntry,
  ServiceEntryLocation,
  ServiceEntryPort,
  ServiceEntryResolution,
  ServiceEntrySpec,
  ServiceEntryWorkloadSelector,
  Sidecar,
  SidecarSpec,
  VirtualService,
  VirtualServiceSpec,
  WorkloadEntry,
  WorkloadEntrySpec,
  WorkloadGroup,
  WorkloadGroupSpec,
} from './generated/networking-istio-io.ts';
export type { Telemetry, TelemetrySpec } from './generated/telemetry-istio-io.ts';
export type { WasmPlugin, WasmPluginSpec } from './generated/extensions-istio-io.ts';
export type {
  AllowedRoutes,
  Gateway,
  GatewayClass,
  GatewayClassSpec,
  GatewayListener,
  GatewaySpec,
  GatewaySpecAddress,
  GatewayStatusAddress,
  LabelSelector,
} from './generated/gateway-networking-k8s-io.ts';
export type {
  DumpGateway,
  DumpWorkload,
  DumpEndpoint,
  DumpService,
  DumpStringMatch,
  DumpPolicyMatch,
  DumpPolicy,
  DumpCert,
  DumpCertificate,
} from './ztunnel-config-dump.ts';
export {
  TELEMETRY_ATTRIBUTES,
  TELEMETRY_MAP_ATTRIBUTES,
  evaluateTelemetryCondition,
  evaluateTelemetryValue,
  parseTelemetryCondition,
  parseTelemetryValue,
} from './telemetry-expression.ts';
export type {
  AttributeLookup,
  CompareOp,
  ExpressionResult,
  TelemetryCondition,
  TelemetryValue,
} from './telemetry-expression.ts';
