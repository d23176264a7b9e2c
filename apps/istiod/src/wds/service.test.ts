import { describe, expect, it } from 'vitest';
import { makeService } from '../testing/fixtures.ts';
import { buildService, loadBalancing } from './service.ts';
import { workload } from '@ambient-mesh/xds-types';

const {
  IPFamilies,
  LoadBalancing_HealthPolicy: HealthPolicy,
  LoadBalancing_Mode: LoadBalancingMode,
  LoadBalancing_Scope: S,
} = workload;

const inputs = { domain: 'cluster.local', waypoint: undefined };

describe('buildService', () => {
  it('maps hostname, VIPs, ports (named target → 0) and ip families', () => {
    const svc = makeService('web', 'ns1', {
      clusterIP: '10.96.0.1',
      clusterIPs: ['10.96.0.1', 'fd00::10'],
      ipFamilies: ['IPv4', 'IPv6'],
      ports: [{ port: 80, targetPort: 'http' }, { port: 443, targetPort: 8443 }, { port: 53 }],
    });
    expect(buildService(svc, inputs)).toEqual({
      name: 'web',
      namespace: 'ns1',
      hostname: 'web.ns1.svc.cluster.local',
      addresses: [
        { network: '', address: Uint8Array.from([10, 96, 0, 1]) },
        { network: '', address: Uint8Array.from([0xfd, 0, ...Array<number>(12).fill(0), 0, 0x10]) },
      ],
      ports: [
        { servicePort: 80, targetPort: 0 },
        { servicePort: 443, targetPort: 8443 },
        { servicePort: 53, targetPort: 53 },
      ],
      subjectAltNames: [],
      ipFamilies: IPFamilies.DUAL,
    });
  });

  it('gives a headless service no VIP and adds LoadBalancer ingress IPs', () => {
    expect(buildService(makeService('h', 'ns', { clusterIP: 'None', ports: [] }), inputs).addresses).toEqual(
      [],
    );
    const lb = makeService('lb', 'ns', {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.2',
      ipFamilies: ['IPv4'],
    });
    const withIngress = {
      ...lb,
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { hostname: 'x' }] } },
    };
    const svc = buildService(withIngress, inputs);
    expect((svc.addresses ?? []).map(a => Array.from(a.address ?? []))).toEqual([
      [10, 96, 0, 2],
      [192, 0, 2, 1],
    ]);
    expect(svc.ipFamilies).toBe(IPFamilies.IPV4_ONLY);
  });

  it('carries the waypoint it is given', () => {
    const waypoint = {
      hostname: { namespace: 'ns', hostname: 'wp.ns.svc.cluster.local' },
      hboneMtlsPort: 15008,
    };
    expect(buildService(makeService('s', 'ns', {}), { ...inputs, waypoint }).waypoint).toEqual(waypoint);
  });
});

describe('loadBalancing', () => {
  it.each([
    ['no policy', {}, {}, undefined],
    [
      'internalTrafficPolicy Local wins over distribution',
      { internalTrafficPolicy: 'Local', trafficDistribution: 'PreferClose' },
      {},
      {
        routingPreference: [S.NODE],
        mode: LoadBalancingMode.STRICT,
        healthPolicy: HealthPolicy.ONLY_HEALTHY,
      },
    ],
    [
      'PreferClose',
      { trafficDistribution: 'PreferClose' },
      {},
      { routingPreference: [S.NETWORK, S.REGION, S.ZONE], mode: LoadBalancingMode.FAILOVER, healthPolicy: 0 },
    ],
    [
      'PreferSameNode from the annotation',
      {},
      { 'networking.istio.io/traffic-distribution': 'PreferSameNode' },
      {
        routingPreference: [S.NETWORK, S.REGION, S.ZONE, S.SUBZONE, S.NODE],
        mode: LoadBalancingMode.FAILOVER,
        healthPolicy: 0,
      },
    ],
    [
      'publishNotReadyAddresses alone',
      { publishNotReadyAddresses: true },
      {},
      {
        routingPreference: [],
        mode: LoadBalancingMode.UNSPECIFIED_MODE,
        healthPolicy: HealthPolicy.ALLOW_ALL,
      },
    ],
  ])('%s', (_n, spec, annotations, expected) => {
    const svc = makeService('s', 'ns', spec);
    expect(loadBalancing({ ...svc, metadata: { ...svc.metadata, annotations } })).toEqual(expected);
  });
});
