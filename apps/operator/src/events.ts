// Kubernetes Events for each transition of a CR's conditions (pure decision + the Event object):
// one Event per condition whose status changed, Warning when a Reconciled or Ready condition
// turns False, Normal otherwise.
import {
  API_VERSION,
  FIELD_MANAGER,
  type SailCondition,
  type SailKind,
  type SailStatus,
} from './resources.ts';

/** Cluster-scoped CRs' events are written here, as client-go's recorder does. */
export const EVENTS_NAMESPACE = 'default';

export interface Transition {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** The condition changes between two statuses, in the new status' order. */
export function transitions(previous: SailStatus | undefined, next: SailStatus): Transition[] {
  const out: Transition[] = [];
  for (const c of next.conditions ?? []) {
    const before: SailCondition | undefined = previous?.conditions?.find(p => p.type === c.type);
    if (before?.status === c.status && before.reason === c.reason) continue;
    const warning = c.status === 'False' && c.type !== 'InUse';
    out.push({
      type: warning ? 'Warning' : 'Normal',
      reason: c.reason ?? c.type,
      message: `${c.type} is ${c.status}${before === undefined ? '' : ` (was ${before.status})`}${c.message === undefined ? '' : `: ${c.message}`}`,
    });
  }
  return out;
}

/** The core/v1 Event recording `t` on the CR. */
export function eventObject(
  kind: SailKind,
  involved: { readonly name: string; readonly uid?: string },
  t: Transition,
  now: Date,
  reportingInstance: string,
): Record<string, unknown> {
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${involved.name}.`, namespace: EVENTS_NAMESPACE },
    involvedObject: {
      apiVersion: API_VERSION,
      kind,
      name: involved.name,
      ...(involved.uid === undefined ? {} : { uid: involved.uid }),
    },
    reason: t.reason,
    message: t.message,
    type: t.type,
    source: { component: FIELD_MANAGER },
    reportingComponent: FIELD_MANAGER,
    reportingInstance,
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
  };
}
