import { describe, expect, it } from 'vitest';
import { eventObject, transitions } from './events.ts';

describe('events', () => {
  it('one transition per condition whose status or reason changed; Warning when Ready or Reconciled turns False', () => {
    const first = transitions(undefined, {
      conditions: [
        { type: 'Reconciled', status: 'True', reason: 'Healthy' },
        {
          type: 'Ready',
          status: 'False',
          reason: 'IstiodNotReady',
          message: 'not all istiod pods are ready',
        },
      ],
    });
    expect(first).toEqual([
      { type: 'Normal', reason: 'Healthy', message: 'Reconciled is True' },
      { type: 'Warning', reason: 'IstiodNotReady', message: 'Ready is False: not all istiod pods are ready' },
    ]);
    const previous = {
      conditions: [
        { type: 'Reconciled', status: 'True' as const, reason: 'Healthy' },
        { type: 'Ready', status: 'False' as const, reason: 'IstiodNotReady' },
        { type: 'InUse', status: 'True' as const, reason: 'ReferencedByWorkloads' },
      ],
    };
    expect(
      transitions(previous, {
        conditions: [
          { type: 'Reconciled', status: 'True', reason: 'Healthy' },
          { type: 'Ready', status: 'True', reason: 'Healthy' },
          { type: 'InUse', status: 'False', reason: 'NotReferencedByAnything' },
        ],
      }),
    ).toEqual([
      { type: 'Normal', reason: 'Healthy', message: 'Ready is True (was False)' },
      { type: 'Normal', reason: 'NotReferencedByAnything', message: 'InUse is False (was True)' },
    ]);
    expect(transitions(previous, previous)).toEqual([]);
  });

  it('the Event names the CR (cluster-scoped: written in default) and the operator as its source', () => {
    const e = eventObject(
      'Istio',
      { name: 'default', uid: 'u1' },
      { type: 'Normal', reason: 'Healthy', message: 'Ready is True' },
      new Date('2026-01-02T03:04:05.678Z'),
      'op-0',
    );
    expect(e).toMatchObject({
      metadata: { generateName: 'default.', namespace: 'default' },
      involvedObject: { apiVersion: 'sailoperator.io/v1', kind: 'Istio', name: 'default', uid: 'u1' },
      reason: 'Healthy',
      type: 'Normal',
      source: { component: 'ambient-mesh-operator' },
      reportingInstance: 'op-0',
      firstTimestamp: '2026-01-02T03:04:05Z',
      count: 1,
    });
  });
});
