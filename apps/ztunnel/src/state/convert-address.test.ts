import { describe, expect, it } from 'vitest';
import { workload } from '@ambient-mesh/xds-types';
import { ip4, unknownEnum, wireService, wireWorkload } from '../testing/wire-fixtures.ts';
import { convertAddress, convertService, convertWorkload } from './convert-address.ts';

describe('convertWorkload', () => {
  it('fills upstream defaults and derives the SPIFFE identity', () => {
    const result = convertWorkload(wireWorkload({ trustDomain: '', serviceAccount: '', clusterId: '' }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.identity).toBe('spiffe://cluster.local/ns/default/sa/default');
    expect(result.value.clusterId).toBe('Kubernetes');
    expect(result.value.addresses).toEqual(['10.244.0.2']);
    expect(result.value.tunnelProtocol).toBe('HBONE');
    expect(result.value.workloadType).toBe('pod');
  });

  it('renders 16-byte addresses in compressed IPv6 form', () => {
    const v6 = new Uint8Array(16);
    v6[0] = 0xfd;
    v6[15] = 1;
    const result = convertWorkload(wireWorkload({ addresses: [v6] }));
    expect(result.ok && result.value.addresses).toEqual(['fd00::1']);
  });

  it('collects every problem with its field path', () => {
    const result = convertWorkload(
      wireWorkload({
        uid: '',
        addresses: [Uint8Array.of(1, 2, 3)],
        tunnelProtocol: unknownEnum(workload.TunnelProtocol, 7),
        waypoint: { hboneMtlsPort: 70_000 },
        services: {
          'no-slash': { ports: [] },
          'default/svc': { ports: [{ servicePort: 0, targetPort: 1 }] },
        },
      }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      'workload.uid: required',
      'workload.addresses[0]: an IP must be 4 or 16 bytes, got 3',
      'workload.tunnelProtocol: unknown enum value 7',
      'workload.waypoint.hboneMtlsPort: port 70000 out of range 1..65535',
      'workload.waypoint: a gateway needs a hostname or an address',
      'workload.services["no-slash"]: key must be "<namespace>/<hostname>"',
      'workload.services["default/svc"].ports[0].servicePort: port 0 out of range 1..65535',
    ]);
  });

  it('rejects a workload with neither addresses nor hostname', () => {
    const result = convertWorkload(wireWorkload({ addresses: [], hostname: '' }));
    expect(!result.ok && result.problems).toEqual([
      'workload.addresses: a workload needs addresses or a hostname',
    ]);
  });
});

describe('convertService', () => {
  it('keys the service by namespace/hostname and keeps VIPs and load balancing', () => {
    const result = convertService(
      wireService({ loadBalancing: { routingPreference: [6, 1, 2], mode: 2, healthPolicy: 1 } }),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.key).toBe('default/svc-b.default.svc.cluster.local');
    expect(result.value.addresses).toEqual([{ network: '', address: '10.96.0.10' }]);
    expect(result.value.loadBalancing).toEqual({
      routingPreference: ['NETWORK', 'REGION', 'ZONE'],
      mode: 'FAILOVER',
      healthPolicy: 'ALLOW_ALL',
    });
  });
});

describe('convertAddress', () => {
  it('requires the resource name to match the workload uid', () => {
    const result = convertAddress('other', { workload: wireWorkload() });
    expect(result.ok).toBe(false);
  });

  it('accepts a service named <namespace>/<hostname>', () => {
    const result = convertAddress('default/svc-b.default.svc.cluster.local', { service: wireService() });
    expect(result.ok && result.value.kind).toBe('service');
  });

  it('rejects an empty Address', () => {
    expect(convertAddress('x', {})).toEqual({
      ok: false,
      problems: ['type: an Address must hold a workload or a service'],
    });
  });

  it('accepts a workload addressed by gateway IP', () => {
    const result = convertAddress('Kubernetes//Pod/default/pod-a', {
      workload: wireWorkload({
        waypoint: { address: { network: 'n1', address: ip4('10.0.0.9') }, hboneMtlsPort: 15008 },
      }),
    });
    expect(result.ok && result.value.kind === 'workload' && result.value.workload.waypoint).toEqual({
      destination: { kind: 'address', network: 'n1', address: '10.0.0.9' },
      hboneMtlsPort: 15008,
    });
  });
});
