/**
 * Differences of our istiod's waypoint config from upstream istiod's (the oracle) that are
 * understood and accepted, each with its reason; docs/compatibility.md ("The waypoint
 * differential check") explains them. `waypoint-differential.test.ts` fails on any other.
 * Paths are those of `diffNormalized` over the test's projections: `xds/…`, `wds/…`,
 * `status/…`, `shape/…`.
 */
import type { SnapshotDifference } from '../xds-client/normalize.ts';
import type { KnownDifference } from './known-differences.ts';

const PROXY = 'shape/deployment/containers/istio-proxy';

export const KNOWN_WAYPOINT_DIFFERENCES: readonly KnownDifference[] = [
  {
    id: 'waypoint-proxy-process',
    reason:
      "the generated Deployment runs our waypoint (apps/waypoint), not istio-proxy's pilot-agent " +
      'and Envoy: its own arguments and environment (XDS_ADDRESS, XDS_ROOT_CA, …), and only the ' +
      "istio-ca token and istiod's root mounted; no agent/Envoy scratch volumes, no SDS socket, " +
      'no pod-info volume (it asks the CA itself and reads its identity from the env)',
    matches: d =>
      new RegExp(`^${PROXY}/(args|env|volumeMounts)(\\[\\d+\\])?$`).test(d.path) ||
      /^shape\/deployment\/volumes(\[\d+\])?$/.test(d.path),
  },
  {
    id: 'waypoint-startup-probe',
    reason:
      'no startupProbe: our waypoint turns ready after its first xDS sync and certificate, which ' +
      "on the loaded 2-core test machines can take longer than upstream's 31 s startup budget; a " +
      'restart then starts over. The readiness probe (same path, port, period and threshold) gates traffic',
    matches: d => d.path === `${PROXY}/startupProbe` && d.left === undefined,
  },
];

/** The differences no entry above explains. */
export function undocumentedWaypointDifferences(
  differences: readonly SnapshotDifference[],
): SnapshotDifference[] {
  return differences.filter(d => !KNOWN_WAYPOINT_DIFFERENCES.some(k => k.matches(d)));
}
