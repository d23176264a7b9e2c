/**
 * "Edge explain", policy half: which AuthorizationPolicies apply to a graph edge's
 * source → destination, and whether they allow it, decided by the project's policy engine (the one
 * ztunnel runs) on the informers' live snapshot. A pure function of the snapshot.
 *
 * - L4: every policy is converted as istiod converts it for ztunnel (`compileAuthorizationPolicy`),
 *   attached to the destination workload as istiod attaches it (namespace, root-namespace and
 *   selector policies, `PolicyIndex`), and the connection is decided by ztunnel's `authorize`.
 *   The peer ztunnel sees is the source's SPIFFE identity, or the waypoint's when the destination
 *   is served by a waypoint (the waypoint opens the connection to the destination).
 * - L7: policies whose `targetRef(s)` name the destination's waypoint, one of its Services or the
 *   `istio-waypoint` GatewayClass are enforced by the waypoint; they are listed with their action.
 * - Malformed and dry-run policies are listed as not applied.
 */
import { GatewayClassName, Label, WellKnown } from '@ambient-mesh/mesh-api';
import {
  PolicyIndex,
  WireAction,
  WireScope,
  authorizationMatches,
  authorize,
  compileAuthorizationPolicy,
  validateAuthorizationPolicy,
  type ConnectionContext,
} from '@ambient-mesh/policy-engine';
import { MeshIndex, workloadOf } from './mesh-view.ts';
import type { EdgePoliciesView, EdgePolicyRow, WaypointRef } from './model.ts';
import type { AuthorizationPolicyObject, MeshSnapshot, PodObject } from './snapshot.ts';

export interface EdgePolicyQuery {
  /** Graph node ids: `<namespace>/<workload>`. */
  readonly source: string;
  readonly target: string;
  /** The destination port; defaults to the destination pod's first container port. */
  readonly port: number | undefined;
}

export type EdgePoliciesResult =
  | { readonly ok: true; readonly view: EdgePoliciesView }
  | { readonly ok: false; readonly code: 'NOT_FOUND'; readonly message: string };

function podsOf(snap: MeshSnapshot, id: string): PodObject[] {
  const slash = id.indexOf('/');
  if (slash < 0) return [];
  const namespace = id.slice(0, slash);
  const name = id.slice(slash + 1);
  return snap.pods.filter(p => p.metadata.namespace === namespace && workloadOf(p).name === name);
}

function serviceAccountOf(pod: PodObject): string {
  return pod.spec?.serviceAccountName ?? 'default';
}

function identity(namespace: string, serviceAccount: string): string {
  return `spiffe://${WellKnown.trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function actionOf(ap: AuthorizationPolicyObject): string {
  return ap.spec?.action ?? 'ALLOW';
}

function refs(ap: AuthorizationPolicyObject): readonly { kind: string; name: string; group?: string }[] {
  const r = ap.spec?.targetRefs ?? [];
  return ap.spec?.targetRef === undefined ? r : [ap.spec.targetRef, ...r];
}

/** How an L7 policy's targetRefs reach the destination, or undefined when they do not. */
function l7Attachment(
  ap: AuthorizationPolicyObject,
  waypoint: WaypointRef | undefined,
  destServices: readonly string[],
  destNamespace: string,
  rootNamespace: string,
): string | undefined {
  const ns = ap.metadata.namespace ?? '';
  for (const ref of refs(ap)) {
    if (
      ref.kind === 'Gateway' &&
      waypoint !== undefined &&
      ns === waypoint.namespace &&
      ref.name === waypoint.name
    )
      return `targets the waypoint ${waypoint.namespace}/${waypoint.name}`;
    if (ref.kind === 'Service' && ns === destNamespace && destServices.includes(ref.name))
      return `targets the Service ${ns}/${ref.name}, enforced by its waypoint`;
    if (ref.kind === 'GatewayClass' && ref.name === GatewayClassName.waypoint && ns === rootNamespace)
      return 'targets every waypoint (GatewayClass istio-waypoint in the root namespace)';
  }
  return undefined;
}

export function edgePolicies(
  snap: MeshSnapshot,
  query: EdgePolicyQuery,
  rootNamespace: string = WellKnown.systemNamespace,
): EdgePoliciesResult {
  const srcPods = podsOf(snap, query.source);
  const dstPods = podsOf(snap, query.target);
  const dst = dstPods.find(p => p.status?.podIP !== undefined) ?? dstPods[0];
  if (dst === undefined) {
    return {
      ok: false,
      code: 'NOT_FOUND',
      message: `no workload ${query.target} (the destination must be a workload node of the graph)`,
    };
  }
  const index = new MeshIndex(snap);
  const dstNamespace = dst.metadata.namespace ?? '';
  const src = srcPods.find(p => p.status?.podIP !== undefined) ?? srcPods[0];
  const sourceIdentity =
    src === undefined ? undefined : identity(src.metadata.namespace ?? '', serviceAccountOf(src));
  const waypointRef = index.waypointForPod(dst);
  const waypoint = waypointRef?.exists === true ? waypointRef : undefined;
  const srcIsWaypoint =
    waypoint !== undefined &&
    src?.metadata.namespace === waypoint.namespace &&
    src.metadata.labels?.[Label.gatewayName] === waypoint.name;
  // Through a waypoint, the destination's ztunnel authenticates the waypoint, not the client.
  let peerIdentity = sourceIdentity;
  let peerNote =
    sourceIdentity === undefined ? 'the source is not a known workload: no identity' : 'the source';
  if (waypoint !== undefined && !srcIsWaypoint) {
    const wpPod = snap.pods.find(
      p =>
        p.metadata.namespace === waypoint.namespace &&
        p.metadata.labels?.[Label.gatewayName] === waypoint.name,
    );
    peerIdentity = identity(waypoint.namespace, wpPod?.spec?.serviceAccountName ?? waypoint.name);
    peerNote = `the waypoint ${waypoint.namespace}/${waypoint.name} (it opens the connection to the destination)`;
  }
  const port =
    query.port ?? dst.spec?.containers?.flatMap(c => c.ports ?? []).map(p => p.containerPort)[0] ?? 0;

  const policyIndex = new PolicyIndex({ rootNamespace });
  const notApplied: EdgePolicyRow[] = [];
  const l7: EdgePolicyRow[] = [];
  const destServices = index.servicesSelecting(dst).map(s => s.metadata.name);
  for (const ap of snap.authorizationPolicies) {
    const row = (note: string, matches?: boolean): EdgePolicyRow => ({
      namespace: ap.metadata.namespace ?? '',
      name: ap.metadata.name,
      action: actionOf(ap),
      matches,
      note,
    });
    const attached = l7Attachment(ap, waypoint ?? waypointRef, destServices, dstNamespace, rootNamespace);
    if (attached !== undefined) {
      l7.push(row(`L7, ${attached}; its HTTP rules are decided per request`));
      continue;
    }
    if (refs(ap).length > 0) continue;
    const ns = ap.metadata.namespace ?? '';
    if (ns !== dstNamespace && ns !== rootNamespace) continue;
    const parsed = validateAuthorizationPolicy(ap);
    if (!parsed.ok) {
      notApplied.push(row('malformed: istiod rejects it, it is not applied (see Istio config)'));
      continue;
    }
    const compiled = compileAuthorizationPolicy(parsed.value, { rootNamespace });
    if (compiled.authorization === undefined) {
      notApplied.push(row(compiled.conditions[0]?.message ?? 'not sent to ztunnel'));
      continue;
    }
    policyIndex.upsert(compiled.authorization, parsed.value.spec.selector?.matchLabels);
  }
  const keys = policyIndex.selectorPolicyKeys({ namespace: dstNamespace, labels: dst.metadata.labels ?? {} });
  const { policies } = policyIndex.policiesForWorkload({
    namespace: dstNamespace,
    authorizationPolicies: keys,
  });
  const ctx: ConnectionContext = {
    srcIp: src?.status?.podIP ?? '0.0.0.0',
    srcPort: 0,
    dstIp: dst.status?.podIP ?? '0.0.0.0',
    dstPort: port,
    srcIdentity: peerIdentity,
  };
  const decision = authorize(ctx, policies);
  const scopeText = (scope: number): string =>
    scope === WireScope.GLOBAL
      ? 'mesh-wide (root namespace)'
      : scope === WireScope.NAMESPACE
        ? `every workload of ${dstNamespace}`
        : 'selects the destination';
  const l4 = policies.map(p => {
    const matches = authorizationMatches(p, ctx);
    return {
      namespace: p.namespace,
      name: p.name,
      action: p.action === WireAction.DENY ? 'DENY' : 'ALLOW',
      matches,
      note: `L4, ${scopeText(p.scope)}; ${matches ? 'its rules match this connection' : 'its rules do not match'}`,
    } satisfies EdgePolicyRow;
  });
  const reasonText: Record<string, string> = {
    'explicitly-denied': `denied by the DENY policy ${decision.policy ?? ''}`,
    'not-allowed': 'denied: ALLOW policies apply to the destination and none matches',
    allowed: `allowed by the ALLOW policy ${decision.policy ?? ''}`,
    'no-policies': 'allowed: no ALLOW policy applies and no DENY matches',
    'invalid-connection': 'denied: the connection cannot be evaluated (no address or identity)',
  };
  return {
    ok: true,
    view: {
      source: query.source,
      target: query.target,
      sourceIdentity,
      peerIdentity,
      peer: peerNote,
      port,
      waypoint,
      verdict: decision.allowed ? 'ALLOW' : 'DENY',
      reason: decision.reason,
      summary: reasonText[decision.reason] ?? decision.reason,
      decidingPolicy: decision.policy,
      l4,
      l7,
      notApplied,
    },
  };
}
