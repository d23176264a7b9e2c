/**
 * Writes the `istio.io/WaypointBound` condition on Services (and, with a second writer, on
 * ServiceEntries: upstream builds both from the same `ServiceInfo`), as upstream: True (`WaypointAccepted`)
 * when bound, False with upstream's reason when the Service asks for a waypoint that cannot take
 * it, and removed when it asks for none. Fed by the WDS index's binding hook; a Service already
 * showing the wanted condition is not written (so our own write's watch event ends the loop).
 */
import { errorMessage } from '@ambient-mesh/errors';
import { ownedConditionsEqual, type Condition } from '@ambient-mesh/kube';
import type { Logger, Timers } from '@ambient-mesh/runtime';
import type { KubeObject } from '../kube/objects.ts';
import { WAYPOINT_BOUND, waypointBoundCondition, type WaypointBinding } from './binding.ts';
import { WriteQueue } from './write-queue.ts';

export type ServiceConditionPatcher = (
  namespace: string,
  name: string,
  conditions: readonly Condition[],
) => Promise<void>;

export interface WaypointStatusWriterOptions {
  readonly patch: ServiceConditionPatcher;
  readonly logger: Logger;
  readonly timers: Timers;
  /** Leader gating seam (default: always write). */
  readonly isLeader?: () => boolean;
  readonly onWriteFailure?: () => void;
}

export class WaypointStatusWriter {
  readonly #opts: WaypointStatusWriterOptions;
  readonly #queue: WriteQueue;
  /** The latest binding per object, so a replica that becomes leader writes them (`resync`). */
  readonly #latest = new Map<string, { readonly obj: KubeObject; readonly binding: WaypointBinding }>();

  constructor(opts: WaypointStatusWriterOptions) {
    this.#opts = opts;
    this.#queue = new WriteQueue({
      timers: opts.timers,
      onGiveUp: (key, err, attempts) => {
        opts.onWriteFailure?.();
        opts.logger.warn(
          { service: key, err: errorMessage(err), attempts },
          'could not write the WaypointBound condition',
        );
      },
    });
  }

  /** The binding of a Service or ServiceEntry (undefined object: deleted, nothing to write). */
  update(svc: KubeObject | undefined, binding: WaypointBinding, key?: string): void {
    if (svc === undefined) {
      if (key !== undefined) this.#latest.delete(key);
      return;
    }
    this.#latest.set(`${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`, { obj: svc, binding });
    if (!(this.#opts.isLeader?.() ?? true)) return;
    const cond = waypointBoundCondition(binding, svc.metadata?.labels);
    const generation = svc.metadata?.generation;
    const want: Condition[] =
      cond === undefined
        ? []
        : [{ ...cond, ...(generation === undefined ? {} : { observedGeneration: generation }) }];
    const current = (svc as { status?: { conditions?: Condition[] } }).status?.conditions;
    if (ownedConditionsEqual(current, want, [WAYPOINT_BOUND])) return;
    const ns = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    this.#queue.enqueue(`${ns}/${name}`, () => this.#opts.patch(ns, name, want));
  }

  /** This istiod became the leader: every object's latest binding is checked and written. */
  resync(): void {
    for (const { obj, binding } of [...this.#latest.values()]) this.update(obj, binding);
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  close(): void {
    this.#queue.close();
  }
}
