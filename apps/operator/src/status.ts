// Status decisions (pure), with Sail's condition types and reason strings: Reconciled, Ready and
// DependenciesHealthy conditions, `state`, and the Istio's revision counts.
import type { SailCondition, SailStatus } from './resources.ts';

export const ConditionType = {
  Reconciled: 'Reconciled',
  Ready: 'Ready',
  InUse: 'InUse',
  DependenciesHealthy: 'DependenciesHealthy',
} as const;

/** Sail's reason strings (api/v1 *_types.go). */
export const Reason = {
  Healthy: 'Healthy',
  ReconcileError: 'ReconcileError',
  /** Ours: the values carry a field outside the typed subset (Sail ignores it silently). */
  InvalidValues: 'InvalidValues',
  IstiodNotReady: 'IstiodNotReady',
  ActiveRevisionNotFound: 'ActiveRevisionNotFound',
  DaemonSetNotReady: 'DaemonSetNotReady',
  ReadinessCheckFailed: 'ReadinessCheckFailed',
  IstioCNINotFound: 'IstioCNINotFound',
  IstioCNINotHealthy: 'IstioCNINotHealthy',
  ZTunnelNotFound: 'ZTunnelNotFound',
  ZTunnelNotHealthy: 'ZTunnelNotHealthy',
  ReferencedByWorkloads: 'ReferencedByWorkloads',
  NotReferencedByAnything: 'NotReferencedByAnything',
} as const;

/** What a reconcile achieved: applied cleanly, or failed with a reason and message. */
export type ReconcileOutcome =
  { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly message: string };

/** Readiness of a workload the CR owns (a Deployment or DaemonSet), read from its status. */
export type WorkloadReadiness =
  | { readonly kind: 'missing' }
  | { readonly kind: 'present'; readonly desired: number; readonly ready: number };

export interface DaemonSetStatusLike {
  desiredNumberScheduled?: number;
  numberReady?: number;
}
export interface DeploymentStatusLike {
  replicas?: number;
  readyReplicas?: number;
}

export function daemonSetReadiness(status: DaemonSetStatusLike | undefined | null): WorkloadReadiness {
  if (status === undefined || status === null) return { kind: 'missing' };
  return { kind: 'present', desired: status.desiredNumberScheduled ?? 0, ready: status.numberReady ?? 0 };
}

export function deploymentReadiness(status: DeploymentStatusLike | undefined | null): WorkloadReadiness {
  if (status === undefined || status === null) return { kind: 'missing' };
  return { kind: 'present', desired: status.replicas ?? 0, ready: status.readyReplicas ?? 0 };
}

/** Ready for a DaemonSet-backed CR (IstioCNI, ZTunnel), with Sail's messages. */
export function daemonSetReady(
  readiness: WorkloadReadiness,
  component: 'istio-cni' | 'ztunnel',
): SailCondition {
  const notReady = (message: string): SailCondition => ({
    type: ConditionType.Ready,
    status: 'False',
    reason: Reason.DaemonSetNotReady,
    message,
  });
  if (readiness.kind === 'missing') return notReady(`${component} DaemonSet not found`);
  if (readiness.desired === 0) return notReady(`no ${component} pods scheduled`);
  if (readiness.ready < readiness.desired) return notReady(`not all ${component} pods are ready`);
  return { type: ConditionType.Ready, status: 'True', reason: Reason.Healthy };
}

/** Ready for an IstioRevision: its istiod Deployment. */
export function istiodReady(readiness: WorkloadReadiness): SailCondition {
  const notReady = (message: string): SailCondition => ({
    type: ConditionType.Ready,
    status: 'False',
    reason: Reason.IstiodNotReady,
    message,
  });
  if (readiness.kind === 'missing') return notReady('istiod Deployment not found');
  if (readiness.desired === 0) return notReady('istiod Deployment is scaled to zero replicas');
  if (readiness.ready < readiness.desired) return notReady('not all istiod pods are ready');
  return { type: ConditionType.Ready, status: 'True', reason: Reason.Healthy };
}

export function reconciledCondition(outcome: ReconcileOutcome): SailCondition {
  return outcome.ok
    ? { type: ConditionType.Reconciled, status: 'True', reason: Reason.Healthy }
    : { type: ConditionType.Reconciled, status: 'False', reason: outcome.reason, message: outcome.message };
}

/**
 * `state` as Sail derives it: the reason of the first unhealthy condition in the order
 * Reconciled, Ready, DependenciesHealthy; Healthy when none is.
 */
export function stateOf(conditions: readonly SailCondition[]): string {
  for (const type of [ConditionType.Reconciled, ConditionType.Ready, ConditionType.DependenciesHealthy]) {
    const c = conditions.find(x => x.type === type);
    if (c !== undefined && c.status !== 'True') return c.reason ?? 'Unknown';
  }
  return Reason.Healthy;
}

/**
 * The next conditions: each of `next` replaces the previous one of its type, keeping the
 * previous lastTransitionTime when the status did not change (Sail truncates to seconds).
 */
export function mergeConditions(
  previous: readonly SailCondition[] | undefined,
  next: readonly SailCondition[],
  now: Date,
): SailCondition[] {
  const stamp = new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return next.map(c => {
    const before = previous?.find(p => p.type === c.type);
    const lastTransitionTime =
      before !== undefined && before.status === c.status && before.lastTransitionTime !== undefined
        ? before.lastTransitionTime
        : stamp;
    return { ...c, lastTransitionTime };
  });
}

/** The status of a DaemonSet-backed CR (IstioCNI, ZTunnel) after a reconcile. */
export function componentStatus(
  generation: number | undefined,
  previous: SailStatus | undefined,
  outcome: ReconcileOutcome,
  ready: SailCondition,
  now: Date,
): SailStatus {
  const conditions = mergeConditions(previous?.conditions, [reconciledCondition(outcome), ready], now);
  return {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions,
    state: stateOf(conditions),
  };
}

export interface RevisionSummary {
  readonly name: string;
  readonly ready: boolean;
  readonly inUse: boolean;
}

/** The Istio's status from its owned revisions and the active one's name. */
export function istioStatus(
  generation: number | undefined,
  previous: SailStatus | undefined,
  outcome: ReconcileOutcome,
  activeRevisionName: string,
  revisions: readonly RevisionSummary[],
  now: Date,
): SailStatus {
  const active = revisions.find(r => r.name === activeRevisionName);
  const ready: SailCondition =
    active === undefined
      ? {
          type: ConditionType.Ready,
          status: 'False',
          reason: Reason.ActiveRevisionNotFound,
          message: `active IstioRevision ${activeRevisionName} not found`,
        }
      : active.ready
        ? { type: ConditionType.Ready, status: 'True', reason: Reason.Healthy }
        : {
            type: ConditionType.Ready,
            status: 'False',
            reason: Reason.IstiodNotReady,
            message: 'active revision is not ready',
          };
  const conditions = mergeConditions(previous?.conditions, [reconciledCondition(outcome), ready], now);
  return {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions,
    state: stateOf(conditions),
    activeRevisionName,
    revisions: {
      total: revisions.length,
      ready: revisions.filter(r => r.ready).length,
      inUse: revisions.filter(r => r.inUse).length,
    },
  };
}

/** InUse of a revision: referenced by namespaces or pods (Sail's reasons), with what refers to it. */
export function inUseCondition(references: readonly string[]): SailCondition {
  return references.length > 0
    ? {
        type: ConditionType.InUse,
        status: 'True',
        reason: Reason.ReferencedByWorkloads,
        message: `referenced by ${references.slice(0, 3).join(', ')}${references.length > 3 ? ` and ${references.length - 3} more` : ''}`,
      }
    : {
        type: ConditionType.InUse,
        status: 'False',
        reason: Reason.NotReferencedByAnything,
        message: 'not referenced by any namespace or pod',
      };
}

/** The status of an IstioRevision after a reconcile: Reconciled, Ready (its istiod), InUse. */
export function revisionStatus(
  generation: number | undefined,
  previous: SailStatus | undefined,
  outcome: ReconcileOutcome,
  ready: SailCondition,
  inUse: SailCondition,
  now: Date,
): SailStatus {
  const conditions = mergeConditions(previous?.conditions, [reconciledCondition(outcome), ready, inUse], now);
  return {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions,
    state: stateOf(conditions),
  };
}
