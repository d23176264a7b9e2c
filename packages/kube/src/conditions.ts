/**
 * Status conditions shared by several controllers. A controller owns some condition types (istiod
 * owns `ZtunnelAccepted` on AuthorizationPolicies); others may write theirs on the same object.
 * `mergeConditions` replaces only the owned types and keeps everyone else's as they are;
 * `patchStatusConditions` reads the live object, merges, and writes the status with the read
 * resourceVersion as a precondition, re-reading on a conflict.
 */
import type { KubeClient } from './client.ts';
import { MergePatch } from './client.ts';
import { isConflict } from './errors.ts';
import type { KubeObject } from './resources.ts';

export interface Condition {
  readonly type: string;
  /** `True`, `False` or `Unknown`. */
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly observedGeneration?: number;
  /** RFC 3339; kept when the status did not change, set to now when it did. */
  readonly lastTransitionTime?: string;
}

export interface MergeConditionsOptions {
  /** The types this controller owns: they are replaced by `ours` (or removed when absent from it). */
  readonly ownedTypes: readonly string[];
  /** For `lastTransitionTime` of a changed condition; omit to leave the field as given. */
  readonly now?: () => Date;
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration
  );
}

/** Whether `current` already holds exactly `ours` for the owned types (others ignored). */
export function ownedConditionsEqual(
  current: readonly Condition[] | undefined,
  ours: readonly Condition[],
  ownedTypes: readonly string[],
): boolean {
  const owned = (current ?? []).filter(c => ownedTypes.includes(c.type));
  return owned.length === ours.length && ours.every((o, i) => sameCondition(owned[i]!, o));
}

/**
 * Others' conditions stay in place; ours replace theirs of the same type in place, new ones are
 * appended, and owned types missing from `ours` are dropped.
 */
export function mergeConditions(
  current: readonly Condition[] | undefined,
  ours: readonly Condition[],
  options: MergeConditionsOptions,
): Condition[] {
  const owned = new Set(options.ownedTypes);
  for (const c of ours) {
    if (!owned.has(c.type)) throw new TypeError(`condition type ${c.type} is not among the owned types`);
  }
  const wanted = new Map(ours.map(c => [c.type, c]));
  const stamp = (prev: Condition | undefined, next: Condition): Condition => {
    if (options.now === undefined) return next;
    if (prev !== undefined && prev.status === next.status && prev.lastTransitionTime !== undefined) {
      return { ...next, lastTransitionTime: prev.lastTransitionTime };
    }
    return { ...next, lastTransitionTime: options.now().toISOString() };
  };
  const out: Condition[] = [];
  const placed = new Set<string>();
  for (const c of current ?? []) {
    if (!owned.has(c.type)) {
      out.push(c);
      continue;
    }
    const next = wanted.get(c.type);
    if (next === undefined || placed.has(c.type)) continue;
    out.push(stamp(c, next));
    placed.add(c.type);
  }
  for (const c of ours) if (!placed.has(c.type)) out.push(stamp(undefined, c));
  return out;
}

export interface PatchStatusConditionsOptions extends MergeConditionsOptions {
  readonly conditions: readonly Condition[];
  /** Reads after a conflict before giving up (default 5). */
  readonly maxAttempts?: number;
}

type WithConditions = KubeObject & { status?: { conditions?: Condition[] } };

/**
 * Writes our conditions into `objectPath`'s status (a `/status` subresource merge patch), keeping
 * other controllers' conditions. Answers false when the object already carried them. A 404 or
 * any other failure is thrown for the caller to classify (`isNotFound`, `isTransient`).
 */
export async function patchStatusConditions(
  client: KubeClient,
  objectPath: string,
  options: PatchStatusConditionsOptions,
): Promise<boolean> {
  const attempts = Math.max(1, options.maxAttempts ?? 5);
  for (let attempt = 1; ; attempt++) {
    const live = await client.get<WithConditions>(objectPath);
    const current = live.status?.conditions;
    if (ownedConditionsEqual(current, options.conditions, options.ownedTypes)) return false;
    const conditions = mergeConditions(current, options.conditions, options);
    try {
      await client.request('PATCH', `${objectPath}/status`, {
        // The resourceVersion makes the patch conditional: a concurrent writer's conditions are
        // never lost to a stale read.
        body: { metadata: { resourceVersion: live.metadata?.resourceVersion }, status: { conditions } },
        contentType: MergePatch,
      });
      return true;
    } catch (err) {
      if (!isConflict(err) || attempt >= attempts) throw err;
    }
  }
}
