/**
 * Status istiod writes on ServiceEntries and WorkloadEntries:
 *
 * - a `ZtunnelAccepted` condition, `False` with reason `Invalid` or `AddressConflict` and every
 *   issue in the message, when the object was kept out of WDS (removed once it is fixed);
 * - for ServiceEntries that get VIPs, `status.addresses` (`[{host, value}]`) from the allocator.
 *
 * `SourceStatusWriter` queues one wanted status per object (the latest wins), writes one at a
 * time per object, and retries transient failures with capped exponential back-off. A deleted
 * object is forgotten: nothing more is written to it, and a new leader does not replay it.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { isTransient, ownedConditionsEqual, type Condition } from '@ambient-mesh/kube';
import type { Logger, TimerHandle } from '@ambient-mesh/runtime';
import { formatIssues, SourceIssueCode, type SourceIssue } from '../wds/source-issues.ts';
import type { AllocatedAddress } from '../wds/vip-allocator.ts';
import type { WdsIndexOptions } from '../wds/wds-index.ts';
import { systemTimers, type Timers } from '../xds/push-queue.ts';
import { ZTUNNEL_ACCEPTED } from './policy-status.ts';

export type SourcePlural = 'serviceentries' | 'workloadentries';

export interface SourceStatus {
  /** istiod's conditions (only `ZtunnelAccepted`; empty removes it). */
  readonly conditions: readonly Condition[];
  /** Replaces `status.addresses` when set. */
  readonly addresses?: readonly AllocatedAddress[];
}

/** Writes a status into a networking.istio.io/v1 object; answers false when it was already there. */
export type SourceStatusPatcher = (
  plural: SourcePlural,
  namespace: string,
  name: string,
  status: SourceStatus,
) => Promise<boolean>;

/** The conditions for an object's issues: none when it was applied. */
export function sourceConditions(
  issues: readonly SourceIssue[],
  generation: number | undefined,
): Condition[] {
  if (issues.length === 0) return [];
  const conflict = issues.every(i => i.code === SourceIssueCode.ADDRESS_CONFLICT);
  return [
    {
      type: ZTUNNEL_ACCEPTED,
      status: 'False',
      reason: conflict ? 'AddressConflict' : 'Invalid',
      message: formatIssues(issues),
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    },
  ];
}

export interface SourceStatusWriterOptions {
  readonly patch: SourceStatusPatcher;
  readonly logger: Logger;
  readonly timers?: Timers;
  readonly maxAttempts?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

interface Wanted {
  readonly plural: SourcePlural;
  readonly namespace: string;
  readonly name: string;
  readonly status: SourceStatus;
  attempts: number;
}

export class SourceStatusWriter {
  readonly #opts: SourceStatusWriterOptions;
  readonly #timers: Timers;
  readonly #wanted = new Map<string, Wanted>();
  readonly #running = new Set<string>();
  readonly #backoff = new Map<string, TimerHandle>();
  #closed = false;

  constructor(opts: SourceStatusWriterOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
  }

  /** Objects with a status still to write. */
  get pending(): number {
    return this.#wanted.size;
  }

  enqueue(plural: SourcePlural, namespace: string, name: string, status: SourceStatus): void {
    if (this.#closed) return;
    const key = `${plural}/${namespace}/${name}`;
    const queued = this.#wanted.get(key);
    // An address decision is never dropped by a later conditions-only report.
    const merged: SourceStatus =
      status.addresses === undefined && queued?.status.addresses !== undefined
        ? { ...status, addresses: queued.status.addresses }
        : status;
    this.#wanted.set(key, { plural, namespace, name, status: merged, attempts: 0 });
    if (this.#running.has(key) || this.#backoff.has(key)) return;
    void this.#write(key);
  }

  /** Drops the object's queued status and back-off (it was deleted); a write in flight ends unanswered. */
  forget(plural: SourcePlural, namespace: string, name: string): void {
    const key = `${plural}/${namespace}/${name}`;
    this.#wanted.delete(key);
    const timer = this.#backoff.get(key);
    if (timer !== undefined) this.#timers.clearTimeout(timer);
    this.#backoff.delete(key);
  }

  close(): void {
    this.#closed = true;
    for (const h of this.#backoff.values()) this.#timers.clearTimeout(h);
    this.#backoff.clear();
    this.#wanted.clear();
  }

  async #write(key: string): Promise<void> {
    const wanted = this.#wanted.get(key);
    // close() clears the wanted statuses, so nothing is written after it.
    if (wanted === undefined) return;
    this.#running.add(key);
    let failure: unknown;
    let failed = false;
    try {
      await this.#opts.patch(wanted.plural, wanted.namespace, wanted.name, wanted.status);
    } catch (err) {
      failed = true;
      failure = err;
    }
    this.#running.delete(key);
    if (this.#closed) return;
    const latest = this.#wanted.get(key);
    if (latest !== wanted) {
      if (latest !== undefined) void this.#write(key);
      return;
    }
    if (!failed) {
      this.#wanted.delete(key);
      return;
    }
    wanted.attempts++;
    const transient = isTransient(failure);
    if (!transient || wanted.attempts >= (this.#opts.maxAttempts ?? 5)) {
      this.#wanted.delete(key);
      this.#opts.logger.warn({ object: key, err: errorMessage(failure) }, 'cannot write status');
      return;
    }
    const delay = Math.min(
      this.#opts.maxBackoffMs ?? 30_000,
      (this.#opts.initialBackoffMs ?? 500) * 2 ** (wanted.attempts - 1),
    );
    this.#backoff.set(
      key,
      this.#timers.setTimeout(() => {
        this.#backoff.delete(key);
        void this.#write(key);
      }, delay),
    );
  }
}

/**
 * The WDS index callbacks that log source issues and queue ServiceEntry/WorkloadEntry status
 * (when a patcher is given), and the writer's close.
 */
export function sourceStatusHandlers(opts: {
  readonly patch: SourceStatusPatcher | undefined;
  readonly logger: Logger;
  readonly timers?: Timers;
  /** Only the leader writes; every replica keeps the latest wanted status for `replay`. */
  readonly isLeader?: () => boolean;
}): {
  handlers: Pick<WdsIndexOptions, 'onSourceStatus' | 'onSourceDeleted' | 'onEndpointSliceIssues'>;
  /** Queues every kept status again (this replica just became the leader); deleted objects are not kept. */
  replay: () => void;
  close: () => void;
} {
  const isLeader = opts.isLeader ?? (() => true);
  const latest = new Map<
    string,
    { plural: SourcePlural; namespace: string; name: string; status: SourceStatus }
  >();
  const { logger } = opts;
  const writer =
    opts.patch === undefined
      ? undefined
      : new SourceStatusWriter({
          patch: opts.patch,
          logger,
          ...(opts.timers === undefined ? {} : { timers: opts.timers }),
        });
  return {
    handlers: {
      onSourceStatus: report => {
        const meta = report.object.metadata ?? {};
        const key = `${meta.namespace ?? ''}/${meta.name ?? ''}`;
        if (report.issues.length > 0)
          logger.warn(
            {
              kind: report.kind,
              object: key,
              codes: report.issues.map(i => i.code),
              errors: formatIssues(report.issues),
            },
            `${report.kind} was not applied`,
          );
        const status = report.object.status as { conditions?: Condition[] } | undefined;
        const conditions = sourceConditions(report.issues, meta.generation);
        const sameConditions = ownedConditionsEqual(status?.conditions, conditions, [ZTUNNEL_ACCEPTED]);
        const plural: SourcePlural = report.kind === 'ServiceEntry' ? 'serviceentries' : 'workloadentries';
        const wanted = {
          plural,
          namespace: meta.namespace ?? '',
          name: meta.name ?? '',
          status: { conditions, ...(report.addresses === undefined ? {} : { addresses: report.addresses }) },
        };
        if (sameConditions && report.addresses === undefined) {
          latest.delete(`${plural}/${key}`);
          return;
        }
        latest.set(`${plural}/${key}`, wanted);
        if (isLeader()) writer?.enqueue(wanted.plural, wanted.namespace, wanted.name, wanted.status);
      },
      onSourceDeleted: (kind, namespace, name) => {
        const plural: SourcePlural = kind === 'ServiceEntry' ? 'serviceentries' : 'workloadentries';
        latest.delete(`${plural}/${namespace}/${name}`);
        writer?.forget(plural, namespace, name);
      },
      onEndpointSliceIssues: (slice, issues) => {
        logger.debug(
          {
            slice: `${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`,
            errors: formatIssues(issues),
          },
          'EndpointSlice endpoints ignored',
        );
      },
    },
    replay: () => {
      for (const w of latest.values()) writer?.enqueue(w.plural, w.namespace, w.name, w.status);
    },
    close: () => writer?.close(),
  };
}
