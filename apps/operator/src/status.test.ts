import { describe, expect, it } from 'vitest';
import {
  componentStatus,
  daemonSetReadiness,
  daemonSetReady,
  deploymentReadiness,
  istioStatus,
  istiodReady,
  mergeConditions,
  stateOf,
} from './status.ts';

const NOW = new Date('2026-01-02T03:04:05.678Z');

describe('readiness conditions', () => {
  it('DaemonSet: Sail’s DaemonSetNotReady messages, then Healthy', () => {
    expect(daemonSetReady(daemonSetReadiness(undefined), 'ztunnel')).toMatchObject({
      status: 'False',
      reason: 'DaemonSetNotReady',
      message: 'ztunnel DaemonSet not found',
    });
    expect(daemonSetReady(daemonSetReadiness({ desiredNumberScheduled: 0 }), 'ztunnel').message).toBe(
      'no ztunnel pods scheduled',
    );
    expect(
      daemonSetReady(daemonSetReadiness({ desiredNumberScheduled: 2, numberReady: 1 }), 'istio-cni').message,
    ).toBe('not all istio-cni pods are ready');
    expect(
      daemonSetReady(daemonSetReadiness({ desiredNumberScheduled: 2, numberReady: 2 }), 'ztunnel'),
    ).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'Healthy',
    });
  });

  it('istiod: IstiodNotReady until every replica is ready', () => {
    expect(istiodReady(deploymentReadiness({ replicas: 0 })).reason).toBe('IstiodNotReady');
    expect(istiodReady(deploymentReadiness({ replicas: 1, readyReplicas: 1 })).status).toBe('True');
  });
});

describe('status', () => {
  it('state is the reason of the first unhealthy condition', () => {
    expect(
      stateOf([
        { type: 'Reconciled', status: 'True', reason: 'Healthy' },
        { type: 'Ready', status: 'False', reason: 'DaemonSetNotReady' },
      ]),
    ).toBe('DaemonSetNotReady');
    expect(
      stateOf([
        { type: 'Reconciled', status: 'False', reason: 'InvalidValues' },
        { type: 'Ready', status: 'False', reason: 'X' },
      ]),
    ).toBe('InvalidValues');
    expect(
      stateOf([
        { type: 'Reconciled', status: 'True' },
        { type: 'Ready', status: 'True' },
      ]),
    ).toBe('Healthy');
  });

  it('keeps lastTransitionTime while a status holds, truncated to seconds', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'False' }], NOW);
    expect(first[0]?.lastTransitionTime).toBe('2026-01-02T03:04:05Z');
    const later = new Date(NOW.getTime() + 60_000);
    expect(mergeConditions(first, [{ type: 'Ready', status: 'False' }], later)[0]?.lastTransitionTime).toBe(
      '2026-01-02T03:04:05Z',
    );
    expect(mergeConditions(first, [{ type: 'Ready', status: 'True' }], later)[0]?.lastTransitionTime).toBe(
      '2026-01-02T03:05:05Z',
    );
  });

  it('an InvalidValues outcome shows on Reconciled and in state', () => {
    const s = componentStatus(
      3,
      undefined,
      { ok: false, reason: 'InvalidValues', message: 'invalid values: spec.values.ztunnel.x: unknown field' },
      daemonSetReady(daemonSetReadiness({ desiredNumberScheduled: 1, numberReady: 1 }), 'ztunnel'),
      NOW,
    );
    expect(s.observedGeneration).toBe(3);
    expect(s.state).toBe('InvalidValues');
    expect(s.conditions?.[0]).toMatchObject({
      type: 'Reconciled',
      status: 'False',
      message: expect.stringContaining('spec.values.ztunnel.x'),
    });
  });

  it('Istio counts revisions and takes Ready from the active one', () => {
    const s = istioStatus(
      1,
      undefined,
      { ok: true },
      'default',
      [
        { name: 'default', ready: true, inUse: true },
        { name: 'old', ready: false, inUse: false },
      ],
      NOW,
    );
    expect(s).toMatchObject({
      activeRevisionName: 'default',
      revisions: { total: 2, ready: 1, inUse: 1 },
      state: 'Healthy',
    });
    expect(istioStatus(1, undefined, { ok: true }, 'missing', [], NOW).state).toBe('ActiveRevisionNotFound');
  });
});
