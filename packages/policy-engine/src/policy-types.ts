/**
 * `security.istio.io/v1` AuthorizationPolicy and PeerAuthentication, as plain data after
 * validation (see `validate-authorization-policy.ts`, `validate-peer-authentication.ts`).
 * Optional lists are omitted rather than empty.
 */
import type {
  AuthorizationAction as CrdAuthorizationAction,
  AuthorizationPolicySpec as CrdAuthorizationPolicySpec,
  MtlsMode as CrdMtlsMode,
  PeerAuthenticationSpec,
  PolicyOperation,
  PolicyRule as CrdPolicyRule,
  PolicySource,
} from '@ambient-mesh/mesh-api';

/** `metadata` fields the engine reads; validation requires a name and a namespace. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** RFC 3339; the oldest PeerAuthentication wins within a level. */
  creationTimestamp?: string;
  generation?: number;
}

/**
 * The parts the CRD schema already guarantees are the generated CRD types of
 * `@ambient-mesh/mesh-api` (the input shape): a validated policy uses them unchanged. The types
 * below are the domain types: what validation adds to the CRD shape (a named, namespaced object
 * with a spec; a `from` with its source, a `to` with its operation, a CUSTOM provider's name).
 */
export type {
  MutualTls,
  PeerAuthenticationSpec,
  PolicyCondition,
  PolicyOperation,
  PolicySource,
  PolicyTargetReference,
  WorkloadSelector,
} from '@ambient-mesh/mesh-api';

export const AuthorizationAction = {
  ALLOW: 'ALLOW',
  DENY: 'DENY',
  AUDIT: 'AUDIT',
  CUSTOM: 'CUSTOM',
} as const satisfies { [A in CrdAuthorizationAction]: A };
export type AuthorizationAction = CrdAuthorizationAction;

/** One `rules[]` entry: `from` (any), `to` (any) and `when` (all) must all match. */
export interface PolicyRule extends Omit<CrdPolicyRule, 'from' | 'to'> {
  from?: { source: PolicySource }[];
  to?: { operation: PolicyOperation }[];
}

/** A validated `spec`: rules whose `from`/`to` entries are complete, a CUSTOM provider named. */
export interface AuthorizationPolicySpec extends Omit<CrdAuthorizationPolicySpec, 'provider' | 'rules'> {
  /** Only with CUSTOM: the extension provider. */
  provider?: { name: string };
  rules?: PolicyRule[];
}

/** A validated AuthorizationPolicy: named, namespaced, with a spec. */
export interface AuthorizationPolicy {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: AuthorizationPolicySpec;
}

export const MtlsMode = {
  UNSET: 'UNSET',
  DISABLE: 'DISABLE',
  PERMISSIVE: 'PERMISSIVE',
  STRICT: 'STRICT',
} as const satisfies { [M in CrdMtlsMode]: M };
export type MtlsMode = CrdMtlsMode;

/** A validated PeerAuthentication: named, namespaced, with a spec (port keys are port numbers). */
export interface PeerAuthentication {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: PeerAuthenticationSpec;
}

/** `ns/name`, the key policies are referenced by in ztunnel and in `Workload.authorization_policies`. */
export function policyKey(meta: { namespace: string; name: string }): string {
  return `${meta.namespace}/${meta.name}`;
}
