/**
 * The library face of `@ambient-mesh/cli`: the program builder, the context, the exit codes and
 * errors, the dump decoder and the pure formatters each command uses. The bin is `main.ts`.
 */
export { buildProgram, run, CLI_VERSION } from './program.ts';
export type { GlobalFlags } from './program.ts';
export { createContext } from './context.ts';
export type { CommandContext, ContextParts } from './context.ts';
export { connectCluster, requireNamespace } from './cluster.ts';
export type { Cluster, ClusterFlags } from './cluster.ts';
export { readEnv } from './config.ts';
export type { CliEnv } from './config.ts';
export { CliError, CliErrorCode, ExitCode, exitCodeFor, describeError } from './errors.ts';
export { renderTable, renderData, parseOutputFormat, OUTPUT_FORMATS } from './output.ts';
export type { OutputFormat } from './output.ts';
export { createProgress, silentProgress } from './progress.ts';
export type { Progress, ProgressSink } from './progress.ts';
export { completionScript, completionTable, SHELLS } from './completion.ts';
export type { Shell } from './completion.ts';
export { portForwardGetter, portForwardRequester } from './cluster.ts';
export type { PortForwardGetOptions, PodHttpRequest, PodForward } from './cluster.ts';
export type { PodHttpAnswer } from '@ambient-mesh/kube';
export { decodeZtunnelDump, parseZtunnelDump } from './ztunnel-dump.ts';
export type {
  ZtunnelDump,
  DumpWorkload,
  DumpService,
  DumpEndpoint,
  DumpPolicy,
  DumpCertificate,
  DumpCert,
  DumpWorkloadState,
  DumpConnection,
} from './ztunnel-dump.ts';
export {
  ZTUNNEL_CONFIG_SECTIONS,
  formatSection,
  sectionData,
  workloadRows,
  serviceRows,
  policyRows,
  certificateRows,
  connectionRows,
  waypointName,
  selectZtunnels,
  mergeDumps,
  serialHex,
  loggingRequest,
  formatLogAnswer,
} from './commands/ztunnel-config.ts';
export type { ZtunnelConfigSection, ZtunnelFilter } from './commands/ztunnel-config.ts';
export {
  waypointGateway,
  formatWaypointList,
  formatWaypointStatus,
  isProgrammed,
  gatewaysPath,
} from './commands/waypoint.ts';
export type { GatewayObject, WaypointSpec } from './commands/waypoint.ts';
export { redirectionProgress, meshCandidate, formatPods } from './commands/dataplane.ts';
export type { PodLike, RedirectionProgress } from './commands/dataplane.ts';
export { explainAuthz, formatExplanation, parseTarget } from './commands/authz-explain.ts';
export type {
  Explanation,
  ExplainInput,
  ConsideredPolicy,
  AuthzSource,
  AuthzDestination,
} from './commands/authz-explain.ts';
export { pollUntil, parseDuration } from './wait.ts';
export type { PollResult, PollOptions } from './wait.ts';
export { precheckFindings, formatFindings, GATEWAY_API_CRDS, INSTALL_ACCESS } from './commands/precheck.ts';
export type { Finding, FindingLevel, PrecheckInput, CrdInfo, AccessResult } from './commands/precheck.ts';
export { analyze, formatMessages, AnalyzerCode } from './commands/analyze.ts';
export type { Snapshot, AnalyzerMessage } from './commands/analyze.ts';
