import { describe, expect, it } from 'vitest';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import type { TrustBundle } from '@ambient-mesh/spiffe-certs';
import {
  DISTRIBUTION_GRACE_MAX_MS,
  DISTRIBUTION_GRACE_MIN_MS,
  distributionWaitMs,
  planCaChange,
} from './root-distribution.ts';

const HOUR_MS = 3600_000;

async function roots(): Promise<{ old: TrustBundle; fresh: TrustBundle }> {
  const [a, b] = await Promise.all([createTestCa(), createTestCa()]);
  return { old: a.trustBundle, fresh: b.trustBundle };
}

describe('planCaChange', () => {
  it('switches at once when every root of the new CA is trusted already', async () => {
    const { old, fresh } = await roots();
    const both = old.merge(fresh);
    const base = { longestRefreshDelayMs: HOUR_MS, defaultLifetimeMs: 24 * HOUR_MS, now: 1_000 };
    // A new intermediate under the same root.
    expect(planCaChange({ ...base, trusted: old, nextRoots: old })).toEqual({ kind: 'switch' });
    // The old root removed once the migration is over.
    expect(planCaChange({ ...base, trusted: both, nextRoots: fresh })).toEqual({ kind: 'switch' });
  });

  it('distributes a new root first, new roots first in the bundle, for the longest refresh delay plus a grace', async () => {
    const { old, fresh } = await roots();
    const plan = planCaChange({
      trusted: old,
      nextRoots: fresh.merge(old),
      longestRefreshDelayMs: 60_000,
      defaultLifetimeMs: 24 * HOUR_MS,
      now: 1_000,
    });
    if (plan.kind !== 'distribute') throw new Error(`expected a distribution, got ${plan.kind}`);
    expect(plan.roots.pem).toBe(fresh.pem + old.pem);
    expect(plan.added.map(r => r.fingerprint256)).toEqual([fresh.roots[0]!.fingerprint256]);
    expect(plan.since).toBe(1_000);
    expect(plan.waitMs).toBe(60_000 + DISTRIBUTION_GRACE_MIN_MS);
    // The new root alone (no old root in root-cert.pem): the old one is still distributed with it.
    const alone = planCaChange({
      trusted: old,
      nextRoots: fresh,
      longestRefreshDelayMs: 60_000,
      defaultLifetimeMs: 24 * HOUR_MS,
      now: 1_000,
    });
    expect(alone.kind === 'distribute' && alone.roots.pem).toBe(fresh.pem + old.pem);
  });

  it('assumes half the default lifetime when nothing was signed yet', async () => {
    const { old, fresh } = await roots();
    const plan = planCaChange({
      trusted: old,
      nextRoots: fresh,
      longestRefreshDelayMs: undefined,
      defaultLifetimeMs: 24 * HOUR_MS,
      now: 0,
    });
    expect(plan.kind === 'distribute' && plan.waitMs).toBe(12 * HOUR_MS + DISTRIBUTION_GRACE_MAX_MS);
  });

  it('keeps counting from the start of a distribution that already carries the new roots', async () => {
    const { old, fresh } = await roots();
    const distributing = { roots: fresh.merge(old), since: 500 };
    const base = { trusted: old, longestRefreshDelayMs: 60_000, defaultLifetimeMs: 24 * HOUR_MS, now: 9_000 };
    const same = planCaChange({ ...base, nextRoots: fresh, distributing });
    expect(same.kind === 'distribute' && same.since).toBe(500);
    const other = (await createTestCa()).trustBundle;
    const restarted = planCaChange({ ...base, nextRoots: other, distributing });
    expect(restarted.kind === 'distribute' && restarted.since).toBe(9_000);
  });
});

describe('distributionWaitMs', () => {
  it('is the refresh delay plus a tenth of it, the grace bounded both ways', () => {
    expect(distributionWaitMs(0)).toBe(DISTRIBUTION_GRACE_MIN_MS);
    expect(distributionWaitMs(HOUR_MS)).toBe(HOUR_MS + HOUR_MS / 10);
    expect(distributionWaitMs(24 * HOUR_MS)).toBe(24 * HOUR_MS + DISTRIBUTION_GRACE_MAX_MS);
  });
});
