import { describe, expect, it } from 'vitest';
import { CNI_VALUES, ISTIO_VALUES, ZTUNNEL_VALUES, checkValues, invalidValuesMessage } from './values.ts';

describe('checkValues', () => {
  it('accepts the documented ambient install values', () => {
    expect(checkValues({ pilot: { trustedZtunnelNamespace: 'ztunnel' } }, ISTIO_VALUES)).toEqual([]);
    expect(checkValues({ cni: { ambient: { enabled: true, dnsCapture: true } } }, CNI_VALUES)).toEqual([]);
    expect(
      checkValues({ ztunnel: { terminationGracePeriodSeconds: 60, env: { A: 'b' } } }, ZTUNNEL_VALUES),
    ).toEqual([]);
  });

  it('accepts anything inside free-form subtrees (meshConfig)', () => {
    expect(
      checkValues(
        { meshConfig: { discoverySelectors: [{ matchLabels: { a: 'b' } }], anything: 1 } },
        ISTIO_VALUES,
      ),
    ).toEqual([]);
  });

  it('accepts no values and null leaves', () => {
    expect(checkValues(undefined, ISTIO_VALUES)).toEqual([]);
    expect(checkValues({ global: { hub: null } }, ISTIO_VALUES)).toEqual([]);
  });

  it('names an unknown field by its full path', () => {
    expect(checkValues({ pilot: { trustedZtunnelNamespaces: 'ztunnel' } }, ISTIO_VALUES)).toEqual([
      { path: 'spec.values.pilot.trustedZtunnelNamespaces', problem: 'unknown field' },
    ]);
  });

  it('names a misplaced field (a ztunnel value on an IstioCNI)', () => {
    expect(checkValues({ ztunnel: { logLevel: 'debug' } }, CNI_VALUES)).toEqual([
      { path: 'spec.values.ztunnel', problem: 'unknown field' },
    ]);
  });

  it('names a field of the wrong type', () => {
    expect(
      checkValues({ ztunnel: { terminationGracePeriodSeconds: '30s', env: { A: 1 } } }, ZTUNNEL_VALUES),
    ).toEqual([
      { path: 'spec.values.ztunnel.terminationGracePeriodSeconds', problem: 'expected integer' },
      { path: 'spec.values.ztunnel.env', problem: 'expected map of strings' },
    ]);
  });

  it('formats the condition message with every problem', () => {
    expect(
      invalidValuesMessage([
        { path: 'spec.values.a', problem: 'unknown field' },
        { path: 'spec.values.b', problem: 'expected string' },
      ]),
    ).toBe('invalid values: spec.values.a: unknown field; spec.values.b: expected string');
  });
});
