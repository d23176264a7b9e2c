import { describe, expect, it } from 'vitest';
import type { Service } from '../kube/objects.ts';
import { makeService } from '../testing/fixtures.ts';
import { makeBackendPod, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { WaypointKinds as K, portProtocol, undeclaredProtocol } from './waypoint-index.ts';

const NS = 'shop';
const HOST = 'echo.shop.svc.cluster.local';

interface MainInternal {
  filterChains: {
    name: string;
    filterChainMatch: { destinationPort: number; applicationProtocols?: string[] };
    filters: { name: string; typedConfig: unknown }[];
  }[];
  listenerFilters?: { name: string; typedConfig: unknown }[];
  continueOnListenerFiltersTimeout?: boolean;
}

function service(ports: NonNullable<Service['spec']>['ports']): Service {
  return makeService(
    'echo',
    NS,
    { clusterIP: '10.96.1.1', clusterIPs: ['10.96.1.1'], selector: { app: 'echo' }, ports },
    { 'istio.io/use-waypoint': 'wp' },
  );
}

function mainInternal(svc: Service): MainInternal {
  const h = waypointIndexes();
  h.upsert(K.GATEWAY, makeWaypointGateway('wp', NS));
  h.upsert(K.SERVICE, svc);
  h.upsert(K.POD, makeBackendPod('echo', NS, '10.244.1.2'));
  return decodeEnvoy(
    EnvoyType.listener,
    h.waypoints.resourcesFor(`${NS}/wp`, EnvoyTypeUrls.listener).get('main_internal')!.value,
  ) as unknown as MainInternal;
}

describe('undeclared port protocols (upstream "auto")', () => {
  it('takes a port as undeclared only without a known appProtocol or name prefix', () => {
    expect(undeclaredProtocol('', undefined)).toBe(true);
    expect(undeclaredProtocol('web', undefined)).toBe(true);
    expect(undeclaredProtocol('echo-9000', undefined)).toBe(true);
    for (const name of [
      'http',
      'http-web',
      'http2-x',
      'grpc',
      'grpc-web',
      'tcp-x',
      'tls',
      'https',
      'mongo',
      'redis',
    ])
      expect(undeclaredProtocol(name, undefined), name).toBe(false);
    expect(undeclaredProtocol('web', 'http')).toBe(false);
    expect(undeclaredProtocol('web', 'kubernetes.io/h2c')).toBe(false);
    expect(undeclaredProtocol('http-web', 'custom.example/thing')).toBe(true);
    // The HTTP chain's own protocol is unchanged (http).
    expect(portProtocol('web', undefined)).toBe('http');
  });

  it('programs an HTTP chain matched on the plaintext HTTP ALPNs, a TCP chain, and http_inspector', () => {
    const main = mainInternal(service([{ name: 'web', port: 9000, targetPort: 9000 }]));
    expect(main.filterChains.map(c => c.name)).toEqual([
      `inbound-vip|9000|http|${HOST}`,
      `inbound-vip|9000|tcp|${HOST}`,
    ]);
    const [http, tcp] = main.filterChains;
    expect(http!.filterChainMatch.applicationProtocols).toEqual(['http/1.0', 'http/1.1', 'h2c']);
    expect(http!.filters.map(f => f.name)).toEqual(['envoy.filters.network.http_connection_manager']);
    expect(tcp!.filterChainMatch.destinationPort).toBe(9000);
    expect(tcp!.filterChainMatch.applicationProtocols ?? []).toEqual([]);
    expect(tcp!.filters.map(f => f.name)).toEqual(['envoy.filters.network.tcp_proxy']);
    // The TCP chain relays to the port's own (EDS) cluster.
    expect(unpackTyped(tcp!.filters[0]!.typedConfig)).toMatchObject({
      statPrefix: `inbound-vip|9000|tcp|${HOST}`,
      cluster: `inbound-vip|9000|http|${HOST}`,
    });
    expect(main.listenerFilters?.map(f => f.name)).toEqual(['envoy.filters.listener.http_inspector']);
    expect(main.continueOnListenerFiltersTimeout).toBe(true);
  });

  it('leaves declared ports as they were: one chain each, no application_protocols, no listener filter', () => {
    const main = mainInternal(
      service([
        { name: 'http-web', port: 80, targetPort: 80 },
        { name: 'tcp-echo', port: 9000, targetPort: 9000 },
        { name: 'anything', port: 9090, targetPort: 9090, appProtocol: 'grpc' },
      ]),
    );
    expect(main.filterChains.map(c => c.name)).toEqual([
      `inbound-vip|80|http|${HOST}`,
      `inbound-vip|9000|tcp|${HOST}`,
      `inbound-vip|9090|http|${HOST}`,
    ]);
    expect(main.filterChains.every(c => (c.filterChainMatch.applicationProtocols ?? []).length === 0)).toBe(
      true,
    );
    expect(main.listenerFilters ?? []).toEqual([]);
    expect(main.continueOnListenerFiltersTimeout ?? false).toBe(false);
  });
});
