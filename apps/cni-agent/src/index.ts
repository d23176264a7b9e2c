// Public surface of the cni-agent app (for the e2e harness and embedding).
export { build, startAgent } from './app.ts';
export type { Agent, AgentOverrides, AppDeps, Bound } from './app.ts';
export {
  DEFAULTS,
  ENV,
  FLAGS,
  LogFormat,
  PLUGIN_EVENT_SOCKET,
  loadConfig,
  loadPluginEnvironment,
  parseFlags,
} from './config.ts';
export type { Config } from './config.ts';
export {
  Annotation,
  DataplaneMode,
  EnrolmentReason,
  Label,
  RedirectionState,
  decideEnrolment,
  parseBoolAnnotation,
  ruleOptionsFor,
} from './enrolment.ts';
export type { EnrolmentContext, EnrolmentDecision, GlobalRuleSettings } from './enrolment.ts';
export {
  CniConfigError,
  CniErrorCode,
  KubeApiError,
  NetnsUnavailableError,
  PluginEventError,
  RBAC_MANIFEST,
  RulesFailedError,
  ZdsMessageTooLargeError,
  ZdsProtocolError,
  ZdsTimeoutError,
} from './errors.ts';
export { KubeClient, loadKubeConfig, toNamespaceView, toPodView } from './kube-client.ts';
export type { KubeEventHandlers } from './kube-client.ts';
export { podKey } from './kube-types.ts';
export type { NamespaceView, PodView } from './kube-types.ts';
// Logging, timers and the ops server come from @ambient-mesh/runtime; re-exported for consumers.
export { Logs, createLogger, silentLogger, startOpsServer, systemTimers } from '@ambient-mesh/runtime';
export type {
  Logger,
  LogsOptions as LoggerOptions,
  OpsServer,
  TimerHandle,
  Timers,
} from '@ambient-mesh/runtime';
export { AgentMetrics, FailureReason } from './metrics.ts';
export { FileNetnsLocator, MemoryNetnsLocator } from './netns-cache.ts';
export type { NetnsLocator } from './netns-cache.ts';
export { parsePluginEvent, startPluginEventServer } from './plugin-event-server.ts';
export type { PluginEventServer } from './plugin-event-server.ts';
export { addonNetnsOpener, nftHostProbe, nftPodRules } from './pod-rules.ts';
export type { HostProbeSettings } from './pod-rules.ts';
export { Reconciler } from './reconciler.ts';
export type {
  CniAddEvent,
  EnrolledPod,
  HostProbeRules,
  KubeApi,
  NetnsOpener,
  PodRules,
  ReconcileHints,
  ReconcileOutcome,
  ReconcilerOptions,
  ZdsApi,
} from './reconciler.ts';
export {
  SHUTDOWN_VERDICT_FILE,
  clearShutdownVerdict,
  decideShutdown,
  writeShutdownVerdict,
} from './shutdown.ts';
export type { OwnerState, ShutdownVerdict } from './shutdown.ts';
export { listenZds } from './zds/zds-listener.ts';
export type { ZdsListener } from './zds/zds-listener.ts';
export { ZDS_ACK_TIMEOUT_MS, ZDS_HELLO_TIMEOUT_MS, ZDS_MAX_MESSAGE, ZdsServer } from './zds/zds-server.ts';
export type {
  SnapshotReport,
  WorkloadSource,
  ZdsConnectionHandle,
  ZdsInboundMessage,
  ZdsPeer,
  ZdsResult,
  ZdsServerOptions,
  ZdsWorkload,
} from './zds/zds-server.ts';
export {
  CniCommand,
  CniErrorCodes,
  SUPPORTED_CNI_VERSIONS,
  eventIpsOf,
  parseCniArgs,
} from './plugin/cni-protocol.ts';
export type { CniError, PluginEvent, PluginEventIp } from './plugin/cni-protocol.ts';
export { DEFAULT_AGENT_RUN_DIR, PLUGIN_EVENT_PATH, runPlugin } from './plugin/cni-plugin.ts';
export type { AgentReply, PluginIo, PluginOutput } from './plugin/cni-plugin.ts';
