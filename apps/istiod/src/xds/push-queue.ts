/**
 * WDS change sets into the `@ambient-mesh/xds` push debouncer: changes are merged until
 * `debounceAfterMs` pass without a new one, or `debounceMaxMs` after the first, then flushed
 * once as a WDS `PushBatch`. Its `Timers` are the xds library's (runtime's, narrowed), re-exported
 * here for istiod's callers.
 */
import { systemTimers } from '@ambient-mesh/runtime';
import { PushQueue as AdsPushQueue, type ResourceChanges, type Timers } from '@ambient-mesh/xds';
import type { ChangeSet } from '../wds/wds-index.ts';
import { TypeUrls } from '../wds/wds-index.ts';

export { systemTimers };
export type { Timers };

export interface PushBatch extends ChangeSet {
  /** When the first change of the batch was queued (timers.now()). */
  readonly firstQueuedAt: number;
  /** How many change sets were merged. */
  readonly merged: number;
}

export interface PushQueueOptions {
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  readonly timers?: Timers;
  readonly flush: (batch: PushBatch) => void;
}

const NONE: ReadonlySet<string> = new Set();

/** The changes of a WDS change set per type URL. */
export function toResourceChanges(changes: ChangeSet): ResourceChanges {
  return new Map([
    [TypeUrls.ADDRESS, changes.addresses],
    [TypeUrls.AUTHORIZATION, changes.authorizations],
  ]);
}

export class PushQueue {
  readonly #queue: AdsPushQueue;

  constructor(opts: PushQueueOptions) {
    this.#queue = new AdsPushQueue({
      debounceAfterMs: opts.debounceAfterMs,
      debounceMaxMs: opts.debounceMaxMs,
      timers: opts.timers ?? systemTimers,
      flush: batch => {
        opts.flush({
          addresses: batch.changes.get(TypeUrls.ADDRESS) ?? NONE,
          authorizations: batch.changes.get(TypeUrls.AUTHORIZATION) ?? NONE,
          firstQueuedAt: batch.firstQueuedAt,
          merged: batch.merged,
        });
      },
    });
  }

  enqueue(changes: ChangeSet): void {
    this.#queue.enqueue(toResourceChanges(changes));
  }

  /** Flushes pending changes immediately (no-op when nothing is pending). */
  flushNow(): void {
    this.#queue.flushNow();
  }

  close(): void {
    this.#queue.close();
  }
}
