/**
 * The `WaypointAccepted` condition of an AuthorizationPolicy with `targetRef`/`targetRefs`, as
 * upstream's `WaypointPolicyStatusCollection` and `flattenConditions` compute it (pure):
 * - per target: a `GatewayClass` (the policy must be in the root namespace; the class must be a
 *   waypoint class), a waypoint `Gateway`, a `Service` or a `ServiceEntry` bound to a waypoint;
 *   bound ones say `bound to <ns>/<waypoint>` (a class: `bound to <class>`), the others
 *   `TargetNotFound`, `AncestorNotBound` or `Invalid`;
 * - one target: its verdict as is; several: `True` if any is bound, reason `Accepted`, or
 *   `PartiallyInvalid` with `Invalid targetRefs: <Kind.group:ns/name>, ...` when some are not.
 * RequestAuthentication gets no status from upstream's ambient controller, so none from us.
 */
import { WAYPOINT_CLASSES } from './binding.ts';
import { arr, isRec, rec, str } from './validate-support.ts';

export const WAYPOINT_ACCEPTED = 'WaypointAccepted';

/** Upstream's reasons (`model.WaypointPolicyReason*`). */
export const WaypointPolicyReason = {
  accepted: 'Accepted',
  invalid: 'Invalid',
  partiallyInvalid: 'PartiallyInvalid',
  ancestorNotBound: 'AncestorNotBound',
  targetNotFound: 'TargetNotFound',
} as const;

/** What the binding needs to know of the cluster; keys are `namespace/name`. */
export interface PolicyTargetLookup {
  readonly rootNamespace: string;
  /** The class of a Gateway, if it exists. */
  gatewayClassOf(key: string): string | undefined;
  /** Whether the Service exists, and the waypoint (`ns/name`) it is bound to. */
  service(key: string): { readonly waypoint: string | undefined } | undefined;
  /** Whether the ServiceEntry exists, and the waypoint (`ns/name`) it is bound to. */
  serviceEntry(key: string): { readonly waypoint: string | undefined } | undefined;
}

export interface WaypointCondition {
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

interface TargetVerdict {
  readonly bound: boolean;
  readonly reason: string;
  readonly message: string;
  readonly ancestor: string;
}

function verdict(ref: Record<string, unknown>, policyNs: string, lookup: PolicyTargetLookup): TargetVerdict {
  const kind = str(ref.kind) ?? '';
  const name = str(ref.name) ?? '';
  const namespace = str(ref.namespace) || policyNs;
  const key = `${namespace}/${name}`;
  const group = str(ref.group) || 'core';
  const ancestor = `${kind}.${group}:${key}`;
  const out = (bound: boolean, reason: string, message: string): TargetVerdict => ({
    bound,
    reason,
    message,
    ancestor,
  });
  switch (kind) {
    case 'GatewayClass':
      if (namespace !== lookup.rootNamespace)
        return out(
          false,
          WaypointPolicyReason.invalid,
          `AuthorizationPolicy must be in the root namespace \`${lookup.rootNamespace}\` when referencing a GatewayClass`,
        );
      // istiod owns the waypoint classes; any other class is not one of its waypoints.
      return WAYPOINT_CLASSES.has(name)
        ? out(true, WaypointPolicyReason.accepted, `bound to ${name}`)
        : out(false, WaypointPolicyReason.targetNotFound, 'not bound');
    case 'Gateway': {
      const cls = lookup.gatewayClassOf(key);
      return cls !== undefined && WAYPOINT_CLASSES.has(cls)
        ? out(true, WaypointPolicyReason.accepted, `bound to ${key}`)
        : out(false, WaypointPolicyReason.targetNotFound, 'not bound');
    }
    case 'Service':
    case 'ServiceEntry': {
      const found = kind === 'Service' ? lookup.service(key) : lookup.serviceEntry(key);
      if (found === undefined)
        return out(false, WaypointPolicyReason.targetNotFound, `${kind} ${key} was not found`);
      return found.waypoint !== undefined
        ? out(true, WaypointPolicyReason.accepted, `bound to ${found.waypoint}`)
        : out(false, WaypointPolicyReason.ancestorNotBound, `${kind} ${key} is not bound to a waypoint`);
    }
    default:
      return out(false, 'unknown', 'not bound');
  }
}

/** The policy's `WaypointAccepted` condition; undefined without targetRefs (no waypoint policy). */
export function waypointPolicyCondition(
  policy: unknown,
  lookup: PolicyTargetLookup,
): WaypointCondition | undefined {
  const o = rec(policy);
  const meta = rec(o.metadata);
  const spec = rec(o.spec);
  const refs = [...arr(spec.targetRefs), ...(isRec(spec.targetRef) ? [spec.targetRef] : [])].filter(isRec);
  if (refs.length === 0) return undefined;
  const ns = str(meta.namespace) ?? '';
  const generation = typeof meta.generation === 'number' ? { observedGeneration: meta.generation } : {};
  const verdicts = refs.map(r => verdict(r, ns, lookup));
  if (verdicts.length === 1) {
    const v = verdicts[0]!;
    return { status: v.bound ? 'True' : 'False', reason: v.reason, message: v.message, ...generation };
  }
  const unbound = verdicts.filter(v => !v.bound).map(v => v.ancestor);
  const anyBound = unbound.length < verdicts.length;
  const reason = !anyBound
    ? WaypointPolicyReason.invalid
    : unbound.length > 0
      ? WaypointPolicyReason.partiallyInvalid
      : WaypointPolicyReason.accepted;
  return {
    status: anyBound ? 'True' : 'False',
    reason,
    message: unbound.length > 0 ? `Invalid targetRefs: ${unbound.join(', ')}` : '',
    ...generation,
  };
}

/**
 * The condition with `problem` (a CUSTOM policy whose provider cannot be used) added to its
 * message; status and reason stay upstream's (they speak of the binding only).
 */
export function withPolicyProblem(
  condition: WaypointCondition | undefined,
  problem: string | undefined,
): WaypointCondition | undefined {
  if (condition === undefined || problem === undefined) return condition;
  return { ...condition, message: condition.message === '' ? problem : `${condition.message}; ${problem}` };
}
