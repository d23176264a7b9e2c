import { describe, expect, it } from 'vitest';
import { TRAFFIC_LABELS, trafficLabels } from './metrics.ts';

describe('trafficLabels', () => {
  it('fills every standard label, unknown for missing or empty values and - for no flags', () => {
    const labels = trafficLabels({ reporter: 'destination', source_workload: '', destination_app: 'echo' });
    expect(Object.keys(labels)).toEqual([...TRAFFIC_LABELS]);
    expect(labels.reporter).toBe('destination');
    expect(labels.source_workload).toBe('unknown');
    expect(labels.destination_app).toBe('echo');
    expect(labels.response_flags).toBe('-');
  });
});
