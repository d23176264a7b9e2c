/**
 * PeerAuthentication in ambient, as istiod 1.27 converts it: ztunnel receives only
 * `Authorization` resources, so STRICT becomes a reference to a static DENY policy, and
 * port-level mTLS becomes a per-workload DENY policy. Precedence: the oldest policy wins within a
 * level; mesh (root namespace, no selector) → namespace → workload; UNSET inherits.
 */
import { DEFAULT_ROOT_NAMESPACE } from './compile-authorization-policy.ts';
import type { CompileOptions } from './compile-authorization-policy.ts';
import { selectorMatches } from './label-selector.ts';
import type { MutualTls, PeerAuthentication } from './policy-types.ts';
import type { security } from './wire.ts';
import { WireAction, WireScope, emptyMatch } from './wire.ts';

/** Name of the static STRICT policy, in the root namespace (`_` keeps it apart from Kubernetes names). */
export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';

/** The name a port-level PeerAuthentication gets as a ztunnel `Authorization`. */
export function convertedPeerAuthenticationName(name: string): string {
  return `converted_peer_authentication_${name}`;
}

function denyWithoutIdentity(ports?: number[]): security.Match {
  const m = emptyMatch();
  m.notPrincipals = [{ presence: {}, matchType: 'presence' }];
  if (ports !== undefined) m.destinationPorts = ports;
  return m;
}

/** "Deny any connection without a peer identity", referenced by workloads under effective STRICT. */
export function staticStrictAuthorization(
  rootNamespace: string = DEFAULT_ROOT_NAMESPACE,
): security.Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: WireScope.WORKLOAD_SELECTOR,
    action: WireAction.DENY,
    rules: [{ clauses: [{ matches: [denyWithoutIdentity()] }] }],
  };
}

const isStrict = (m: MutualTls | undefined): boolean => m?.mode === 'STRICT';
const isUnset = (m: MutualTls | undefined): boolean => m?.mode === undefined || m.mode === 'UNSET';
const isPermissive = (m: MutualTls | undefined): boolean => m?.mode === 'PERMISSIVE';
const isDisable = (m: MutualTls | undefined): boolean => m?.mode === 'DISABLE';

function timestamp(pa: PeerAuthentication): number {
  const t =
    pa.metadata.creationTimestamp === undefined ? Number.NaN : Date.parse(pa.metadata.creationTimestamp);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** The oldest policy (first in input order on a tie; no timestamp counts as oldest). */
function oldest(list: readonly PeerAuthentication[]): PeerAuthentication | undefined {
  let best: PeerAuthentication | undefined;
  for (const pa of list) if (best === undefined || timestamp(pa) < timestamp(best)) best = pa;
  return best;
}

function hasLabels(pa: PeerAuthentication): boolean {
  return Object.keys(pa.spec.selector?.matchLabels ?? {}).length > 0;
}

function sortedPorts(pa: PeerAuthentication): [number, MutualTls][] {
  return Object.entries(pa.spec.portLevelMtls ?? {})
    .map(([p, m]): [number, MutualTls] => [Number(p), m])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * Converts one workload PeerAuthentication with port-level mTLS into its DENY policy, given the
 * effective namespace-level and mesh-level policies. Returns undefined when nothing needs sending:
 * root-namespace or selector-less policies, no port-level settings, or a STRICT policy whose ports
 * are all STRICT (the static STRICT policy covers it).
 */
export function convertPeerAuthentication(
  pa: PeerAuthentication,
  namespacePolicy: PeerAuthentication | undefined,
  meshPolicy: PeerAuthentication | undefined,
  options: CompileOptions = {},
): security.Authorization | undefined {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const ports = sortedPorts(pa);
  if (pa.metadata.namespace === rootNamespace || pa.spec.selector === undefined || ports.length === 0) {
    return undefined;
  }
  const mtls = pa.spec.mtls;
  const nsMtls = namespacePolicy?.spec.mtls;
  const meshMtls = meshPolicy?.spec.mtls;
  const clauses: security.Clause[] = [];
  const rules: security.Rule[] = [];
  if (isStrict(mtls)) clauses.push({ matches: [denyWithoutIdentity()] });
  let foundNonStrictPort = false;
  for (const [port, portMtls] of ports) {
    if (isStrict(portMtls)) {
      const parentStrict =
        isStrict(mtls) ||
        (isUnset(mtls) && namespacePolicy !== undefined && isStrict(nsMtls)) ||
        ((namespacePolicy === undefined || isUnset(nsMtls)) &&
          meshPolicy !== undefined &&
          isStrict(meshMtls));
      if (parentStrict) continue; // the parent policy already enforces it
      rules.push({ clauses: [{ matches: [denyWithoutIdentity([port])] }] });
    } else if (isPermissive(portMtls) || isDisable(portMtls)) {
      if (isPermissive(mtls) || isDisable(mtls)) continue;
      if (
        isUnset(mtls) &&
        ((namespacePolicy !== undefined && !isStrict(nsMtls)) ||
          (namespacePolicy === undefined && meshPolicy !== undefined && !isStrict(meshMtls)) ||
          (namespacePolicy === undefined && meshPolicy === undefined))
      ) {
        continue; // not STRICT anywhere above: nothing to exempt
      }
      foundNonStrictPort = true;
      const exempt = emptyMatch();
      exempt.notDestinationPorts = [port];
      clauses.push({ matches: [exempt] });
    }
  }
  if (isStrict(mtls) && !foundNonStrictPort) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;
  const mergeStrict =
    (meshPolicy !== undefined &&
      isStrict(meshMtls) &&
      (namespacePolicy === undefined || isUnset(nsMtls) || isStrict(nsMtls))) ||
    (namespacePolicy !== undefined && isStrict(nsMtls));
  if (mergeStrict && foundNonStrictPort) clauses.push({ matches: [denyWithoutIdentity()] });
  if (clauses.length > 0) rules.push({ clauses });
  return {
    name: convertedPeerAuthenticationName(pa.metadata.name),
    namespace: pa.metadata.namespace,
    scope: WireScope.WORKLOAD_SELECTOR,
    action: WireAction.DENY,
    rules,
  };
}

/**
 * Every `Authorization` istiod derives from the cluster's PeerAuthentications: the converted
 * port-level policies, plus the static STRICT policy when at least one PeerAuthentication exists.
 */
export function compilePeerAuthentications(
  all: readonly PeerAuthentication[],
  options: CompileOptions = {},
): security.Authorization[] {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const out: security.Authorization[] = [];
  const levelPolicy = (ns: string): PeerAuthentication | undefined =>
    oldest(all.filter(p => p.metadata.namespace === ns && p.spec.selector === undefined));
  const meshPolicy = levelPolicy(rootNamespace);
  for (const pa of all) {
    if (pa.metadata.namespace === rootNamespace || pa.spec.selector === undefined) continue;
    const converted = convertPeerAuthentication(pa, levelPolicy(pa.metadata.namespace), meshPolicy, options);
    if (converted !== undefined) out.push(converted);
  }
  if (all.length > 0) out.push(staticStrictAuthorization(rootNamespace));
  return out;
}

/** The PeerAuthentications that apply to a workload: mesh-level, its namespace's, and selector matches. */
export function peerAuthenticationsForWorkload(
  all: readonly PeerAuthentication[],
  workload: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> },
  options: CompileOptions = {},
): PeerAuthentication[] {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  return all.filter(pa => {
    if (pa.metadata.namespace === rootNamespace && pa.spec.selector === undefined) return true;
    if (pa.metadata.namespace !== workload.namespace) return false;
    return selectorMatches(pa.spec.selector?.matchLabels, workload.labels);
  });
}

/**
 * The `ns/name` keys a workload lists in `Workload.authorization_policies` because of
 * PeerAuthentication: the static STRICT policy when STRICT is effective, and/or the workload's
 * converted port-level policy (which replaces the static one when it carries exceptions).
 * `applicable` is the output of {@link peerAuthenticationsForWorkload}. Sorted.
 */
export function effectivePeerAuthenticationKeys(
  applicable: readonly PeerAuthentication[],
  options: CompileOptions = {},
): string[] {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const mesh = oldest(applicable.filter(p => !hasLabels(p) && p.metadata.namespace === rootNamespace));
  const namespace = oldest(applicable.filter(p => !hasLabels(p) && p.metadata.namespace !== rootNamespace));
  const workload = oldest(applicable.filter(p => hasLabels(p) && p.metadata.namespace !== rootNamespace));
  let strict = mesh !== undefined && isStrict(mesh.spec.mtls);
  if (namespace !== undefined && !isUnset(namespace.spec.mtls)) strict = isStrict(namespace.spec.mtls);
  let portKey: string | undefined;
  if (workload !== undefined) {
    const key = `${workload.metadata.namespace}/${convertedPeerAuthenticationName(workload.metadata.name)}`;
    const mtls = workload.spec.mtls;
    if (isStrict(mtls)) strict = true;
    if (isPermissive(mtls) || isDisable(mtls)) strict = false;
    const portModes = Object.values(workload.spec.portLevelMtls ?? {});
    if (workload.spec.portLevelMtls !== undefined) {
      if (isStrict(mtls)) {
        if (portModes.some(m => isPermissive(m) || isDisable(m))) {
          portKey = key;
          strict = false; // the converted policy carries STRICT itself
        }
      } else if (isPermissive(mtls) || isDisable(mtls)) {
        if (portModes.some(isStrict)) portKey = key;
      } else if (strict) {
        if (portModes.some(isPermissive)) {
          portKey = key;
          strict = false;
        }
      } else if (portModes.some(isStrict)) {
        portKey = key;
      }
    }
  }
  const keys = new Set<string>();
  if (strict) keys.add(`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`);
  if (portKey !== undefined) keys.add(portKey);
  return [...keys].sort();
}
