import { describe, expect, it } from 'vitest';
import { waypointPolicyCondition, type PolicyTargetLookup } from './policy-binding.ts';

const lookup: PolicyTargetLookup = {
  rootNamespace: 'istio-system',
  gatewayClassOf: key => ({ 'ns1/waypoint': 'istio-waypoint', 'ns1/ingress': 'istio' })[key],
  service: key =>
    ({
      'ns1/bound': { waypoint: 'ns1/waypoint' },
      'ns1/unbound': { waypoint: undefined },
    })[key],
  serviceEntry: key => ({ 'ns1/egress': { waypoint: 'ns1/waypoint' } })[key],
};

function policy(namespace: string, spec: Record<string, unknown>, generation = 3): unknown {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'p', namespace, generation },
    spec,
  };
}

const svc = (name: string) => ({ kind: 'Service', group: '', name });

describe('WaypointAccepted on AuthorizationPolicies with targetRefs (upstream’s reasons and messages)', () => {
  it('says nothing for a selector policy', () => {
    expect(waypointPolicyCondition(policy('ns1', { selector: { matchLabels: { app: 'a' } } }), lookup)).toBe(
      undefined,
    );
  });

  it('accepts a Service bound to a waypoint, a waypoint Gateway, a ServiceEntry and the waypoint class', () => {
    expect(waypointPolicyCondition(policy('ns1', { targetRefs: [svc('bound')] }), lookup)).toEqual({
      status: 'True',
      reason: 'Accepted',
      message: 'bound to ns1/waypoint',
      observedGeneration: 3,
    });
    expect(
      waypointPolicyCondition(
        policy('ns1', {
          targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' },
        }),
        lookup,
      ),
    ).toMatchObject({ status: 'True', reason: 'Accepted', message: 'bound to ns1/waypoint' });
    expect(
      waypointPolicyCondition(
        policy('ns1', {
          targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: 'egress' }],
        }),
        lookup,
      ),
    ).toMatchObject({ status: 'True', message: 'bound to ns1/waypoint' });
    expect(
      waypointPolicyCondition(
        policy('istio-system', {
          targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }],
        }),
        lookup,
      ),
    ).toMatchObject({ status: 'True', reason: 'Accepted', message: 'bound to istio-waypoint' });
  });

  it('refuses a missing or unbound Service, a non-waypoint Gateway and a GatewayClass outside the root namespace', () => {
    expect(waypointPolicyCondition(policy('ns1', { targetRefs: [svc('missing')] }), lookup)).toMatchObject({
      status: 'False',
      reason: 'TargetNotFound',
      message: 'Service ns1/missing was not found',
    });
    expect(waypointPolicyCondition(policy('ns1', { targetRefs: [svc('unbound')] }), lookup)).toMatchObject({
      status: 'False',
      reason: 'AncestorNotBound',
      message: 'Service ns1/unbound is not bound to a waypoint',
    });
    expect(
      waypointPolicyCondition(policy('ns1', { targetRefs: [{ kind: 'Gateway', name: 'ingress' }] }), lookup),
    ).toMatchObject({ status: 'False', reason: 'TargetNotFound', message: 'not bound' });
    expect(
      waypointPolicyCondition(
        policy('ns1', { targetRefs: [{ kind: 'GatewayClass', name: 'istio-waypoint' }] }),
        lookup,
      ),
    ).toMatchObject({
      status: 'False',
      reason: 'Invalid',
      message:
        'AuthorizationPolicy must be in the root namespace `istio-system` when referencing a GatewayClass',
    });
  });

  it('flattens several targets: True if any is bound, PartiallyInvalid naming the others; Invalid when none is', () => {
    expect(
      waypointPolicyCondition(
        policy('ns1', { targetRefs: [svc('bound'), svc('missing'), svc('unbound')] }),
        lookup,
      ),
    ).toEqual({
      status: 'True',
      reason: 'PartiallyInvalid',
      message: 'Invalid targetRefs: Service.core:ns1/missing, Service.core:ns1/unbound',
      observedGeneration: 3,
    });
    expect(
      waypointPolicyCondition(
        policy('ns1', { targetRefs: [svc('bound'), { kind: 'Gateway', name: 'waypoint' }] }),
        lookup,
      ),
    ).toMatchObject({ status: 'True', reason: 'Accepted', message: '' });
    expect(
      waypointPolicyCondition(policy('ns1', { targetRefs: [svc('missing'), svc('unbound')] }), lookup),
    ).toMatchObject({ status: 'False', reason: 'Invalid' });
  });
});
