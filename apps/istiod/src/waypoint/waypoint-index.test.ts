import { fromStruct } from '@ambient-mesh/xds-types';
import { describe, expect, it } from 'vitest';
import { makeAuthorizationPolicy, makeNamespace, makeService, makeWaypoint } from '../testing/fixtures.ts';
import {
  makeBackendPod,
  makeBoundService,
  makeDestinationRule,
  makeHttpRoute,
  makeReferenceGrant,
  makeWaypointGateway,
} from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import type { EndpointSlice, Gateway, Service } from '../kube/objects.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { WaypointKinds as K, type WaypointIndex } from './waypoint-index.ts';

const RC = EnvoyTypeUrls.routeConfiguration;
const CL = EnvoyTypeUrls.cluster;
const reviews = 'inbound-vip|80|http|reviews.ns1.svc.cluster.local';

/**
 * The waypoint index as istiod runs it: fed beside the WDS index, whose bindings say which
 * Services each waypoint serves. Reads go to the waypoint index; writes go to both.
 */
type Indexed = Pick<WaypointIndex, 'resourcesFor' | 'routeStatus' | 'issues' | 'onChange'> &
  Pick<ReturnType<typeof waypointIndexes>, 'upsert' | 'delete' | 'bindings'>;

function indexed(): Indexed {
  const h = waypointIndexes();
  const w = h.waypoints;
  return {
    upsert: h.upsert,
    delete: h.delete,
    bindings: h.bindings,
    resourcesFor: (wp, typeUrl) => w.resourcesFor(wp, typeUrl),
    routeStatus: (kind, key) => w.routeStatus(kind, key),
    issues: (kind, key) => w.issues(kind, key),
    onChange: listener => w.onChange(listener),
  };
}

/** A waypoint whose HBONE listener admits every namespace (for cross-namespace binding). */
function openWaypoint(name: string, namespace: string): Gateway {
  const gw = makeWaypointGateway(name, namespace);
  return {
    ...gw,
    spec: {
      ...gw.spec,
      listeners: gw.spec.listeners.map(l => ({ ...l, allowedRoutes: { namespaces: { from: 'All' } } })),
    },
  };
}

/** Two waypoints: wp1 serves reviews and ratings (ns1), wp2 serves details (ns2). */
function setup(): Indexed {
  const idx = indexed();
  idx.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
  idx.upsert(K.GATEWAY, makeWaypointGateway('wp2', 'ns2'));
  idx.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
  idx.upsert(K.SERVICE, makeBoundService('ratings', 'ns1', 'wp1', '10.96.0.11'));
  idx.upsert(K.SERVICE, makeBoundService('details', 'ns2', 'wp2', '10.96.0.12'));
  idx.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5', { version: 'v1' }));
  idx.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.6', { version: 'v2' }));
  idx.upsert(K.POD, makeBackendPod('details', 'ns2', '10.244.1.5'));
  return idx;
}

function routes(
  idx: Indexed,
  wp: string,
  name = reviews,
): { name: string; route?: Record<string, unknown>; directResponse?: unknown }[] {
  const r = idx.resourcesFor(wp, RC).get(name);
  if (r === undefined) throw new Error(`no route configuration ${name} for ${wp}`);
  const cfg = decodeEnvoy(EnvoyType.routeConfiguration, r.value) as { virtualHosts: { routes: never[] }[] };
  return cfg.virtualHosts[0]!.routes;
}

describe('WaypointIndex', () => {
  it('programs a waypoint with a filter chain, route configuration, cluster and endpoints per bound Service port', () => {
    const idx = setup();
    const listeners = idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener);
    expect([...listeners.keys()].sort()).toEqual(['connect_terminate', 'main_internal']);
    const main = decodeEnvoy(EnvoyType.listener, listeners.get('main_internal')!.value) as {
      filterChains: { name: string }[];
    };
    expect(main.filterChains.map(c => c.name)).toEqual([
      'inbound-vip|80|http|ratings.ns1.svc.cluster.local',
      reviews,
    ]);
    expect([...idx.resourcesFor('ns1/wp1', CL).keys()].sort()).toEqual([
      'inbound-vip|80|http|ratings.ns1.svc.cluster.local',
      reviews,
      'main_internal',
    ]);
    const cla = decodeEnvoy(
      EnvoyType.clusterLoadAssignment,
      idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.clusterLoadAssignment).get(reviews)!.value,
    ) as {
      endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: unknown } } }[] }[];
    };
    expect(cla.endpoints[0]!.lbEndpoints.map(e => e.endpoint.address.socketAddress)).toEqual([
      { address: '10.244.0.5', portValue: 15008 },
      { address: '10.244.0.6', portValue: 15008 },
    ]);
    // Upstream's workload metadata and the identity the endpoint's ztunnel presents.
    const meta = (
      cla.endpoints[0]!.lbEndpoints[0] as unknown as { metadata: { filterMetadata: { istio: unknown } } }
    ).metadata.filterMetadata.istio;
    expect(fromStruct(meta as never)).toEqual({
      workload: 'reviews-10-244-0-5;ns1;reviews;v1;Kubernetes',
      identity: 'spiffe://cluster.local/ns/ns1/sa/default',
    });
    expect(routes(idx, 'ns1/wp1').map(r => r.name)).toEqual(['default']);
    // wp2 knows nothing of ns1's Services.
    expect(idx.resourcesFor('ns2/wp2', RC).has(reviews)).toBe(false);
  });

  it('takes the endpoints of a selector-less Service from its EndpointSlices: pods over HBONE, other addresses plainly', () => {
    const idx = setup();
    const bound = makeBoundService('manual', 'ns1', 'wp1', '10.96.0.20');
    const selectorless: Service = { ...bound, spec: { ...bound.spec, selector: undefined } };
    idx.upsert(K.SERVICE, selectorless);
    const manual = 'inbound-vip|80|http|manual.ns1.svc.cluster.local';
    const endpoints = (): [unknown, boolean][] => {
      const r = idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.clusterLoadAssignment).get(manual);
      if (r === undefined) throw new Error(`no ClusterLoadAssignment ${manual}`);
      const cla = decodeEnvoy(EnvoyType.clusterLoadAssignment, r.value) as {
        endpoints?: {
          lbEndpoints: {
            endpoint: { address: { socketAddress: unknown } };
            metadata?: { filterMetadata?: { tunnel?: unknown } };
          }[];
        }[];
      };
      return (cla.endpoints ?? []).flatMap(l =>
        l.lbEndpoints.map(
          e =>
            [e.endpoint.address.socketAddress, e.metadata?.filterMetadata?.tunnel !== undefined] as [
              unknown,
              boolean,
            ],
        ),
      );
    };
    expect(endpoints()).toEqual([]);
    const slice: EndpointSlice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'manual-1', namespace: 'ns1', labels: { 'kubernetes.io/service-name': 'manual' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.244.0.5'] }, { addresses: ['192.0.2.4'] }],
    };
    const change = idx.upsert(K.ENDPOINT_SLICE, slice);
    expect(change.waypoints.has('ns1/wp1')).toBe(true);
    expect(endpoints()).toEqual([
      [{ address: '10.244.0.5', portValue: 15008 }, true],
      [{ address: '192.0.2.4', portValue: 8080 }, false],
    ]);
  });

  it('recomputes only the waypoint a route change affects, and nothing when nothing changed', () => {
    const idx = setup();
    const seen: string[][] = [];
    idx.onChange(c => seen.push([...c.waypoints]));
    const route = makeHttpRoute('r1', 'ns1', {
      service: 'reviews',
      rules: [{ backendRefs: [{ name: 'ratings', port: 80 }] }],
    });
    const change = idx.upsert(K.HTTP_ROUTE, route);
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    expect([...change.changes.get(RC)!]).toEqual([reviews]);
    expect(routes(idx, 'ns1/wp1').map(r => r.name)).toEqual(['ns1.r1.0']);
    expect(idx.upsert(K.HTTP_ROUTE, route).waypoints.size).toBe(0);
    expect(seen).toEqual([['ns1/wp1']]);
  });

  it('reports BackendNotFound for a missing Service, still programs the route, and leaves other routes alone', () => {
    const idx = setup();
    idx.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('good', 'ns1', {
        service: 'ratings',
        rules: [{ backendRefs: [{ name: 'ratings', port: 80 }] }],
      }),
    );
    const before = idx
      .resourcesFor('ns1/wp1', RC)
      .get('inbound-vip|80|http|ratings.ns1.svc.cluster.local')!.version;
    idx.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('bad', 'ns1', {
        service: 'reviews',
        rules: [{ backendRefs: [{ name: 'nope', port: 80 }] }],
      }),
    );
    const status = idx.routeStatus('HTTPRoute', 'ns1/bad')!;
    expect(status[0]!.conditions).toContainEqual(
      expect.objectContaining({ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound' }),
    );
    expect(status[0]!.conditions).toContainEqual(
      expect.objectContaining({ type: 'Accepted', status: 'True' }),
    );
    expect(routes(idx, 'ns1/wp1')[0]!.directResponse).toEqual({ status: 500 });
    expect(
      idx.resourcesFor('ns1/wp1', RC).get('inbound-vip|80|http|ratings.ns1.svc.cluster.local')!.version,
    ).toBe(before);
  });

  it('refuses a cross-namespace backend without a ReferenceGrant (RefNotPermitted) and accepts it with one', () => {
    const idx = setup();
    idx.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('x', 'ns1', {
        service: 'reviews',
        rules: [{ backendRefs: [{ name: 'details', namespace: 'ns2', port: 80 }] }],
      }),
    );
    expect(idx.routeStatus('HTTPRoute', 'ns1/x')![0]!.conditions[1]).toMatchObject({
      status: 'False',
      reason: 'RefNotPermitted',
    });
    expect(idx.resourcesFor('ns1/wp1', CL).has('inbound-vip|80|http|details.ns2.svc.cluster.local')).toBe(
      false,
    );
    idx.upsert(K.REFERENCE_GRANT, makeReferenceGrant('allow-ns1', 'ns2', 'ns1'));
    expect(idx.routeStatus('HTTPRoute', 'ns1/x')![0]!.conditions[1]).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
    });
    expect(routes(idx, 'ns1/wp1')[0]!.route!.cluster).toBe(
      'inbound-vip|80|http|details.ns2.svc.cluster.local',
    );
    expect(idx.resourcesFor('ns1/wp1', CL).has('inbound-vip|80|http|details.ns2.svc.cluster.local')).toBe(
      true,
    );
  });

  it('never programs a route with an invalid regex, reports it, and keeps the other routes', () => {
    const idx = setup();
    idx.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('ok', 'ns1', {
        service: 'reviews',
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/ok' } }],
            backendRefs: [{ name: 'reviews', port: 80 }],
          },
        ],
      }),
    );
    const regex = makeHttpRoute('re', 'ns1', {
      service: 'reviews',
      rules: [
        {
          matches: [{ path: { type: 'RegularExpression', value: '/(' } }],
          backendRefs: [{ name: 'reviews', port: 80 }],
        },
      ],
    });
    idx.upsert(K.HTTP_ROUTE, regex);
    expect(routes(idx, 'ns1/wp1').map(r => r.name)).toEqual(['ns1.ok.0']);
    expect(idx.issues('HTTPRoute', 'ns1/re')?.[0]?.path).toBe('spec.rules[0].matches[0].path.value');
    expect(idx.routeStatus('HTTPRoute', 'ns1/re')![0]!.conditions[0]).toMatchObject({
      type: 'Accepted',
      status: 'False',
      reason: 'UnsupportedValue',
    });
  });

  it('applies a DestinationRule to the clusters of its host, subsets included, only on the waypoints that use it', () => {
    const idx = setup();
    idx.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('split', 'ns1', {
        service: 'reviews',
        rules: [{ backendRefs: [{ name: 'reviews', port: 80 }] }],
      }),
    );
    const change = idx.upsert(
      K.DESTINATION_RULE,
      makeDestinationRule('reviews', 'ns1', {
        host: 'reviews.ns1.svc.cluster.local',
        trafficPolicy: {
          loadBalancer: { simple: 'LEAST_REQUEST' },
          connectionPool: { tcp: { maxConnections: 10 } },
        },
        subsets: [{ name: 'v2', labels: { version: 'v2' } }],
      }),
    );
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    const c = decodeEnvoy(EnvoyType.cluster, idx.resourcesFor('ns1/wp1', CL).get(reviews)!.value);
    expect(c.lbPolicy).toBe('LEAST_REQUEST');
    expect(
      (c.circuitBreakers as { thresholds: { maxConnections: number }[] }).thresholds[0]!.maxConnections,
    ).toBe(10);
  });

  it('adds the fault filter to the chain of a Service whose VirtualService injects faults, with the fault on the route', () => {
    const idx = setup();
    const chainFilters = (): string[] => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
      const chain = main.filterChains.find(c => c.name === reviews)!;
      const hcm = unpackTyped(chain.filters[0]!.typedConfig) as { httpFilters: { name: string }[] };
      return hcm.httpFilters.map(f => f.name);
    };
    expect(chainFilters()).toEqual(['envoy.filters.http.router']);
    idx.upsert(K.VIRTUAL_SERVICE, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'faulty', namespace: 'ns1', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        hosts: ['reviews.ns1.svc.cluster.local'],
        http: [
          {
            fault: {
              abort: { httpStatus: 503, percentage: { value: 10 } },
              delay: { fixedDelay: '500ms', percentage: { value: 100 } },
            },
            route: [{ destination: { host: 'reviews.ns1.svc.cluster.local' } }],
          },
        ],
      },
    } as never);
    expect(chainFilters()).toEqual(['envoy.filters.http.fault', 'envoy.filters.http.router']);
    const [route] = routes(idx, 'ns1/wp1') as { typedPerFilterConfig?: Record<string, unknown> }[];
    expect(unpackTyped(route!.typedPerFilterConfig!['envoy.filters.http.fault'])).toEqual({
      delay: {
        fixedDelay: { nanos: 500_000_000 },
        percentage: { numerator: 1_000_000, denominator: 'MILLION' },
      },
      abort: { httpStatus: 503, percentage: { numerator: 100_000, denominator: 'MILLION' } },
    });
  });

  it('programs circuit breakers and outlier detection from a DestinationRule (the resilience scenarios’ values)', () => {
    const idx = setup();
    idx.upsert(
      K.DESTINATION_RULE,
      makeDestinationRule('reviews', 'ns1', {
        host: 'reviews.ns1.svc.cluster.local',
        trafficPolicy: {
          connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } },
          outlierDetection: {
            consecutive5xxErrors: 3,
            interval: '2s',
            baseEjectionTime: '2m',
            maxEjectionPercent: 50,
          },
        },
      }),
    );
    const c = decodeEnvoy(EnvoyType.cluster, idx.resourcesFor('ns1/wp1', CL).get(reviews)!.value);
    expect((c.circuitBreakers as { thresholds: unknown[] }).thresholds[0]).toMatchObject({
      maxConnections: 1,
      maxPendingRequests: 1,
    });
    expect(c.outlierDetection).toEqual({
      consecutive_5xx: 3,
      enforcingConsecutive_5xx: 100,
      interval: { seconds: 2 },
      baseEjectionTime: { seconds: 120 },
      maxEjectionPercent: 50,
      enforcingSuccessRate: 0,
    });
  });

  it('puts AuthorizationPolicies with targetRefs into the RBAC filters of the waypoint’s chains', () => {
    const idx = setup();
    const change = idx.upsert(
      K.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('deny-post', 'ns1', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      }),
    );
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    const main = decodeEnvoy(
      EnvoyType.listener,
      idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
    ) as {
      filterChains: { name: string; filters: { typedConfig: unknown }[] }[];
    };
    const chain = main.filterChains.find(c => c.name === reviews)!;
    const hcm = unpackTyped(chain.filters[0]!.typedConfig) as {
      httpFilters: { name: string; typedConfig: unknown }[];
    };
    expect(hcm.httpFilters.map(f => f.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    const rbac = unpackTyped(hcm.httpFilters[0]!.typedConfig) as {
      rules: { action: string; policies: Record<string, unknown> };
    };
    expect(rbac.rules.action).toBe('DENY');
    expect(Object.keys(rbac.rules.policies)).toEqual(['ns[ns1]-policy[deny-post]-rule[0]']);
    // The other Service's chain has no RBAC filter.
    const other = unpackTyped(main.filterChains.find(c => c.name !== reviews)!.filters[0]!.typedConfig) as {
      httpFilters: { name: string }[];
    };
    expect(other.httpFilters.map(f => f.name)).toEqual(['envoy.filters.http.router']);
  });

  it('puts an AUDIT policy with targetRefs into an RBAC LOG filter ahead of the DENY filter', () => {
    const idx = setup();
    idx.upsert(
      K.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('deny-post', 'ns1', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      }),
    );
    const change = idx.upsert(
      K.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('audit-all', 'ns1', {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp1' }],
        action: 'AUDIT',
        rules: [{}],
      }),
    );
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    const main = decodeEnvoy(
      EnvoyType.listener,
      idx.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
    ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
    const hcm = unpackTyped(main.filterChains.find(c => c.name === reviews)!.filters[0]!.typedConfig) as {
      httpFilters: { name: string; typedConfig: unknown }[];
    };
    const actions = hcm.httpFilters
      .filter(f => f.name === 'envoy.filters.http.rbac')
      .map(f => (unpackTyped(f.typedConfig) as { rules: { action?: string; policies: object } }).rules);
    expect(actions.map(r => r.action ?? 'ALLOW')).toEqual(['LOG', 'DENY']);
    expect(Object.keys(actions[0]!.policies)).toEqual(['ns[ns1]-policy[audit-all]-rule[0]']);
  });

  it('applies a root-namespace policy that targets the istio-waypoint GatewayClass to every waypoint', () => {
    const idx = setup();
    const rbacFilters = (wp: string): string[] => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        idx.resourcesFor(wp, EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as {
        filterChains: { filters: { typedConfig: unknown }[] }[];
      };
      const hcm = unpackTyped(main.filterChains[0]!.filters[0]!.typedConfig) as {
        httpFilters: { name: string }[];
      };
      return hcm.httpFilters.map(f => f.name);
    };
    const policy = (ns: string) =>
      makeAuthorizationPolicy('all-waypoints', ns, {
        targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
      });
    expect(idx.upsert(K.AUTHORIZATION_POLICY, policy('ns1')).waypoints.size).toBe(0);
    const change = idx.upsert(K.AUTHORIZATION_POLICY, policy('istio-system'));
    expect([...change.waypoints].sort()).toEqual(['ns1/wp1', 'ns2/wp2']);
    expect(rbacFilters('ns2/wp2')).toEqual(['envoy.filters.http.rbac', 'envoy.filters.http.router']);
  });

  it('binds a namespace’s Services through its use-waypoint label, recomputing only the waypoints involved', () => {
    const idx = setup();
    idx.upsert(K.GATEWAY, openWaypoint('wp1', 'ns1'));
    idx.upsert(K.GATEWAY, openWaypoint('wp2', 'ns2'));
    idx.upsert(
      K.SERVICE,
      makeService('orders', 'ns3', {
        clusterIP: '10.96.0.20',
        selector: { app: 'orders' },
        ports: [{ name: 'http', port: 80 }],
      }),
    );
    expect(idx.upsert('Namespace', makeNamespace('ns3')).waypoints.size).toBe(0);
    const bound = idx.upsert(
      'Namespace',
      makeNamespace('ns3', { 'istio.io/use-waypoint': 'wp2', 'istio.io/use-waypoint-namespace': 'ns2' }),
    );
    expect([...bound.waypoints]).toEqual(['ns2/wp2']);
    expect(idx.resourcesFor('ns2/wp2', RC).has('inbound-vip|80|http|orders.ns3.svc.cluster.local')).toBe(
      true,
    );
    // Another label on the namespace changes nothing.
    expect(
      idx.upsert(
        'Namespace',
        makeNamespace('ns3', {
          'istio.io/use-waypoint': 'wp2',
          'istio.io/use-waypoint-namespace': 'ns2',
          team: 'a',
        }),
      ).waypoints.size,
    ).toBe(0);
    const moved = idx.upsert(
      'Namespace',
      makeNamespace('ns3', { 'istio.io/use-waypoint': 'wp1', 'istio.io/use-waypoint-namespace': 'ns1' }),
    );
    expect([...moved.waypoints].sort()).toEqual(['ns1/wp1', 'ns2/wp2']);
    expect(idx.resourcesFor('ns2/wp2', RC).has('inbound-vip|80|http|orders.ns3.svc.cluster.local')).toBe(
      false,
    );
  });

  it('serves a Service only once WDS binds it (its waypoint has an address) and stops when WDS unbinds it', () => {
    const idx = setup();
    const chain = 'inbound-vip|80|http|orders.ns3.svc.cluster.local';
    // No status address yet: WDS says WaypointIsNotReady, and the waypoint serves nothing.
    idx.upsert(K.GATEWAY, makeWaypoint('wp3', 'ns3'));
    idx.upsert(K.SERVICE, makeBoundService('orders', 'ns3', 'wp3', '10.96.0.30'));
    expect(idx.bindings.waypointOf('service', 'ns3/orders')).toBeUndefined();
    expect(idx.resourcesFor('ns3/wp3', RC).size).toBe(0);
    const ready = idx.upsert(K.GATEWAY, makeWaypointGateway('wp3', 'ns3'));
    expect([...ready.waypoints]).toEqual(['ns3/wp3']);
    expect(idx.bindings.waypointOf('service', 'ns3/orders')).toBe('ns3/wp3');
    expect(idx.resourcesFor('ns3/wp3', RC).has(chain)).toBe(true);
    // `none` on the Service opts it out: WDS unbinds it, the waypoint drops its chain.
    const optOut = makeService(
      'orders',
      'ns3',
      { clusterIP: '10.96.0.30', selector: { app: 'orders' }, ports: [{ name: 'http', port: 80 }] },
      { 'istio.io/use-waypoint': 'none' },
    );
    const gone = idx.upsert(K.SERVICE, optOut);
    expect([...gone.waypoints]).toEqual(['ns3/wp3']);
    expect(idx.resourcesFor('ns3/wp3', RC).has(chain)).toBe(false);
  });

  it('reports each computed route status, and the route’s deletion', () => {
    const events: string[] = [];
    const h = waypointIndexes({
      onRouteStatus: (kind, key, parents) =>
        events.push(`${kind} ${key} ${parents.map(p => p.conditions[1]!.reason).join()}`),
      onRouteDeleted: (kind, key) => events.push(`deleted ${kind} ${key}`),
    });
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    const route = makeHttpRoute('r1', 'ns1', {
      service: 'reviews',
      rules: [{ backendRefs: [{ name: 'nope', port: 80 }] }],
    });
    h.upsert(K.HTTP_ROUTE, route);
    h.delete(K.HTTP_ROUTE, route);
    expect(events).toEqual(['HTTPRoute ns1/r1 BackendNotFound', 'deleted HTTPRoute ns1/r1']);
  });

  it('reports a route on a Service no waypoint serves, its ResolvedWaypoints saying why, as upstream', () => {
    const statuses: string[] = [];
    const h = waypointIndexes({
      onRouteStatus: (kind, key, parents) =>
        statuses.push(
          `${kind} ${key} ${parents.map(p => p.conditions.map(c => `${c.type}=${c.status} ${c.message}`).join('; ')).join()}`,
        ),
    });
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    const plain = makeService('reviews', 'ns1', {
      clusterIP: '10.96.0.10',
      selector: { app: 'reviews' },
      ports: [{ name: 'http', port: 80 }],
    });
    h.upsert(K.SERVICE, plain);
    h.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('r1', 'ns1', {
        service: 'reviews',
        rules: [{ backendRefs: [{ name: 'reviews', port: 80 }] }],
      }),
    );
    const missing =
      'ResolvedWaypoints=True istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected';
    expect(statuses).toEqual([
      `HTTPRoute ns1/r1 Accepted=True Route was valid; ResolvedRefs=True All references resolved; ${missing}`,
    ]);
    // Unrelated events write nothing new.
    h.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.7'));
    expect(statuses).toHaveLength(1);
    // Bound: the waypoint resolves the route.
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    expect(statuses.at(-1)).toContain('ResolvedWaypoints=True All waypoints resolved');
    // Unbound again: the message comes back.
    h.upsert(K.SERVICE, plain);
    expect(statuses.at(-1)).toContain(missing);
  });

  it('updates endpoints when a backend pod changes, and withdraws everything when the waypoint is deleted', () => {
    const idx = setup();
    const change = idx.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.7'));
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    expect([...change.changes.get(EnvoyTypeUrls.clusterLoadAssignment)!]).toEqual([reviews]);
    const gone = idx.delete(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    expect([...gone.changes.get(RC)!].sort()).toEqual([
      'inbound-vip|80|http|ratings.ns1.svc.cluster.local',
      reviews,
    ]);
    expect(idx.resourcesFor('ns1/wp1', RC).size).toBe(0);
  });
});
