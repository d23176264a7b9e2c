// Composition root
export { build, ReadinessTask } from './app.ts';
export type { AppDeps, Bound } from './app.ts';

// Configuration and logging
export {
  DEFAULT_INPOD_UDS,
  DEFAULT_ISTIOD_ADDRESS,
  DEFAULT_ROOT_CA_PATH,
  DEFAULT_TOKEN_PATH,
  Env,
  INPOD_PACKET_MARK,
  LOG_LEVELS,
  LogFormat,
  loadConfig,
  parseDurationSeconds,
  xdsNodeId,
  xdsNodeMetadata,
} from './config.ts';
export type { Config, ListenAddress, LogLevel, OrigSrcMode } from './config.ts';
// Logging, readiness and timers come from @ambient-mesh/runtime; re-exported for existing consumers.
export { Backoff, Logs, Readiness, isLogLevel, systemTimers, textDestination } from '@ambient-mesh/runtime';
export type { BackoffOptions, Logger, LogsOptions, TimerHandle, Timers } from '@ambient-mesh/runtime';
export { adminRoutes, configDump } from './admin-server.ts';
export { decimalSerial, dumpPolicy, dumpService, dumpWorkload } from './config-dump.ts';
export type { DumpWorkloadState } from './config-dump.ts';
// The dump's wire shapes live in @ambient-mesh/mesh-api (shared with its readers).
export type {
  DumpCertificate,
  DumpEndpoint,
  DumpPolicy,
  DumpService,
  DumpWorkload,
} from '@ambient-mesh/mesh-api';
export type { AdminSources } from './admin-server.ts';

// Errors
export {
  BindError,
  CaRequestError,
  ConfigError,
  ResourceInvalidError,
  TokenUnreadableError,
  WorkloadUnavailableError,
  XdsStreamError,
  ZdsProtocolError,
  ZtunnelErrorCode,
} from './errors.ts';

// State
export { createProxyState, StateMutator } from './state/proxy-state.ts';
export type {
  Endpoint,
  ProxyStateReader,
  StateChange,
  StateListener,
  StateSnapshot,
} from './state/proxy-state.ts';
export { convertAddress, convertService, convertWorkload, spiffeIdentity } from './state/convert-address.ts';
export { convertAuthorization } from './state/convert-policy.ts';
export type { Converted } from './state/validation.ts';
export type {
  Address,
  Authorization,
  GatewayAddress,
  PolicyMatch,
  Service,
  StringMatch,
  Workload,
} from './state/types.ts';

// Control plane clients
export { XdsClient as DeltaXdsClient } from '@ambient-mesh/xds';
export type {
  DeltaClientStream as DeltaStream,
  DeltaStreamFactory,
  XdsClientOptions as DeltaXdsClientOptions,
  IncomingResource,
  Rejection as RejectedResource,
  XdsClientObserver,
  ResourceHandler as XdsResourceHandler,
} from '@ambient-mesh/xds';
export { addressHandler, authorizationHandler } from './xds/handlers.ts';
export {
  callMetadata,
  createGrpcClient,
  controlPlaneDeltaStreams as deltaStreamFactory,
} from '@ambient-mesh/xds';
export type { CallIdentity, GrpcTarget } from '@ambient-mesh/xds';
export { CaClient } from './identity/ca-client.ts';
export type { CaClientOptions } from './identity/ca-client.ts';
export { CertManager } from './identity/cert-manager.ts';
export type { CertDumpEntry, CertificateDump, CertManagerOptions } from './identity/cert-manager.ts';

// ZDS
export { WorkloadStateManager } from './zds/state-manager.ts';
export type {
  NetnsHandle,
  ProxyPhase,
  RunningProxy,
  WorkloadInfo,
  WorkloadProxyFactory,
  WorkloadStateEntry,
  ZdsReply,
  ZdsRequest,
} from './zds/state-manager.ts';
export { ZDS_MAX_MESSAGE, ZdsClient } from './zds/zds-client.ts';
export type { ZdsConnection, ZdsConnector, ZdsMessage } from './zds/zds-client.ts';
export { netnsZdsConnector } from './zds/netns-connector.ts';

// Ports, metrics, access log
export {
  ISTIO_COMPAT_VERSION,
  TRAFFIC_LABELS,
  ZTUNNEL_VERSION,
  ZtunnelMetrics,
  trafficLabels,
  xdsTerminationReason,
} from './metrics.ts';
export type {
  Reporter,
  ResponseFlags,
  TrafficLabelName,
  TrafficLabels,
  ZtunnelMetricsOptions,
} from './metrics.ts';
export { AccessLog } from './access-log.ts';
export type { ConnectionEnds, ConnectionResult, Direction } from './access-log.ts';

// Per-pod proxy
export {
  InPodProxy,
  INBOUND_HBONE_PORT,
  INBOUND_PLAINTEXT_PORT,
  OUTBOUND_PORT,
} from './proxy/inpod-proxy.ts';
export type { InPodProxyOptions } from './proxy/inpod-proxy.ts';
export type { PodConnections, PodInputs, ProxyInputs } from './proxy/proxy-inputs.ts';
export { Outbound } from './proxy/outbound.ts';
export { InboundPassthrough } from './proxy/inbound-passthrough.ts';
export { createInbound } from './proxy/inbound.ts';
export type { PodInbound } from './proxy/inbound.ts';
export { ztunnelConnectionSink } from './proxy/connection-sink.ts';
export type { ZtunnelConnection } from './proxy/connection-sink.ts';
export { hboneIdentity, podSecureContext } from './proxy/secure-context.ts';
export { inPodProxyFactory } from './proxy/inpod-factory.ts';
export { LocalWorkload } from './proxy/local-workload.ts';
export type { LocalState, LocalWorkloadOptions } from './proxy/local-workload.ts';
export { guessInboundService } from './proxy/inbound-service.ts';
export type { InPodFactoryOptions, PodSocketsFactory } from './proxy/inpod-factory.ts';
export { loopbackPodSockets, UPSTREAM_CONNECT_TIMEOUT_MS, whenConnected } from './proxy/pod-sockets.ts';
export type { LoopbackPodOptions, PodConnectRequest, PodSockets } from './proxy/pod-sockets.ts';
export { netnsPodSockets } from './proxy/netns-pod-sockets.ts';
export type { NetnsPodSocketsOptions } from './proxy/netns-pod-sockets.ts';
export {
  eligibleEndpoints,
  HBONE_PORT,
  isLoopback,
  PROXY_PORTS,
  routeOutbound,
  targetPort,
} from './proxy/route.ts';
export type { Destination, OutboundRoute, RouteOptions } from './proxy/route.ts';
export { authorizeConnection, toWireAuthorization } from './proxy/rbac.ts';
export type { ConnectionContext, L4Decision } from './proxy/rbac.ts';
export { connectionLabels } from './proxy/traffic-labels.ts';
export type { ConnectionParties } from './proxy/traffic-labels.ts';

// DNS proxy (docs/dns.md)
export {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_TCP_IDLE_TIMEOUT_MS,
  DNS_PROXY_PORT,
  DnsProxy,
} from './dns/dns-proxy.ts';
export type { DnsProxyOptions } from './dns/dns-proxy.ts';
export { loopbackDnsSockets, netnsDnsSockets } from './dns/dns-sockets.ts';
export type { NetnsDnsSocketsOptions } from './dns/dns-sockets.ts';
export { DnsForwarder, DnsForwardError } from './dns/forwarder.ts';
export type { DnsSockets } from './dns/forwarder.ts';
export {
  CLASSIC_UDP_PAYLOAD,
  MAX_QUERY_BYTES,
  MAX_UDP_PAYLOAD,
  encodeResponse,
  parseQuery,
} from './dns/message.ts';
export type { DnsDropReason, DnsProtocol, DnsQuery, ParsedQuery } from './dns/message.ts';
export { DNS_DROPPED_METRIC, DNS_LABELS, DnsMetrics } from './dns/metrics.ts';
export type { DnsDropMetricReason, DnsRequestLabels } from './dns/metrics.ts';
export { parseResolvConf } from './dns/resolv-conf.ts';
export type { Nameserver, UpstreamResolvers } from './dns/resolv-conf.ts';
export {
  DNS_ANSWER_TTL_SECONDS,
  kubeFqdns,
  normalizeName,
  podSearchDomains,
  resolveQuestion,
  resolverQueries,
  wildcardsOf,
} from './dns/resolve.ts';
export type {
  DnsAnswer,
  DnsClient,
  DnsDecision,
  DnsQuestion,
  DnsRecordType,
  DnsStateView,
  ForwardReason,
  ResolveContext,
} from './dns/resolve.ts';
