/**
 * The bridge between Kubernetes policy objects and `@ambient-mesh/policy-engine`: validation
 * (every problem with its field path), compilation to ztunnel `Authorization`, and selection of
 * the selector-scoped policies a workload lists (docs/protocols.md#authorization-conversion, docs/protocols.md#peer-authentication).
 */
import { CrdResource } from '@ambient-mesh/mesh-api';
import type { security } from '@ambient-mesh/xds-types';
import {
  compileAuthorizationPolicy,
  compilePeerAuthentications,
  effectivePeerAuthenticationKeys,
  peerAuthenticationsForWorkload,
  validateAuthorizationPolicy,
  validatePeerAuthentication,
  WireScope,
  type PeerAuthentication as ValidPeerAuthentication,
} from '@ambient-mesh/policy-engine';
import type { AuthorizationPolicy, KubeObject, PeerAuthentication, Pod } from '../kube/objects.ts';

/** A problem in a policy, with the field path it concerns (e.g. `spec.rules[0].from[1].source.ipBlocks[0]`). */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
}

/** The outcome of compiling one AuthorizationPolicy object. */
export interface CompiledPolicy {
  /** The resource for ztunnel, or undefined when the policy is invalid or not for ztunnel. */
  readonly authorization: security.AuthorizationInit | undefined;
  /** `spec.selector.matchLabels` when the policy is selector-scoped. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** Validation errors: when non-empty the policy is dropped and nothing else is disturbed. */
  readonly errors: readonly PolicyIssue[];
  /** Status conditions from compilation (accepted, trimmed, skipped), for logs and status. */
  readonly conditions: readonly {
    readonly reason: string;
    readonly status: string;
    readonly message: string;
  }[];
}

export type PolicyCompiler = (policy: AuthorizationPolicy, rootNamespace: string) => CompiledPolicy;

/** Keeps only what the policy engine validates: informers add server fields it does not know. */
function policyInput(
  obj: KubeObject & { readonly spec?: unknown },
  kind: typeof CrdResource.AuthorizationPolicy.kind | typeof CrdResource.PeerAuthentication.kind,
): Record<string, unknown> {
  const m = obj.metadata ?? {};
  const ts = m.creationTimestamp;
  const metadata: Record<string, unknown> = { name: m.name, namespace: m.namespace };
  if (m.labels !== undefined) metadata.labels = m.labels;
  if (m.annotations !== undefined) metadata.annotations = m.annotations;
  if (ts !== undefined) metadata.creationTimestamp = ts instanceof Date ? ts.toISOString() : ts;
  if (m.generation !== undefined) metadata.generation = m.generation;
  const { group, version } = CrdResource[kind];
  return { apiVersion: `${group}/${version}`, kind, metadata, spec: obj.spec ?? {} };
}

/** Validates and compiles an AuthorizationPolicy with the policy engine. Never throws. */
export const compileAuthorizationPolicyObject: PolicyCompiler = (policy, rootNamespace) => {
  const validated = validateAuthorizationPolicy(policyInput(policy, 'AuthorizationPolicy'));
  if (!validated.ok) {
    return { authorization: undefined, selector: undefined, errors: validated.errors, conditions: [] };
  }
  const compiled = compileAuthorizationPolicy(validated.value, { rootNamespace });
  const labels = validated.value.spec.selector?.matchLabels;
  return {
    authorization: compiled.authorization,
    selector: labels === undefined || Object.keys(labels).length === 0 ? undefined : labels,
    errors: [],
    conditions: compiled.conditions,
  };
};

/** Validates a PeerAuthentication; invalid ones are ignored by the index (and reported). */
export function validatePeerAuthenticationObject(
  pa: PeerAuthentication,
): { ok: true; value: ValidPeerAuthentication } | { ok: false; errors: readonly PolicyIssue[] } {
  const res = validatePeerAuthentication(policyInput(pa, 'PeerAuthentication'));
  return res.ok ? { ok: true, value: res.value } : { ok: false, errors: res.errors };
}

/** True when a selector-scoped compiled policy applies to a pod (same namespace, or the root namespace). */
export function policySelectsPod(
  compiled: CompiledPolicy,
  policyNamespace: string,
  pod: Pod,
  rootNamespace: string,
): boolean {
  if (compiled.authorization?.scope !== WireScope.WORKLOAD_SELECTOR || compiled.selector === undefined)
    return false;
  const podNs = pod.metadata?.namespace ?? '';
  if (policyNamespace !== podNs && policyNamespace !== rootNamespace) return false;
  const labels = pod.metadata?.labels ?? {};
  return Object.entries(compiled.selector).every(([k, v]) => labels[k] === v);
}

/** `ns/name` keys a pod lists because of PeerAuthentication (static STRICT, converted port-level). */
export function peerAuthenticationKeysForPod(
  all: readonly ValidPeerAuthentication[],
  pod: Pod,
  rootNamespace: string,
): string[] {
  if (all.length === 0) return [];
  const applicable = peerAuthenticationsForWorkload(
    all,
    { namespace: pod.metadata?.namespace ?? '', labels: pod.metadata?.labels ?? {} },
    { rootNamespace },
  );
  return effectivePeerAuthenticationKeys(applicable, { rootNamespace });
}

/** Every Authorization derived from the PeerAuthentications, keyed `ns/name`. */
export function peerAuthenticationAuthorizations(
  all: readonly ValidPeerAuthentication[],
  rootNamespace: string,
): Map<string, security.AuthorizationInit> {
  const out = new Map<string, security.AuthorizationInit>();
  for (const a of compilePeerAuthentications(all, { rootNamespace })) out.set(`${a.namespace}/${a.name}`, a);
  return out;
}
