export { PolicyValidationError } from './errors.ts';
export type { FieldError } from './errors.ts';
export { AuthorizationAction, MtlsMode, policyKey } from './policy-types.ts';
export type {
  AuthorizationPolicy,
  AuthorizationPolicySpec,
  MutualTls,
  ObjectMeta,
  PeerAuthentication,
  PeerAuthenticationSpec,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
  PolicyTargetReference,
  WorkloadSelector,
} from './policy-types.ts';
export type { ValidationResult } from './validation-support.ts';
export {
  L4_WHEN_KEYS,
  parseAuthorizationPolicy,
  validateAuthorizationPolicy,
} from './validate-authorization-policy.ts';
export { parsePeerAuthentication, validatePeerAuthentication } from './validate-peer-authentication.ts';
export {
  DEFAULT_ROOT_NAMESPACE,
  DRY_RUN_ANNOTATION,
  ZtunnelReason,
  authorizationScope,
  compileAuthorizationPolicy,
} from './compile-authorization-policy.ts';
export type {
  CompileOptions,
  CompiledAuthorization,
  StatusCondition,
} from './compile-authorization-policy.ts';
export {
  STATIC_STRICT_POLICY_NAME,
  compilePeerAuthentications,
  convertPeerAuthentication,
  convertedPeerAuthenticationName,
  effectivePeerAuthenticationKeys,
  peerAuthenticationsForWorkload,
  staticStrictAuthorization,
} from './compile-peer-authentication.ts';
export { authorize, authorizationMatches } from './l4-evaluator.ts';
export type { ConnectionContext, L4Decision, L4Reason } from './l4-evaluator.ts';
export { authorizeHttp, httpPolicyMatches } from './l7-evaluator.ts';
export type { HttpRequestContext, L7Decision, L7Options, L7Reason } from './l7-evaluator.ts';
export { PathNormalization, normalizePath, pathMatches } from './path-normalization.ts';
export type { NormalizedPath } from './path-normalization.ts';
export { PolicyIndex } from './policy-index.ts';
export type { PolicyIndexOptions, WorkloadPolicies, WorkloadPolicyRef } from './policy-index.ts';
export { selectorMatches } from './label-selector.ts';
export { parseSpiffeIdentity } from './spiffe-identity.ts';
export type { SpiffeIdentity } from './spiffe-identity.ts';
export { cidrContains, parseCidr, parseIp } from './ip-cidr.ts';
export { toStringMatch } from './string-match.ts';
export { WireAction, WireScope, emptyMatch } from './wire.ts';
