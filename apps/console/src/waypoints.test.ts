import { describe, expect, it } from 'vitest';
import { sampleSnapshot } from './testing/fixtures.ts';
import { waypointViews } from './waypoints.ts';

describe('waypointViews', () => {
  it('lists each waypoint with its Programmed condition, its proxies and what it serves, labelled by what binds it', () => {
    const [wp, ...rest] = waypointViews(sampleSnapshot());
    expect(rest).toEqual([]);
    expect(wp).toMatchObject({
      namespace: 'sample',
      name: 'waypoint',
      waypointFor: 'service',
      programmed: { status: 'True', reason: 'Programmed' },
      pods: 1,
      readyPods: 1,
    });
    expect(wp!.services).toEqual([{ namespace: 'sample', name: 'echo', labelledBy: 'service' }]);
    expect(wp!.workloads).toEqual([
      { namespace: 'sample', name: 'echo', kind: 'Deployment', pods: 1, labelledBy: 'service' },
    ]);
  });

  it('enrols by the namespace label unless a service or workload opts out with none', () => {
    const base = sampleSnapshot();
    const snap = {
      ...base,
      namespaces: base.namespaces.map(n =>
        n.metadata.name === 'sample'
          ? {
              metadata: {
                ...n.metadata,
                labels: { ...n.metadata.labels, 'istio.io/use-waypoint': 'waypoint' },
              },
            }
          : n,
      ),
      services: base.services.map(s =>
        s.metadata.name === 'client'
          ? { ...s, metadata: { ...s.metadata, labels: { 'istio.io/use-waypoint': 'none' } } }
          : s,
      ),
    };
    const wp = waypointViews(snap)[0]!;
    expect(wp.services.map(s => `${s.name}:${s.labelledBy}`)).toEqual(['echo:service']);
    // client's service opts out, but the pod itself still follows the namespace's label.
    expect(wp.workloads.map(w => `${w.name}:${w.labelledBy}`)).toEqual(['client:namespace', 'echo:service']);
  });
});
