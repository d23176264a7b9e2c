import { describe, expect, it } from 'vitest';
import { parseSyncz, proxyStatusRows, shortType, syncState } from './sync-status.ts';
import { TypeUrl } from './type-urls.ts';

describe("istiod's /debug/syncz and the per-type sync state", () => {
  it('states: SYNCED when the last send is ACKed, STALE when not yet, NOT SENT, ERROR on a NACK', () => {
    expect(syncState({ sent: 'a', acked: 'a' })).toBe('SYNCED');
    expect(syncState({ sent: 'b', acked: 'a' })).toBe('STALE');
    expect(syncState({})).toBe('NOT SENT');
    expect(syncState({ sent: 'b', acked: 'a', lastError: 'bad listener' })).toBe('ERROR');
    expect(shortType(TypeUrl.listener)).toBe('LDS');
    expect(shortType(TypeUrl.address)).toBe('WDS');
  });

  it('parses a body into entries, rows without debug clients, and rejects what is not a list', () => {
    const entries = parseSyncz(
      JSON.stringify([
        {
          proxy: 'waypoint-1.sample',
          proxy_type: 'waypoint',
          resources: { [TypeUrl.cluster]: { sent: 'x' } },
        },
        { proxy: 'istioctl.istio-system', proxy_type: 'sidecar', resources: { 'istio.io/debug/syncz': {} } },
      ]),
    );
    expect(entries).toHaveLength(2);
    expect(proxyStatusRows([{ istiod: 'istiod-0', entries: entries! }])).toEqual([
      {
        name: 'waypoint-1.sample',
        cluster: '',
        istiod: 'istiod-0',
        version: '',
        proxyType: 'waypoint',
        types: { CDS: 'STALE' },
      },
    ]);
    expect(parseSyncz('not json')).toBeUndefined();
    expect(parseSyncz('{"proxy":"x"}')).toBeUndefined();
  });
});
