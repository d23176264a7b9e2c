/**
 * Differences between our istiod and upstream istiod (the oracle) that are understood and
 * accepted, each with its reason. docs/compatibility.md explains them at length.
 * The differential test fails on any difference not matched here.
 */
import type { SnapshotDifference } from '../xds-client/normalize.ts';

export interface KnownDifference {
  readonly id: string;
  readonly reason: string;
  matches(difference: SnapshotDifference): boolean;
}

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    id: 'serviceentry-none-passthrough',
    reason:
      'for a ServiceEntry with resolution NONE the oracle (a 1.30 build) sets load_balancing ' +
      '{mode: PASSTHROUGH, health_policy: ALLOW_ALL}; PASSTHROUGH is not in the 1.27 workload API ' +
      '(our 1.27 proto decodes it as mode 3) and a 1.27 ztunnel does not know it, so our istiod ' +
      'leaves load_balancing unset, as 1.27 istiod could only do',
    matches: d =>
      /^addresses\/[^/]+\/[^/]+\/service\/loadBalancing(\/.*)?$/.test(d.path) &&
      d.left === undefined &&
      JSON.stringify(d.right) === JSON.stringify({ healthPolicy: 'ALLOW_ALL', mode: 'UNKNOWN(3)' }),
  },
];
