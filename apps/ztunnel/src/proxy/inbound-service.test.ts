import { describe, expect, it } from 'vitest';
import { createProxyState } from '../state/proxy-state.ts';
import type { Workload } from '../state/types.ts';
import { ip4, serviceAddress, workloadAddress } from '../testing/wire-fixtures.ts';
import { guessInboundService } from './inbound-service.ts';

const REVIEWS = 'default/reviews.default.svc.cluster.local';
const RATINGS = 'default/ratings.default.svc.cluster.local';

function setup(): { state: ReturnType<typeof createProxyState>['state']; pod: Workload } {
  const { state, mutator } = createProxyState();
  const pod = workloadAddress({
    name: 'pod-b',
    uid: 'Kubernetes//Pod/default/pod-b',
    // reviews:80 → the Service's target port 9080; ratings:80 → this pod's own override 9090.
    services: { [REVIEWS]: { ports: [] }, [RATINGS]: { ports: [{ servicePort: 80, targetPort: 9090 }] } },
  });
  mutator.applyAddresses(
    [
      pod,
      serviceAddress({
        name: 'reviews',
        hostname: 'reviews.default.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.20') }],
        ports: [{ servicePort: 80, targetPort: 9080 }],
      }),
      serviceAddress({
        name: 'ratings',
        hostname: 'ratings.default.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.21') }],
        ports: [{ servicePort: 80, targetPort: 8080 }],
      }),
      serviceAddress({
        name: 'other',
        hostname: 'other.default.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.22') }],
      }),
    ],
    [],
  );
  return { state, pod: pod.workload };
}

describe('guessInboundService', () => {
  it("takes the forwarded host when it is one of the destination workload's services", () => {
    const { state, pod } = setup();
    expect(guessInboundService(state, pod, 'ratings.default.svc.cluster.local', 9080)?.key).toBe(RATINGS);
  });

  it("ignores a forwarded host that is not one of the workload's services and falls back to the port", () => {
    const { state, pod } = setup();
    expect(guessInboundService(state, pod, 'other.default.svc.cluster.local', 9080)?.key).toBe(REVIEWS);
  });

  it("matches the port through the workload's own target-port override", () => {
    const { state, pod } = setup();
    expect(guessInboundService(state, pod, undefined, 9090)?.key).toBe(RATINGS);
  });

  it('returns undefined when no service of the workload targets the port', () => {
    const { state, pod } = setup();
    expect(guessInboundService(state, pod, undefined, 7000)).toBeUndefined();
  });
});
