/**
 * `security.istio.io/v1` AuthorizationPolicy and PeerAuthentication, as plain data after
 * validation (see `validate-authorization-policy.ts`, `validate-peer-authentication.ts`).
 * Optional lists are omitted rather than empty.
 */

/** `metadata` fields the engine reads. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** RFC 3339; the oldest PeerAuthentication wins within a level. */
  creationTimestamp?: string;
  generation?: number;
}

/** `istio.type.v1beta1.WorkloadSelector`. */
export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

/** `istio.type.v1beta1.PolicyTargetReference`. */
export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export const AuthorizationAction = {
  ALLOW: 'ALLOW',
  DENY: 'DENY',
  AUDIT: 'AUDIT',
  CUSTOM: 'CUSTOM',
} as const;
export type AuthorizationAction = (typeof AuthorizationAction)[keyof typeof AuthorizationAction];

/** `rules[].from[].source`. */
export interface PolicySource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

/** `rules[].to[].operation`. */
export interface PolicyOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

/** `rules[].when[]`. */
export interface PolicyCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

/** One `rules[]` entry: `from` (any), `to` (any) and `when` (all) must all match. */
export interface PolicyRule {
  from?: { source: PolicySource }[];
  to?: { operation: PolicyOperation }[];
  when?: PolicyCondition[];
}

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  /** Defaults to ALLOW. */
  action?: AuthorizationAction;
  /** Only with CUSTOM: the extension provider. */
  provider?: { name: string };
  rules?: PolicyRule[];
}

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
} as const;
export type MtlsMode = (typeof MtlsMode)[keyof typeof MtlsMode];

export interface MutualTls {
  mode?: MtlsMode;
}

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: MutualTls;
  /** Keyed by port number (1-65535) as a decimal string. */
  portLevelMtls?: Record<string, MutualTls>;
}

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
