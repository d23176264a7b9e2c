/**
 * The authorization capability a proxy injects into the connection manager, and the wording of
 * its refusals. `P` is the app's policy context of one connection (ztunnel and the waypoint use
 * `@ambient-mesh/policy-engine`'s `ConnectionContext`); the verdict has the shape of the engine's
 * `L4Decision`, so its result can be returned as is.
 */

export interface PolicyVerdict {
  readonly allowed: boolean;
  /** Why: a reason code such as `denied` or `no-allow-match`. */
  readonly reason: string;
  /** `ns/name` of the deciding policy, when one decided. */
  readonly policy?: string | undefined;
}

/**
 * Decides one connection against the policies that apply now. Called when the connection arrives
 * and again for every tracked connection on `ConnectionManager.reevaluate()`.
 */
export type PolicyCheck<P> = (context: P) => PolicyVerdict;

/** The access-log error of a connection refused by policy on arrival. */
export function policyRejection(verdict: PolicyVerdict): string {
  return `policy rejection: ${verdict.reason} (${verdict.policy ?? 'no policy'})`;
}

/** The access-log error of an open connection closed because a policy change now denies it. */
export function policyChangeClosure(verdict: PolicyVerdict): string {
  return `connection closed due to policy change (${verdict.policy ?? verdict.reason})`;
}
