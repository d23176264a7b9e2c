import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '@ambient-mesh/errors';
import { decodeZtunnelDump, parseZtunnelDump } from './ztunnel-dump.ts';

const fixture = readFileSync(new URL('./testdata/ztunnel-dump.json', import.meta.url), 'utf8');

describe('decodeZtunnelDump (upstream ztunnel 1.27 shape)', () => {
  it('reads workloads with workloadIps, protocol and the waypoint destination string', () => {
    const dump = parseZtunnelDump(fixture);
    const echo = dump.workloads.find(w => w.name.startsWith('echo'));
    expect(echo).toMatchObject({
      namespace: 'sample',
      workloadIps: ['10.244.2.7'],
      protocol: 'HBONE',
      node: 'worker-2',
      waypoint: 'sample/waypoint.sample.svc.cluster.local',
    });
  });

  it('reads services with net/ip vips, a ports map and an endpoints map', () => {
    const echo = parseZtunnelDump(fixture).services.find(s => s.name === 'echo');
    expect(echo?.vips).toEqual(['/10.96.20.30']);
    expect(echo?.ports).toEqual({ '8080': 8080 });
    expect(Object.values(echo?.endpoints ?? {})).toEqual([
      { workloadUid: 'Kubernetes//Pod/sample/echo-5f6b7-fghij', port: { '8080': 8080 }, status: 'Healthy' },
    ]);
  });

  it('reads certificates and the live connections of workloadState', () => {
    const dump = parseZtunnelDump(fixture);
    expect(dump.certificates[0]?.certChain[0]?.serialNumber).toBe('305419896');
    expect(dump.workloadState.find(s => s.name.startsWith('client'))?.outbound).toHaveLength(1);
  });

  it('refuses what is not a dump, saying what to check', () => {
    expect(() => decodeZtunnelDump({ hello: 1 })).toThrow(/not a ztunnel config dump.*15000/);
    expect(() => parseZtunnelDump('{', 'x.json')).toThrow(/x.json is not JSON/);
    try {
      parseZtunnelDump('[]');
    } catch (err) {
      expect(isMeshError(err, 'CLI_BAD_CONFIG_DUMP')).toBe(true);
    }
  });
});
