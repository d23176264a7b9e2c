import { describe, expect, it } from 'vitest';
import {
  authorization as policy,
  ip4,
  serviceAddress as service,
  workloadAddress as workload,
} from '../testing/wire-fixtures.ts';
import { createProxyState } from './proxy-state.ts';
import type { StateChange } from './proxy-state.ts';

const SVC_KEY = 'default/svc-b.default.svc.cluster.local';

describe('ProxyState', () => {
  it('indexes workloads by uid and by network/IP, and forgets old IPs on update', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses([workload()], []);
    expect(state.workloadByAddress('', '10.244.0.2')?.name).toBe('pod-a');
    mutator.applyAddresses([workload({ addresses: [ip4('10.244.0.9')] })], []);
    expect(state.workloadByAddress('', '10.244.0.2')).toBeUndefined();
    expect(state.workloadByAddress('', '10.244.0.9')?.uid).toBe('Kubernetes//Pod/default/pod-a');
    expect(state.workloadByUid('Kubernetes//Pod/default/pod-a')?.addresses).toEqual(['10.244.0.9']);
  });

  it('does not index host-network workloads by IP', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses([workload({ networkMode: 1 })], []);
    expect(state.workloadByAddress('', '10.244.0.2')).toBeUndefined();
  });

  it('derives service endpoints from the reverse index of Workload.services, in any arrival order', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses(
      [workload({ services: { [SVC_KEY]: { ports: [{ servicePort: 80, targetPort: 9090 }] } } })],
      [],
    );
    expect(state.endpoints(SVC_KEY).map(e => e.workload.name)).toEqual(['pod-a']);
    mutator.applyAddresses([service()], []);
    expect(state.serviceByVip('', '10.96.0.10')?.key).toBe(SVC_KEY);
    expect(state.servicesByHostname('svc-b.default.svc.cluster.local')).toHaveLength(1);
    expect(state.endpoints(SVC_KEY)[0]?.ports).toEqual([{ servicePort: 80, targetPort: 9090 }]);
    expect(state.snapshot().services[0]?.endpoints).toEqual(['Kubernetes//Pod/default/pod-a']);
  });

  it('removes workloads and services by resource name', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses([workload({ services: { [SVC_KEY]: { ports: [] } } }), service()], []);
    const change = mutator.applyAddresses([], ['Kubernetes//Pod/default/pod-a', SVC_KEY]);
    expect(change.workloadsRemoved.map(w => w.name)).toEqual(['pod-a']);
    expect(change.servicesChanged).toBe(true);
    expect(state.endpoints(SVC_KEY)).toEqual([]);
    expect(state.serviceByVip('', '10.96.0.10')).toBeUndefined();
    expect(state.servicesByHostname('svc-b.default.svc.cluster.local')).toEqual([]);
  });

  it('selects global, namespace and named selector policies for a workload', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAuthorizations(
      [
        policy({ name: 'ns-wide', scope: 1 }),
        policy({ name: 'global', namespace: 'istio-system', scope: 0 }),
        policy({ name: 'selected', scope: 2 }),
        policy({ name: 'not-selected', scope: 2 }),
        policy({ name: 'other-ns', namespace: 'other', scope: 1 }),
      ],
      [],
    );
    const a = workload({ authorizationPolicies: ['default/selected', 'default/unknown'] });
    expect(
      state
        .policiesFor(a.workload)
        .map(p => p.key)
        .sort(),
    ).toEqual(['default/ns-wide', 'default/selected', 'istio-system/global']);
    mutator.applyAuthorizations([], ['default/ns-wide']);
    expect(
      state
        .policiesFor(a.workload)
        .map(p => p.key)
        .sort(),
    ).toEqual(['default/selected', 'istio-system/global']);
  });

  it('notifies listeners after commit and lets them unsubscribe while notified', () => {
    const { state, mutator } = createProxyState();
    const seen: StateChange[] = [];
    const unsubscribe = state.subscribe(change => {
      seen.push(change);
      expect(state.policyByKey('default/deny-b')).toBeDefined();
      unsubscribe();
    });
    mutator.applyAuthorizations([policy()], []);
    mutator.applyAuthorizations([], ['default/deny-b']);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.policiesChanged).toBe(true);
    expect(state.generation).toBe(2);
  });

  it('finds the node-local workload of a ZDS pod by name, namespace and service account', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses([workload(), workload({ uid: 'other-node', node: 'node-2' })], []);
    expect(
      state.findLocalWorkload('node-1', { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' })?.uid,
    ).toBe('Kubernetes//Pod/default/pod-a');
    expect(
      state.findLocalWorkload('node-1', { name: 'pod-a', namespace: 'default', serviceAccount: 'other' }),
    ).toBeUndefined();
    expect(state.workloadsOnNode('node-2').map(w => w.uid)).toEqual(['other-node']);
  });
});
