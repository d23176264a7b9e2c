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
    id: 'endpointslice-workloads',
    reason:
      'upstream also turns EndpointSlice endpoints that have no Pod behind them (here the apiserver ' +
      'endpoint of Service default/kubernetes) into Workloads named ' +
      '<cluster>/discovery.k8s.io/EndpointSlice/<ns>/<slice>/<ip>; our istiod does not watch EndpointSlices yet',
    matches: d =>
      d.left === undefined &&
      /^addresses\/[^/]*\/discovery\.k8s\.io\/EndpointSlice\/[^/]+\/[^/]+\/[^/]+$/.test(d.path),
  },
];
