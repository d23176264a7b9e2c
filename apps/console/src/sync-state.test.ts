import { describe, expect, it } from 'vitest';
import { readSyncState, waypointSync } from './sync-state.ts';
import { sampleSnapshot } from './testing/fixtures.ts';
import { recordedSyncz } from './testing/sources.ts';

describe('waypoint xDS sync state', () => {
  it("reads each Running istiod's /debug/syncz and gives the waypoint's proxy its state per type", async () => {
    const state = await readSyncState(sampleSnapshot(), 'istio-system', recordedSyncz());
    expect(state.istiods).toEqual(['istiod-7d9f8b6c5-x1']);
    expect(state.errors).toEqual([]);
    // The debug client (istioctl's own stream) is not a proxy.
    expect(state.rows.map(r => r.name)).toEqual(['waypoint-7d9f8b6c5-x1.sample', 'ztunnel-a.istio-system']);
    const view = waypointSync(['waypoint-7d9f8b6c5-x1', 'waypoint-7d9f8b6c5-x2'], 'sample', state);
    expect(view.error).toBeUndefined();
    expect(view.proxies).toEqual([
      {
        pod: 'waypoint-7d9f8b6c5-x1',
        connected: true,
        istiod: 'istiod-7d9f8b6c5-x1',
        types: { CDS: 'SYNCED', LDS: 'SYNCED', RDS: 'STALE', EDS: 'SYNCED' },
      },
      // A second replica no istiod lists yet.
      { pod: 'waypoint-7d9f8b6c5-x2', connected: false, istiod: undefined, types: {} },
    ]);
  });

  it('says why when istiod does not answer, answers garbage, or does not run', async () => {
    const refused = await readSyncState(sampleSnapshot(), 'istio-system', () =>
      Promise.reject(new Error('connection refused')),
    );
    expect(refused.errors[0]?.message).toContain('connection refused');
    expect(refused.errors[0]?.message).toContain('pods/portforward');
    expect(waypointSync(['w'], 'sample', refused).error?.code).toBe('CONSOLE_SYNC_UNAVAILABLE');

    const garbage = await readSyncState(sampleSnapshot(), 'istio-system', () => Promise.resolve('<html>'));
    expect(garbage.errors[0]?.message).toContain('not a list of sync states');

    const snap = sampleSnapshot();
    const none = await readSyncState(
      { ...snap, pods: snap.pods.filter(p => p.metadata.labels?.['app'] !== 'istiod') },
      'istio-system',
      recordedSyncz(),
    );
    expect(waypointSync(['w'], 'sample', none).error?.message).toContain('no istiod pod runs');
  });
});
