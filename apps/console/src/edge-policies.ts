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
 * - PeerAuthentication: the PeerAuthentications are converted as istiod converts them for ztunnel
 *   (the static STRICT DENY policy "no peer identity" and port-level DENY policies) and attached
 *   to the destination by the keys istiod lists for it; a source outside the mesh connects in
 *   plaintext (no identity), which STRICT denies.
 * - L7: policies whose `targetRef(s)` name the destination's waypoint, one of its Services or the
 *   `istio-waypoint` GatewayClass are enforced by the waypoint; they are decided by the waypoint's
 *   evaluator (`authorizeHttp`) for a request shape (method, path, host, headers) from the
 *   client's identity, and each is listed with whether its rules match that request.
 * - Malformed and dry-run policies are listed as not applied.
 */
import { GatewayClassName, Label, WellKnown } from '@ambient-mesh/mesh-api';
import {
  PolicyIndex,
  STATIC_STRICT_POLICY_NAME,
  WireAction,
  WireScope,
  authorizationMatches,
  authorize,
  authorizeHttp,
  compileAuthorizationPolicy,
  compilePeerAuthentications,
  effectivePeerAuthenticationKeys,
  httpPolicyMatches,
  peerAuthenticationsForWorkload,
  validateAuthorizationPolicy,
  validatePeerAuthentication,
  type AuthorizationPolicy,
  type ConnectionContext,
  type HttpRequestContext,
  type PeerAuthentication,
} from '@ambient-mesh/policy-engine';
import { MeshIndex, workloadOf } from './mesh-view.ts';
import type { EdgePoliciesView, EdgePolicyRow, EdgeRequest, WaypointRef } from './model.ts';
import type { AuthorizationPolicyObject, MeshSnapshot, PodObject } from './snapshot.ts';

export interface EdgePolicyQuery {
  /** Graph node ids: `<namespace>/<workload>`. */
  readonly source: string;
  readonly target: string;
  /** The destination port; defaults to the destination pod's first container port. */
  readonly port: number | undefined;
  /**
   * The request shape the waypoint's L7 policies are decided for; missing fields default to
   * `GET /` to the destination's first Service hostname, no headers.
   */
  readonly request?: Partial<EdgeRequest>;
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
  // A source outside the mesh has no ztunnel (nor sidecar) to speak mTLS for it: plaintext.
  const sourceInMesh = src !== undefined && index.modeOf(src) !== 'out-of-mesh';
  // Through a waypoint, the destination's ztunnel authenticates the waypoint, not the client.
  let peerIdentity = sourceInMesh ? sourceIdentity : undefined;
  let peerNote =
    sourceIdentity === undefined
      ? 'the source is not a known workload: no identity'
      : sourceInMesh
        ? 'the source'
        : 'the source is outside the mesh: plaintext, no peer identity';
  if (waypoint !== undefined && !srcIsWaypoint && sourceInMesh) {
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
  const l7Parsed: (AuthorizationPolicy | undefined)[] = [];
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
      const parsed = validateAuthorizationPolicy(ap);
      if (!parsed.ok) {
        notApplied.push(row('malformed: istiod rejects it, it is not applied (see Istio config)'));
        continue;
      }
      l7.push(row(`L7, ${attached}; its HTTP rules are decided per request`));
      l7Parsed.push(parsed.value);
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
  // PeerAuthentication, as istiod converts it for ztunnel: DENY policies attached by key.
  const peerAuthentications: PeerAuthentication[] = [];
  for (const pa of snap.peerAuthentications ?? []) {
    const parsed = validatePeerAuthentication(pa);
    if (parsed.ok) peerAuthentications.push(parsed.value);
    else
      notApplied.push({
        namespace: pa.metadata.namespace ?? '',
        name: pa.metadata.name,
        action: 'PeerAuthentication',
        matches: undefined,
        note: 'malformed PeerAuthentication: istiod rejects it, it is not applied (see Istio config)',
      });
  }
  for (const a of compilePeerAuthentications(peerAuthentications, { rootNamespace })) policyIndex.upsert(a);
  const applicablePa = peerAuthenticationsForWorkload(
    peerAuthentications,
    { namespace: dstNamespace, labels: dst.metadata.labels ?? {} },
    { rootNamespace },
  );
  const paKeys = effectivePeerAuthenticationKeys(applicablePa, { rootNamespace });
  const strictKey = `${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`;
  const keys = [
    ...policyIndex.selectorPolicyKeys({ namespace: dstNamespace, labels: dst.metadata.labels ?? {} }),
    ...paKeys,
  ];
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
  const fromPa = (key: string): boolean => paKeys.includes(key);
  const l4 = policies.map(p => {
    const matches = authorizationMatches(p, ctx);
    const key = `${p.namespace}/${p.name}`;
    const what =
      key === strictKey
        ? 'PeerAuthentication STRICT (converted by istiod: deny a connection without a peer identity, i.e. plaintext)'
        : fromPa(key)
          ? 'PeerAuthentication port-level mTLS (converted by istiod)'
          : `L4, ${scopeText(p.scope)}`;
    return {
      namespace: p.namespace,
      name: p.name,
      action: p.action === WireAction.DENY ? 'DENY' : 'ALLOW',
      matches,
      note: `${what}; ${matches ? 'its rules match this connection' : 'its rules do not match'}`,
    } satisfies EdgePolicyRow;
  });
  const strict = paKeys.includes(strictKey);
  const mtls = {
    strict,
    peerAuthentications: applicablePa.map(p => `${p.metadata.namespace}/${p.metadata.name}`),
    plaintext: !sourceInMesh,
    summary: strict
      ? sourceInMesh
        ? 'STRICT: the source is in the mesh and connects with mTLS'
        : 'STRICT: plaintext from outside the mesh is denied'
      : applicablePa.length > 0
        ? 'not STRICT for this workload: plaintext is accepted'
        : 'no PeerAuthentication applies (PERMISSIVE): plaintext is accepted',
  };
  // L7: the waypoint decides each request, from the client's identity (HBONE carries it).
  const host =
    query.request?.host ??
    (destServices[0] === undefined ? '' : `${destServices[0]}.${dstNamespace}.svc.cluster.local`);
  const request: EdgeRequest = {
    method: query.request?.method ?? 'GET',
    path: query.request?.path ?? '/',
    host,
    headers: query.request?.headers ?? {},
  };
  let l7Verdict: EdgePoliciesView['l7Verdict'];
  if (waypoint !== undefined) {
    const http: HttpRequestContext = {
      method: request.method,
      host: request.host,
      path: request.path,
      headers: request.headers,
      sourceIp: src?.status?.podIP ?? '0.0.0.0',
      sourceIdentity: sourceInMesh ? sourceIdentity : undefined,
      destinationIp: dst.status?.podIP ?? '0.0.0.0',
      destinationPort: port,
    };
    for (const [i, row] of l7.entries()) {
      const parsed = l7Parsed[i];
      if (parsed === undefined) continue;
      const matches = httpPolicyMatches(parsed, http);
      l7[i] = {
        ...row,
        matches,
        note: `${row.note.replace(/; its HTTP rules are decided per request$/, '')}; ${matches ? 'its rules match this request' : 'its rules do not match this request'}`,
      };
    }
    const d = authorizeHttp(
      http,
      l7Parsed.filter(p => p !== undefined),
    );
    const l7Text: Record<string, string> = {
      'custom-denied': `denied by the CUSTOM policy ${d.policy ?? ''}`,
      'explicitly-denied': `denied by the DENY policy ${d.policy ?? ''}`,
      'not-allowed': 'denied: ALLOW policies apply at the waypoint and none matches this request',
      allowed: `allowed by the ALLOW policy ${d.policy ?? ''}`,
      'no-policies': 'allowed: no ALLOW policy applies at the waypoint and no DENY matches',
      'invalid-request': 'denied: the request cannot be evaluated',
    };
    l7Verdict = {
      enforcedBy: `${waypoint.namespace}/${waypoint.name}`,
      request,
      verdict: d.allowed ? 'ALLOW' : 'DENY',
      reason: d.reason,
      summary: l7Text[d.reason] ?? d.reason,
      decidingPolicy: d.policy,
    };
  }
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
      summary:
        decision.reason === 'explicitly-denied' && decision.policy === strictKey
          ? 'denied: PeerAuthentication STRICT applies and the connection is plaintext (the source is outside the mesh)'
          : (reasonText[decision.reason] ?? decision.reason),
      decidingPolicy: decision.policy,
      mtls,
      l7Verdict,
      overall:
        decision.allowed && (l7Verdict === undefined || l7Verdict.verdict === 'ALLOW') ? 'ALLOW' : 'DENY',
      l4,
      l7,
      notApplied,
    },
  };
}
