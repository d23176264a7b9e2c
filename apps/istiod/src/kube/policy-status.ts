/**
 * Writes istiod's verdict on each AuthorizationPolicy into its status, like upstream's
 * `ZtunnelAccepted` condition: accepted, trimmed (HTTP attributes), skipped (targetRefs, dry-run,
 * CUSTOM), or invalid with every field path. A status equal to the current one is not written
 * again, so the UPDATE event our own write causes does not loop.
 *
 * `PolicyStatusWriter` is the queue istiod uses: one wanted status per policy (the latest wins),
 * a few writes in flight, and transient failures retried with capped exponential back-off.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { httpStatusOf, isTransient, ownedConditionsEqual } from '@ambient-mesh/kube';
import { ZtunnelReason } from '@ambient-mesh/policy-engine';
import type { AuthorizationPolicy } from './objects.ts';
import type { Logger, TimerHandle } from '@ambient-mesh/runtime';
import type { CompiledPolicy } from '../wds/policies.ts';
import { systemTimers, type Timers } from '../xds/push-queue.ts';

export interface PolicyCondition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** The condition types istiod owns on AuthorizationPolicies; others' conditions are kept. */
export const ZTUNNEL_ACCEPTED = 'ZtunnelAccepted';
/** Set on policies with targetRefs (upstream's `WaypointAccepted`, `waypoint/policy-binding.ts`). */
export const WAYPOINT_ACCEPTED = 'WaypointAccepted';
export const POLICY_CONDITION_TYPES: readonly string[] = [ZTUNNEL_ACCEPTED, WAYPOINT_ACCEPTED];

/** The `WaypointAccepted` verdict of a policy with targetRefs. */
export interface WaypointVerdict {
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/**
 * Writes istiod's conditions into `status` of a namespaced security.istio.io/v1 object, keeping
 * conditions of other types (`kubeStatusPatcher`).
 */
export type StatusPatcher = (
  plural: 'authorizationpolicies',
  namespace: string,
  name: string,
  status: { conditions: PolicyCondition[] },
) => Promise<void>;

/**
 * The conditions istiod reports for a compiled (or rejected) policy: `ZtunnelAccepted`, and
 * `WaypointAccepted` when the policy has targetRefs (`waypoint`).
 */
export function policyConditions(
  result: CompiledPolicy,
  generation: number | undefined,
  waypoint?: WaypointVerdict,
): PolicyCondition[] {
  const w: PolicyCondition[] =
    waypoint === undefined
      ? []
      : [
          {
            type: WAYPOINT_ACCEPTED,
            status: waypoint.status,
            reason: waypoint.reason,
            message: waypoint.message,
            ...(waypoint.observedGeneration === undefined
              ? {}
              : { observedGeneration: waypoint.observedGeneration }),
          },
        ];
  return [...ztunnelConditions(result, generation), ...w];
}

function ztunnelConditions(result: CompiledPolicy, generation: number | undefined): PolicyCondition[] {
  const gen = generation === undefined ? {} : { observedGeneration: generation };
  if (result.errors.length > 0) {
    return [
      {
        type: ZTUNNEL_ACCEPTED,
        status: 'False',
        reason: 'Invalid',
        message: result.errors.map(e => `${e.path}: ${e.message}`).join('; '),
        ...gen,
      },
    ];
  }
  // A policy with targetRefs is not for ztunnel: upstream's ambient index builds no ztunnel
  // authorization for it, so no `ZtunnelAccepted` is written (its `WaypointAccepted` says it all).
  return result.conditions
    .filter(c => c.reason !== ZtunnelReason.TARGET_REFS)
    .map(c => ({
      type: ZTUNNEL_ACCEPTED,
      status: c.status,
      reason: c.reason,
      message: c.message,
      ...gen,
    }));
}

/** Whether the object already carries our conditions (other controllers' types are ignored). */
function sameConditions(current: unknown, next: readonly PolicyCondition[]): boolean {
  if (!Array.isArray(current)) return false;
  const conditions = (current as unknown[]).filter(
    (c): c is PolicyCondition =>
      typeof c === 'object' && c !== null && typeof (c as { type?: unknown }).type === 'string',
  );
  return ownedConditionsEqual(conditions, next, POLICY_CONDITION_TYPES);
}

type PolicyWithStatus = AuthorizationPolicy & { readonly status?: { readonly conditions?: unknown } };

/** Writes the status when it changed; never throws (failures are logged). Returns whether it wrote. */
export async function writePolicyStatus(
  patch: StatusPatcher,
  policy: PolicyWithStatus,
  result: CompiledPolicy,
  logger: Logger,
  waypoint?: WaypointVerdict,
): Promise<boolean> {
  const conditions = policyConditions(result, policy.metadata?.generation, waypoint);
  if (sameConditions(policy.status?.conditions, conditions)) return false;
  const ns = policy.metadata?.namespace ?? '';
  const name = policy.metadata?.name ?? '';
  try {
    await patch('authorizationpolicies', ns, name, { conditions });
    return true;
  } catch (err) {
    logger.warn(
      { policy: `${ns}/${name}`, err: errorMessage(err) },
      'cannot write AuthorizationPolicy status',
    );
    return false;
  }
}

/**
 * Whether a failed status patch is worth retrying: no answer (connection refused or reset,
 * `fetch failed`), a conflict, throttling, or a server error. 4xx verdicts such as 404 (the
 * policy is gone) or 422 (the status was refused) stay refused.
 */
export function isTransientStatusError(err: unknown): boolean {
  return isTransient(err);
}

export interface PolicyStatusWriterOptions {
  readonly patch: StatusPatcher;
  readonly logger: Logger;
  readonly timers?: Timers;
  /** Patches in flight at once (default 4). */
  readonly maxInFlight?: number;
  /** Attempts per wanted status before giving up (default 5). */
  readonly maxAttempts?: number;
  /** Back-off after the first failure, doubled each time (default 500 ms). */
  readonly initialBackoffMs?: number;
  /** Upper bound of the back-off (default 30 s). */
  readonly maxBackoffMs?: number;
  /** Called once per status given up on (after the log line), e.g. to count it. */
  readonly onGiveUp?: (policy: string, reason: string) => void;
  /** Which failures are retried; defaults to `isTransientStatusError`. */
  readonly isTransient?: (err: unknown) => boolean;
}

interface WantedStatus {
  readonly namespace: string;
  readonly name: string;
  readonly conditions: PolicyCondition[];
  attempts: number;
}

/**
 * Queues status writes keyed by `namespace/name`. A newer wanted status replaces a queued one
 * (and is written after an in-flight one for the same policy, never beside it); at most
 * `maxInFlight` patches run at once; transient failures are retried after a capped exponential
 * back-off through the injected timers; after `maxAttempts`, or on a permanent failure, the
 * status is given up on, logged with the policy and the reason. Never throws.
 */
export class PolicyStatusWriter {
  readonly #patch: StatusPatcher;
  readonly #logger: Logger;
  readonly #timers: Timers;
  readonly #maxInFlight: number;
  readonly #maxAttempts: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #onGiveUp: ((policy: string, reason: string) => void) | undefined;
  readonly #isTransient: (err: unknown) => boolean;
  /** The latest status wanted per policy and not yet written. */
  readonly #wanted = new Map<string, WantedStatus>();
  /** Policies ready to be written, in arrival order. */
  readonly #ready = new Set<string>();
  readonly #running = new Set<string>();
  readonly #backoff = new Map<string, TimerHandle>();
  #closed = false;

  constructor(opts: PolicyStatusWriterOptions) {
    this.#patch = opts.patch;
    this.#logger = opts.logger;
    this.#timers = opts.timers ?? systemTimers;
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 4);
    this.#maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.#initialBackoffMs = opts.initialBackoffMs ?? 500;
    this.#maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.#onGiveUp = opts.onGiveUp;
    this.#isTransient = opts.isTransient ?? isTransientStatusError;
  }

  /** Policies with a status still to write (queued, in flight or waiting to retry). */
  get pending(): number {
    return this.#wanted.size;
  }

  /** Patches in flight now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Queues the status for a compiled policy (with its `WaypointAccepted` verdict when it has
   * targetRefs), unless the policy already carries it.
   */
  enqueue(policy: PolicyWithStatus, result: CompiledPolicy, waypoint?: WaypointVerdict): void {
    if (this.#closed) return;
    const namespace = policy.metadata?.namespace ?? '';
    const name = policy.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    const conditions = policyConditions(result, policy.metadata?.generation, waypoint);
    if (sameConditions(policy.status?.conditions, conditions) && !this.#running.has(key)) {
      // Already there (often the echo of our own write): anything older still queued is stale.
      this.#forget(key);
      return;
    }
    const queued = this.#wanted.get(key);
    if (queued !== undefined && sameConditions(queued.conditions, conditions)) return;
    this.#wanted.set(key, { namespace, name, conditions, attempts: 0 });
    // In flight: written after it completes. Backing off: written when the back-off ends.
    if (this.#running.has(key) || this.#backoff.has(key)) return;
    this.#ready.add(key);
    this.#pump();
  }

  /**
   * Drops every queued write and retry but keeps taking new ones (leadership lost: the new
   * leader writes from its own view). Writes in flight finish.
   */
  clear(): void {
    for (const handle of this.#backoff.values()) this.#timers.clearTimeout(handle);
    this.#backoff.clear();
    this.#ready.clear();
    this.#wanted.clear();
  }

  /** Drops every queued write and retry; writes in flight finish but are not followed up. */
  close(): void {
    this.#closed = true;
    for (const handle of this.#backoff.values()) this.#timers.clearTimeout(handle);
    this.#backoff.clear();
    this.#ready.clear();
    this.#wanted.clear();
  }

  #forget(key: string): void {
    this.#wanted.delete(key);
    this.#ready.delete(key);
    const handle = this.#backoff.get(key);
    if (handle !== undefined) {
      this.#timers.clearTimeout(handle);
      this.#backoff.delete(key);
    }
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#maxInFlight) {
      const next = this.#ready.values().next();
      if (next.done === true) return;
      const key = next.value;
      this.#ready.delete(key);
      const wanted = this.#wanted.get(key);
      if (wanted === undefined) continue;
      this.#running.add(key);
      void this.#write(key, wanted);
    }
  }

  async #write(key: string, wanted: WantedStatus): Promise<void> {
    let failure: unknown;
    let failed = false;
    try {
      await this.#patch('authorizationpolicies', wanted.namespace, wanted.name, {
        conditions: wanted.conditions,
      });
    } catch (err) {
      failed = true;
      failure = err;
    }
    this.#running.delete(key);
    if (this.#closed) return;
    const latest = this.#wanted.get(key);
    if (latest !== wanted) {
      // A newer status arrived meanwhile: write it next, with fresh attempts.
      if (latest !== undefined) this.#ready.add(key);
    } else if (!failed) {
      this.#wanted.delete(key);
    } else {
      this.#failed(key, wanted, failure);
    }
    this.#pump();
  }

  #failed(key: string, wanted: WantedStatus, err: unknown): void {
    wanted.attempts++;
    const status = httpStatusOf(err);
    const transient = this.#isTransient(err);
    if (!transient || wanted.attempts >= this.#maxAttempts) {
      this.#wanted.delete(key);
      const reason = `${status === undefined ? 'no answer' : `HTTP ${String(status)}`}: ${errorMessage(err)}`;
      this.#logger.warn(
        { policy: key, attempts: wanted.attempts, reason },
        transient
          ? 'giving up writing AuthorizationPolicy status after repeated failures'
          : 'cannot write AuthorizationPolicy status',
      );
      this.#onGiveUp?.(key, reason);
      return;
    }
    const delay = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** (wanted.attempts - 1));
    this.#logger.debug(
      { policy: key, attempt: wanted.attempts, retryInMs: delay, err: errorMessage(err) },
      'AuthorizationPolicy status write failed; retrying',
    );
    this.#backoff.set(
      key,
      this.#timers.setTimeout(() => {
        this.#backoff.delete(key);
        if (this.#closed || !this.#wanted.has(key)) return;
        this.#ready.add(key);
        this.#pump();
      }, delay),
    );
  }
}
