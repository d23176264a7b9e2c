import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BAGGAGE_LENGTH, buildBaggage, parseBaggage } from './baggage.ts';
import type { Baggage } from './baggage.ts';
import { HboneInvalidHeaderError } from './errors.ts';

describe('baggage', () => {
  it('builds the header ztunnel sends, with empty values as key=', () => {
    expect(
      buildBaggage({
        clusterId: 'Kubernetes',
        namespace: 'default',
        workloadType: 'deployment',
        workloadName: 'sleep',
        serviceName: 'sleep',
        serviceVersion: 'v1',
      }),
    ).toBe(
      'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep,' +
        'service.name=sleep,service.version=v1,cloud.region=,cloud.availability_zone=',
    );
  });

  it('parses known keys, ignores unknown ones, drops properties and treats empty values as unset', () => {
    const parsed = parseBaggage(
      'k8s.cluster.name=c1, k8s.namespace.name=ns;prop=1,k8s.cronjob.name=nightly,service.name=,other=x,cloud.region=eu',
    );
    expect(parsed).toEqual({
      ok: true,
      baggage: {
        clusterId: 'c1',
        namespace: 'ns',
        workloadType: 'cronjob',
        workloadName: 'nightly',
        region: 'eu',
      },
    });
  });

  it.each([
    ['no equals sign', 'k8s.cluster.name'],
    ['bad key', 'k e y=v'],
    ['comma-free quote in value', 'service.name=a"b'],
    ['bad percent-encoding', 'service.name=%zz'],
    ['too long', `service.name=${'a'.repeat(MAX_BAGGAGE_LENGTH)}`],
    ['too many members', Array.from({ length: 100 }, (_, i) => `k${i}=v`).join(',')],
  ])('rejects a malformed header: %s', (_name, header) => {
    expect(parseBaggage(header).ok).toBe(false);
  });

  it('refuses a workload type it does not know', () => {
    expect(() => buildBaggage({ workloadType: 'daemonset' as Baggage['workloadType'] })).toThrow(
      HboneInvalidHeaderError,
    );
  });

  it('round-trips arbitrary values through build and parse (fuzz)', () => {
    const value = fc.option(fc.string({ maxLength: 40, unit: 'grapheme' }), { nil: undefined });
    fc.assert(
      fc.property(
        value,
        value,
        fc.constantFrom('deployment', 'cronjob', 'pod', 'job' as const),
        value,
        value,
        value,
        value,
        (clusterId, namespace, workloadType, workloadName, serviceName, region, zone) => {
          const input: Baggage = {
            clusterId,
            namespace,
            workloadType,
            workloadName,
            serviceName,
            region,
            zone,
          };
          const parsed = parseBaggage(buildBaggage(input));
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          const expected = Object.fromEntries(
            Object.entries(input).filter(([k, v]) => v !== undefined && v !== '' && k !== 'workloadType'),
          );
          if (workloadName !== undefined && workloadName !== '') expected.workloadType = workloadType;
          expect(parsed.baggage).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary input (fuzz)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), header => {
        const parsed = parseBaggage(header);
        expect(typeof parsed.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
