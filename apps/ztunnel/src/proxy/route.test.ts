import { describe, expect, it } from 'vitest';
import type { workload } from '@ambient-mesh/xds-types';
import { createProxyState } from '../state/proxy-state.ts';
import type { Address } from '../state/types.ts';
import { ip4, serviceAddress as svc, workloadAddress as wl } from '../testing/wire-fixtures.ts';
import { inboundWaypointHop, routeOutbound } from './route.ts';

const SVC = 'default/svc-b.default.svc.cluster.local';

function world(...addresses: Address[]) {
  const { state, mutator } = createProxyState();
  const source = wl({ uid: 'src', name: 'pod-a', addresses: [ip4('10.0.0.1')], serviceAccount: 'sa-a' });
  mutator.applyAddresses([source, ...addresses], []);
  return { state, source: source.workload };
}

const podB = (overrides: Partial<workload.Workload> = {}) =>
  wl({ uid: 'b', name: 'pod-b', addresses: [ip4('10.0.0.2')], serviceAccount: 'sa-b', ...overrides });

describe('routeOutbound', () => {
  it('passes unknown IPs through as plain TCP', () => {
    const { state, source } = world();
    expect(routeOutbound(state, source, { address: '192.0.2.9', port: 80 })).toMatchObject({
      kind: 'passthrough',
      address: '192.0.2.9',
      port: 80,
    });
  });

  it('tunnels to podIP:15008 with the pod IP authority when the workload speaks HBONE', () => {
    const { state, source } = world(podB());
    expect(routeOutbound(state, source, { address: '10.0.0.2', port: 8080 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.2:15008',
      target: '10.0.0.2:8080',
      expectedIdentities: ['spiffe://cluster.local/ns/default/sa/sa-b'],
    });
  });

  it('uses plain TCP to a workload without HBONE', () => {
    const { state, source } = world(podB({ tunnelProtocol: 0 }));
    expect(routeOutbound(state, source, { address: '10.0.0.2', port: 8080 }).kind).toBe('passthrough');
  });

  it('resolves a service VIP to an endpoint, translating the port and adding the service SANs', () => {
    const { state, source } = world(
      svc({ subjectAltNames: ['spiffe://cluster.local/ns/default/sa/extra'] }),
      podB({ services: { [SVC]: { ports: [] } } }),
    );
    expect(routeOutbound(state, source, { address: '10.96.0.10', port: 80 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.2:15008',
      target: '10.0.0.2:8080',
      expectedIdentities: [
        'spiffe://cluster.local/ns/default/sa/extra',
        'spiffe://cluster.local/ns/default/sa/sa-b',
      ],
      service: { key: SVC },
    });
  });

  it('dials the endpoint address of the VIP family: IPv6 for an IPv6 VIP, IPv4 for an IPv4 one', () => {
    const v6 = (text: string): Uint8Array => {
      const out = new Uint8Array(16);
      const tail = text.split('::')[1] ?? '';
      out[0] = 0xfd;
      out[15] = parseInt(tail, 16);
      return out;
    };
    const { state, source } = world(
      svc({
        addresses: [
          { network: '', address: ip4('10.96.0.10') },
          { network: '', address: v6('fd00::a') },
        ],
        ipFamilies: 3,
      }),
      podB({ addresses: [ip4('10.0.0.2'), v6('fd00::2')], services: { [SVC]: { ports: [] } } }),
    );
    expect(routeOutbound(state, source, { address: 'fd00::a', port: 80 })).toMatchObject({
      kind: 'hbone',
      nextHop: '[fd00::2]:15008',
      target: '[fd00::2]:8080',
    });
    expect(routeOutbound(state, source, { address: '10.96.0.10', port: 80 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.2:15008',
      target: '10.0.0.2:8080',
    });
  });

  it('refuses a service without healthy endpoints unless the health policy allows all', () => {
    const unhealthy = podB({ status: 1, services: { [SVC]: { ports: [] } } });
    expect(
      routeOutbound(world(svc(), unhealthy).state, world(svc(), unhealthy).source, {
        address: '10.96.0.10',
        port: 80,
      }),
    ).toEqual({
      kind: 'reject',
      reason: 'no healthy upstream for svc-b.default.svc.cluster.local',
    });
    const lenient = world(
      svc({ loadBalancing: { routingPreference: [], mode: 0, healthPolicy: 1 } }),
      unhealthy,
    );
    expect(routeOutbound(lenient.state, lenient.source, { address: '10.96.0.10', port: 80 }).kind).toBe(
      'hbone',
    );
  });

  it('keeps STRICT node-local load balancing on the node', () => {
    const remote = wl({
      uid: 'r',
      name: 'pod-r',
      addresses: [ip4('10.0.1.2')],
      node: 'node-2',
      services: { [SVC]: { ports: [] } },
    });
    const local = podB({ services: { [SVC]: { ports: [] } } });
    const { state, source } = world(
      svc({ loadBalancing: { routingPreference: [4], mode: 1, healthPolicy: 0 } }),
      remote,
      local,
    );
    for (const random of [0, 0.5, 0.99]) {
      const route = routeOutbound(
        state,
        source,
        { address: '10.96.0.10', port: 80 },
        { random: () => random },
      );
      expect(route.kind === 'hbone' && route.workload.uid).toBe('b');
    }
  });

  it('sends pod-addressed traffic to the workload waypoint, except from the waypoint itself', () => {
    const waypoint = wl({
      uid: 'wp',
      name: 'waypoint',
      addresses: [ip4('10.0.0.9')],
      serviceAccount: 'waypoint',
    });
    const b = podB({
      waypoint: { address: { network: '', address: ip4('10.0.0.9') }, hboneMtlsPort: 15008 },
    });
    const { state, source } = world(waypoint, b);
    expect(routeOutbound(state, source, { address: '10.0.0.2', port: 8080 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.9:15008',
      target: '10.0.0.2:8080',
      expectedIdentities: ['spiffe://cluster.local/ns/default/sa/waypoint'],
      viaWaypoint: true,
    });
    expect(routeOutbound(state, waypoint.workload, { address: '10.0.0.2', port: 8080 })).toMatchObject({
      nextHop: '10.0.0.2:15008',
      viaWaypoint: false,
    });
  });

  it('sends service-addressed traffic to the service waypoint found by hostname', () => {
    const wpKey = 'default/waypoint.default.svc.cluster.local';
    const wpSvc = svc({
      name: 'waypoint',
      hostname: 'waypoint.default.svc.cluster.local',
      addresses: [{ network: '', address: ip4('10.96.0.99') }],
      ports: [{ servicePort: 15008, targetPort: 15008 }],
    });
    const wpPod = wl({
      uid: 'wp',
      name: 'waypoint-0',
      addresses: [ip4('10.0.0.9')],
      serviceAccount: 'waypoint',
      services: { [wpKey]: { ports: [] } },
    });
    const target = svc({
      waypoint: {
        hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
    });
    const { state, source } = world(wpSvc, wpPod, target);
    expect(routeOutbound(state, source, { address: '10.96.0.10', port: 80 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.9:15008',
      target: '10.96.0.10:80',
      viaWaypoint: true,
      service: { key: SVC },
    });
  });

  it('sends pod-IP traffic past a service waypoint straight to the pod (the bypass L4 policy must catch)', () => {
    const target = svc({
      waypoint: {
        hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
    });
    const { state, source } = world(target, podB());
    expect(routeOutbound(state, source, { address: '10.0.0.2', port: 8080 })).toMatchObject({
      kind: 'hbone',
      nextHop: '10.0.0.2:15008',
      target: '10.0.0.2:8080',
      viaWaypoint: false,
    });
  });

  it('tells inbound traffic from the service waypoint from traffic that bypassed it', () => {
    const wpKey = 'default/waypoint.default.svc.cluster.local';
    const wpSvc = svc({
      name: 'waypoint',
      hostname: 'waypoint.default.svc.cluster.local',
      addresses: [{ network: '', address: ip4('10.96.0.99') }],
      ports: [{ servicePort: 15008, targetPort: 15008 }],
    });
    const wpPod = wl({
      uid: 'wp',
      name: 'waypoint-0',
      addresses: [ip4('10.0.0.9')],
      serviceAccount: 'waypoint',
      services: { [wpKey]: { ports: [] } },
    });
    const target = svc({
      waypoint: {
        hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
    });
    const b = podB({ services: { [SVC]: { ports: [] } } });
    const { state, source } = world(wpSvc, wpPod, target, b);
    const waypointId = 'spiffe://cluster.local/ns/default/sa/waypoint';
    expect(inboundWaypointHop(state, b.workload, { identity: waypointId, addresses: ['10.0.0.9'] })).toBe(
      'from_waypoint',
    );
    expect(inboundWaypointHop(state, b.workload, source)).toBe('bypassed');
    // The waypoint's identity from another IP is not the waypoint.
    expect(inboundWaypointHop(state, b.workload, { identity: waypointId, addresses: ['10.0.0.7'] })).toBe(
      'bypassed',
    );
    // No waypoint anywhere: nothing to say.
    expect(inboundWaypointHop(world(podB()).state, b.workload, source)).toBeUndefined();
  });

  it('rejects calls to ztunnel ports on loopback or the pod itself', () => {
    const { state, source } = world();
    expect(routeOutbound(state, source, { address: '127.0.0.1', port: 15008 }).kind).toBe('reject');
    expect(routeOutbound(state, source, { address: '10.0.0.1', port: 15001 }).kind).toBe('reject');
  });
});
