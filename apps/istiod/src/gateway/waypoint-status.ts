/**
 * Writes the `istio.io/WaypointBound` condition on Services, as upstream: True (`WaypointAccepted`)
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

  /** The binding of a Service (undefined object: deleted, nothing to write). */
  update(svc: KubeObject | undefined, binding: WaypointBinding): void {
    if (svc === undefined || !(this.#opts.isLeader?.() ?? true)) return;
    const cond = waypointBoundCondition(binding);
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

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  close(): void {
    this.#queue.close();
  }
}
