import { assertSupportedPlatform } from './platform.ts';

assertSupportedPlatform();

export { commandLine, netnsExecutor, netnsPrefix, spawnExecutor } from './command-executor.ts';
export type {
  CommandExecutor,
  CommandResult,
  NetnsTarget,
  SpawnExecutorOptions,
} from './command-executor.ts';
export {
  ChainName,
  DEFAULT_PROBE_SNAT_V4,
  DEFAULT_PROBE_SNAT_V6,
  MARK_MASK,
  Mark,
  PolicyRoute,
  Port,
  Priority,
  ProbeSet,
  TableName,
} from './constants.ts';
export { canonicalJson, diffRuleset, parseNftListing } from './drift.ts';
export type { Drift, DriftKind } from './drift.ts';
export {
  CommandFailedError,
  InvalidRuleOptionsError,
  NftErrorCode,
  NftUnsupportedPlatformError,
  UnexpectedOutputError,
} from './errors.ts';
export { hostProbeRuleset, renderProbeSetUpdate } from './host-probe-ruleset.ts';
export { inpodRuleset } from './inpod-ruleset.ts';
export { NftClient } from './nft-client.ts';
export { assertSupportedPlatform } from './platform.ts';
export {
  applyPolicyRouting,
  policyRoutingApplyCommands,
  policyRoutingRemoveCommands,
  removePolicyRouting,
  verifyPolicyRouting,
} from './policy-routing.ts';
export type { IpCommand, PolicyRoutingOptions } from './policy-routing.ts';
export { POD_SYSCTLS, applyPodSysctls, removePodSysctls, verifyPodSysctls } from './pod-sysctls.ts';
export type { PodSysctl } from './pod-sysctls.ts';
export { HostProbeSnat, InpodRedirection, renderRuleset } from './redirection.ts';
export type { RenderedRuleset } from './redirection.ts';
export { resolveHostProbeOptions, resolveInpodOptions } from './redirection-options.ts';
export type {
  HostProbeOptions,
  InpodRuleOptions,
  KubeletMatch,
  ResolvedHostProbeOptions,
  ResolvedInpodOptions,
} from './redirection-options.ts';
export { expectedObjects, renderJsonBatch, renderRemoveScript, renderScript } from './ruleset-model.ts';
export type { BaseChainHook, ChainSpec, RuleSpec, Ruleset, SetSpec, TableSpec } from './ruleset-model.ts';
