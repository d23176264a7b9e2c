/**
 * AuthorizationPolicy → ztunnel `istio.security.Authorization`, as istiod 1.27's
 * `convertAuthorizationPolicy` does it, plus the status condition istiod writes for ztunnel.
 */
import { Annotation, WellKnown } from '@ambient-mesh/mesh-api';
import { parseCidr } from './ip-cidr.ts';
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
} from './policy-types.ts';
import { toStringMatch } from './string-match.ts';
import { L4_WHEN_KEYS } from './validate-authorization-policy.ts';
import type { security } from './wire.ts';
import { WireAction, WireScope, emptyMatch } from './wire.ts';

/** The namespace whose selector-less policies are mesh-wide. */
export const DEFAULT_ROOT_NAMESPACE = WellKnown.systemNamespace;
/** An AuthorizationPolicy annotated `"true"` with this is evaluated nowhere and not sent to ztunnel. */
export const DRY_RUN_ANNOTATION = Annotation.dryRun;

export interface CompileOptions {
  /** Mesh root namespace (mesh config `rootNamespace`); defaults to `istio-system`. */
  readonly rootNamespace?: string;
}

/** Why a policy was (or was not) sent to ztunnel. */
export const ZtunnelReason = {
  /** Sent as written. */
  ACCEPTED: 'Accepted',
  /** Sent, but HTTP attributes were dropped, or not sent because the action is CUSTOM/AUDIT. */
  UNSUPPORTED_VALUE: 'UnsupportedValue',
  /** Not sent: it targets a waypoint or gateway through targetRef(s). */
  TARGET_REFS: 'TargetRefs',
  /** Not sent: annotated `istio.io/dry-run: "true"`. */
  DRY_RUN: 'DryRun',
} as const;
export type ZtunnelReason = (typeof ZtunnelReason)[keyof typeof ZtunnelReason];

/** A status condition for the policy, shaped like the ones istiod writes. */
export interface StatusCondition {
  readonly type: 'ZtunnelAccepted';
  readonly status: 'True' | 'False';
  readonly reason: ZtunnelReason;
  readonly message: string;
}

export interface CompiledAuthorization {
  /** The resource for ztunnel, or undefined when the policy is not sent (see `conditions`). */
  readonly authorization: security.Authorization | undefined;
  /** What to write into the policy's status: why it was sent, trimmed or skipped. */
  readonly conditions: readonly StatusCondition[];
  /** HTTP-only attributes found, sorted (e.g. `methods`, `request.headers[x-user]`). */
  readonly httpAttributes: readonly string[];
}

const HTTP_RULE_MESSAGE =
  'ztunnel does not support HTTP attributes (found: %s). In ambient mode you must use a waypoint proxy to enforce HTTP rules.';
const DENY_BOILERPLATE =
  'DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive than requested.';
const ALLOW_BOILERPLATE =
  'Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.';

function condition(status: 'True' | 'False', reason: ZtunnelReason, message: string): StatusCondition {
  return { type: 'ZtunnelAccepted', status, reason, message };
}

function toPorts(values: readonly string[] | undefined): number[] {
  const out: number[] = [];
  for (const v of values ?? []) {
    const n = Number(v);
    if (v.length > 0 && Number.isInteger(n) && n >= 0 && n <= 65535) out.push(n);
  }
  return out;
}

function toAddresses(values: readonly string[] | undefined): security.Address[] {
  const out: security.Address[] = [];
  for (const v of values ?? []) {
    const a = parseCidr(v);
    if (a !== undefined) out.push(a);
  }
  return out;
}

function toStringMatches(values: readonly string[] | undefined): security.StringMatch[] {
  return (values ?? []).map(toStringMatch);
}

/** `ns/sa`, or a bare `sa` in the policy's namespace. The split is on the first `/` only. */
function toServiceAccounts(
  values: readonly string[] | undefined,
  namespace: string,
): security.ServiceAccountMatch[] {
  return (values ?? []).map(v => {
    const slash = v.indexOf('/');
    return slash < 0
      ? { namespace, serviceAccount: v }
      : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
  });
}

function httpOperations(op: PolicyOperation): string[] {
  const keys = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
  return keys.filter(k => (op[k]?.length ?? 0) > 0);
}

function httpSources(src: PolicySource): string[] {
  const keys = ['remoteIpBlocks', 'notRemoteIpBlocks', 'requestPrincipals', 'notRequestPrincipals'] as const;
  return keys.filter(k => (src[k]?.length ?? 0) > 0);
}

function whenMatch(w: PolicyCondition): security.Match {
  const m = emptyMatch();
  switch (w.key) {
    case 'source.namespace':
      m.namespaces = toStringMatches(w.values);
      m.notNamespaces = toStringMatches(w.notValues);
      break;
    case 'source.principal':
      m.principals = toStringMatches(w.values);
      m.notPrincipals = toStringMatches(w.notValues);
      break;
    case 'source.ip':
      m.sourceIps = toAddresses(w.values);
      m.notSourceIps = toAddresses(w.notValues);
      break;
    case 'destination.port':
      m.destinationPorts = toPorts(w.values);
      m.notDestinationPorts = toPorts(w.notValues);
      break;
    case 'destination.ip':
      m.destinationIps = toAddresses(w.values);
      m.notDestinationIps = toAddresses(w.notValues);
      break;
    default:
      // An HTTP-only key leaves the Match empty; ztunnel skips empty Matches.
      break;
  }
  return m;
}

/**
 * Converts one rule: a clause for `to` (Matches OR'ed), one for `from`, and one per `when`, all
 * AND'ed. An ALLOW rule holding an HTTP attribute is dropped (undefined).
 */
function convertRule(
  action: security.Action,
  rule: PolicyRule,
  namespace: string,
  http: Set<string>,
): security.Rule | undefined {
  let foundHttp = false;
  const toMatches = (rule.to ?? []).map(({ operation: op }) => {
    const problems = httpOperations(op);
    if (problems.length > 0) {
      foundHttp = true;
      for (const p of problems) http.add(p);
    }
    const m = emptyMatch();
    m.destinationPorts = toPorts(op.ports);
    m.notDestinationPorts = toPorts(op.notPorts);
    return m;
  });
  const fromMatches = (rule.from ?? []).map(({ source: src }) => {
    const problems = httpSources(src);
    if (problems.length > 0) {
      foundHttp = true;
      for (const p of problems) http.add(p);
    }
    const m = emptyMatch();
    m.sourceIps = toAddresses(src.ipBlocks);
    m.notSourceIps = toAddresses(src.notIpBlocks);
    m.namespaces = toStringMatches(src.namespaces);
    m.notNamespaces = toStringMatches(src.notNamespaces);
    m.serviceAccounts = toServiceAccounts(src.serviceAccounts, namespace);
    m.notServiceAccounts = toServiceAccounts(src.notServiceAccounts, namespace);
    m.principals = toStringMatches(src.principals);
    m.notPrincipals = toStringMatches(src.notPrincipals);
    return m;
  });
  const clauses: security.Clause[] = [];
  if (toMatches.length > 0) clauses.push({ matches: toMatches });
  if (fromMatches.length > 0) clauses.push({ matches: fromMatches });
  for (const w of rule.when ?? []) {
    if (!L4_WHEN_KEYS.includes(w.key)) {
      foundHttp = true;
      http.add(w.key);
    }
    clauses.push({ matches: [whenMatch(w)] });
  }
  if (action === WireAction.ALLOW && foundHttp) return undefined;
  return { clauses };
}

/** Scope of a policy sent to ztunnel: selector → WORKLOAD_SELECTOR; none → NAMESPACE, or GLOBAL in the root namespace. */
export function authorizationScope(policy: AuthorizationPolicy, rootNamespace: string): security.Scope {
  if (policy.spec.selector !== undefined) return WireScope.WORKLOAD_SELECTOR;
  return policy.metadata.namespace === rootNamespace ? WireScope.GLOBAL : WireScope.NAMESPACE;
}

/**
 * Compiles a validated AuthorizationPolicy for ztunnel. Returns the `Authorization` to send (or
 * none) and the status condition saying why.
 */
export function compileAuthorizationPolicy(
  policy: AuthorizationPolicy,
  options: CompileOptions = {},
): CompiledAuthorization {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const { spec, metadata } = policy;
  if (spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0) {
    return {
      authorization: undefined,
      conditions: [
        condition(
          'False',
          ZtunnelReason.TARGET_REFS,
          'not sent to ztunnel: the policy has targetRef(s), so the waypoint or gateway it targets enforces it',
        ),
      ],
      httpAttributes: [],
    };
  }
  if (metadata.annotations?.[DRY_RUN_ANNOTATION] === 'true') {
    return {
      authorization: undefined,
      conditions: [
        condition(
          'False',
          ZtunnelReason.DRY_RUN,
          `not sent to ztunnel: annotated ${DRY_RUN_ANNOTATION}: "true"`,
        ),
      ],
      httpAttributes: [],
    };
  }
  const actionName = spec.action ?? 'ALLOW';
  if (actionName !== 'ALLOW' && actionName !== 'DENY') {
    return {
      authorization: undefined,
      conditions: [
        condition(
          'False',
          ZtunnelReason.UNSUPPORTED_VALUE,
          `ztunnel does not support the ${actionName} action`,
        ),
      ],
      httpAttributes: [],
    };
  }
  const action = actionName === 'DENY' ? WireAction.DENY : WireAction.ALLOW;
  const http = new Set<string>();
  const rules: security.Rule[] = [];
  for (const rule of spec.rules ?? []) {
    const converted = convertRule(action, rule, metadata.namespace, http);
    if (converted !== undefined) rules.push(converted);
  }
  const authorization: security.Authorization = {
    name: metadata.name,
    namespace: metadata.namespace,
    scope: authorizationScope(policy, rootNamespace),
    action,
    rules,
  };
  const httpAttributes = [...http].sort();
  if (httpAttributes.length === 0) {
    return {
      authorization,
      conditions: [condition('True', ZtunnelReason.ACCEPTED, 'attached to ztunnel')],
      httpAttributes,
    };
  }
  const message = `${HTTP_RULE_MESSAGE.replace('%s', httpAttributes.join(', '))} ${
    action === WireAction.DENY ? DENY_BOILERPLATE : ALLOW_BOILERPLATE
  }`;
  return {
    authorization,
    conditions: [condition('True', ZtunnelReason.UNSUPPORTED_VALUE, message)],
    httpAttributes,
  };
}
