import { describe, expect, it } from 'vitest';
import { RouteAttachments } from '../gateway/route-status.ts';
import type { KubeObject, Service, ServiceEntry } from '../kube/objects.ts';
import { makeService } from '../testing/fixtures.ts';
import { makeBackendPod, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import type { RouteParentStatus } from './resolve-route.ts';
import { tcpProxyConfig, tcpRouteClusters, tcpRouteRule } from './translate-tcp-route.ts';
import type { RouteRule } from './types.ts';
import { validateTcpRoute } from './validate-route.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const NS = 'shop';
const ECHO = 'inbound-vip|9000|tcp|echo.shop.svc.cluster.local';
const V1 = 'inbound-vip|9000|tcp|echo-v1.shop.svc.cluster.local';
const V2 = 'inbound-vip|9000|tcp|echo-v2.shop.svc.cluster.local';

function tcpService(name: string, ip: string, labels: Record<string, string> = {}, ns = NS): Service {
  return makeService(
    name,
    ns,
    {
      clusterIP: ip,
      clusterIPs: [ip],
      selector: { app: name },
      ports: [{ name: 'tcp-echo', port: 9000, targetPort: 9000 }],
    },
    labels,
  );
}

function tcpRoute(
  name: string,
  parentRefs: readonly object[],
  backendRefs: readonly object[],
  created = '2026-01-01T00:00:00Z',
): KubeObject & { spec: unknown } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1alpha2',
    kind: 'TCPRoute',
    metadata: { name, namespace: NS, generation: 2, creationTimestamp: created },
    spec: { parentRefs, rules: [{ backendRefs }] },
  };
}

const echoParent = { group: '', kind: 'Service', name: 'echo', port: 9000 };

function rule(backends: readonly [string, number][], unresolvedWeight = 0): RouteRule {
  return {
    name: 'r',
    matches: [],
    filters: [],
    backends: backends.map(([name, weight]) => ({ service: { namespace: NS, name }, port: 9000, weight })),
    unresolvedWeight,
  };
}

interface TcpProxy {
  cluster?: string;
  weightedClusters?: { clusters: { name: string; weight: number }[] };
}

interface Chain {
  name: string;
  filters: { typedConfig: TcpProxy }[];
}

function setup() {
  const statuses = new Map<string, readonly RouteParentStatus[]>();
  const h = waypointIndexes({
    onRouteStatus: (kind, key, parents) => statuses.set(`${kind}/${key}`, parents),
  });
  h.upsert(K.GATEWAY, makeWaypointGateway('wp', NS));
  h.upsert(K.SERVICE, tcpService('echo', '10.96.1.1', { 'istio.io/use-waypoint': 'wp' }));
  h.upsert(K.SERVICE, tcpService('echo-v1', '10.96.1.2'));
  h.upsert(K.SERVICE, tcpService('echo-v2', '10.96.1.3'));
  h.upsert(K.POD, makeBackendPod('echo-v1', NS, '10.244.1.2'));
  h.upsert(K.POD, makeBackendPod('echo-v2', NS, '10.244.1.3'));
  const chain = (name = ECHO): Chain => {
    const main = decodeEnvoy(
      EnvoyType.listener,
      h.waypoints.resourcesFor(`${NS}/wp`, EnvoyTypeUrls.listener).get('main_internal')!.value,
    ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
    const c = main.filterChains.find(x => x.name === name)!;
    return { name: c.name, filters: [{ typedConfig: unpackTyped(c.filters[0]!.typedConfig) }] };
  };
  return { h, statuses, chain };
}

describe('TCPRoute translation (pure)', () => {
  const clusterFor = (t: { service: { name: string }; port: number }) =>
    `inbound-vip|${t.port}|tcp|${t.service.name}`;

  it('keeps weights as written, drops zero weights, and gives an unresolved share to BackendNotFound', () => {
    expect(
      tcpRouteClusters(
        rule([
          ['a', 80],
          ['b', 20],
          ['c', 0],
        ]),
        9000,
        clusterFor,
      ),
    ).toEqual([
      { name: 'inbound-vip|9000|tcp|a', weight: 80 },
      { name: 'inbound-vip|9000|tcp|b', weight: 20 },
    ]);
    expect(tcpRouteClusters(rule([['a', 3]], 1), 9000, clusterFor)).toEqual([
      { name: 'inbound-vip|9000|tcp|a', weight: 3 },
      { name: 'BackendNotFound', weight: 1 },
    ]);
  });

  it('takes the first rule of the oldest TCPRoute (no matches to choose by)', () => {
    const route = (name: string, created: string, backend: string) => ({
      route: {
        kind: 'TCPRoute' as const,
        namespace: NS,
        name,
        generation: 1,
        creationTimestamp: created,
        parentRefs: [],
        hostnames: [],
        rules: [],
      },
      rules: [rule([[backend, 1]]), rule([['never', 1]])],
      parents: [],
    });
    const picked = tcpRouteRule([
      route('b', '2026-02-01T00:00:00Z', 'newer'),
      route('a', '2026-01-01T00:00:00Z', 'older'),
    ]);
    expect(picked?.backends[0]?.service.name).toBe('older');
    expect(tcpRouteRule([])).toBeUndefined();
  });

  it('refuses every connection when no backend has weight (upstream’s zero-weight destination)', () => {
    const clusters = tcpRouteClusters(rule([['a', 0]]), 9000, clusterFor);
    expect(clusters).toEqual([{ name: 'BackendNotFound', weight: 1 }]);
    expect(tcpProxyConfig(ECHO, clusters)).toEqual({ statPrefix: ECHO, cluster: 'BackendNotFound' });
  });

  it('emits one backend as a plain cluster, several as weighted_clusters, none as the chain’s own cluster', () => {
    expect(tcpProxyConfig(ECHO, undefined)).toEqual({ statPrefix: ECHO, cluster: ECHO });
    expect(tcpProxyConfig(ECHO, [{ name: V1, weight: 5 }])).toEqual({ statPrefix: ECHO, cluster: V1 });
    expect(
      tcpProxyConfig(ECHO, [
        { name: V1, weight: 5 },
        { name: V2, weight: 1 },
      ]),
    ).toEqual({
      statPrefix: ECHO,
      weightedClusters: {
        clusters: [
          { name: V1, weight: 5 },
          { name: V2, weight: 1 },
        ],
      },
    });
  });

  it('validates a TCPRoute: rules of backendRefs; a route without rules is rejected', () => {
    const v = validateTcpRoute(tcpRoute('r', [echoParent], [{ name: 'echo-v1', port: 9000, weight: 7 }]));
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.value.kind).toBe('TCPRoute');
      expect(v.value.rules[0]!.backendRefs).toMatchObject([{ kind: 'Service', name: 'echo-v1', weight: 7 }]);
    }
    const none = validateTcpRoute({ ...tcpRoute('r', [echoParent], []), spec: { parentRefs: [echoParent] } });
    expect(none.ok).toBe(false);
  });
});

describe('TCPRoute on a waypoint (index)', () => {
  it('programs the Service port’s tcp_proxy with weighted clusters and writes Accepted/ResolvedRefs', () => {
    const { h, statuses, chain } = setup();
    expect(chain().filters[0]!.typedConfig.cluster).toBe(ECHO);
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute(
        'split',
        [echoParent],
        [
          { name: 'echo-v1', port: 9000, weight: 80 },
          { name: 'echo-v2', port: 9000, weight: 20 },
        ],
      ),
    );
    expect(chain().filters[0]!.typedConfig.weightedClusters!.clusters).toEqual([
      { name: V1, weight: 80 },
      { name: V2, weight: 20 },
    ]);
    const clusters = h.waypoints.resourcesFor(`${NS}/wp`, EnvoyTypeUrls.cluster);
    expect(clusters.has(V1) && clusters.has(V2) && clusters.has(ECHO)).toBe(true);
    const cla = decodeEnvoy(
      EnvoyType.clusterLoadAssignment,
      h.waypoints.resourcesFor(`${NS}/wp`, EnvoyTypeUrls.clusterLoadAssignment).get(V2)!.value,
    ) as { endpoints: { lbEndpoints: unknown[] }[] };
    expect(cla.endpoints[0]!.lbEndpoints).toHaveLength(1);
    const parents = statuses.get('TCPRoute/shop/split')!;
    expect(parents).toHaveLength(1);
    expect(parents[0]!.controllerName).toBe('istio.io/gateway-controller');
    expect(parents[0]!.conditions.map(c => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ['Accepted', 'True', 'Accepted', 2],
      ['ResolvedRefs', 'True', 'ResolvedRefs', 2],
      ['ResolvedWaypoints', 'True', 'ResolvedWaypoints', 2],
    ]);
  });

  it('reports a missing backend as ResolvedRefs=False BackendNotFound and keeps its share refused', () => {
    const { h, statuses, chain } = setup();
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute(
        'split',
        [echoParent],
        [
          { name: 'echo-v1', port: 9000, weight: 1 },
          { name: 'missing', port: 9000, weight: 1 },
        ],
      ),
    );
    expect(chain().filters[0]!.typedConfig.weightedClusters!.clusters).toEqual([
      { name: V1, weight: 1 },
      { name: 'BackendNotFound', weight: 1 },
    ]);
    const resolved = statuses.get('TCPRoute/shop/split')![0]!.conditions[1]!;
    expect([resolved.status, resolved.reason]).toEqual(['False', 'BackendNotFound']);
    expect(resolved.message).toContain('missing');
  });

  it('needs a ReferenceGrant for a backend in another namespace (RefNotPermitted until one allows TCPRoutes)', () => {
    const { h, statuses, chain } = setup();
    h.upsert(K.SERVICE, tcpService('echo-x', '10.96.1.9', {}, 'other'));
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute('cross', [echoParent], [{ name: 'echo-x', namespace: 'other', port: 9000 }]),
    );
    const denied = statuses.get('TCPRoute/shop/cross')![0]!.conditions[1]!;
    expect([denied.status, denied.reason]).toEqual(['False', 'RefNotPermitted']);
    expect(chain().filters[0]!.typedConfig.cluster).toBe('BackendNotFound');
    h.upsert(K.REFERENCE_GRANT, {
      apiVersion: 'gateway.networking.k8s.io/v1beta1',
      kind: 'ReferenceGrant',
      metadata: { name: 'allow', namespace: 'other' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'TCPRoute', namespace: NS }],
        to: [{ group: '', kind: 'Service' }],
      },
    } as KubeObject);
    expect(statuses.get('TCPRoute/shop/cross')![0]!.conditions[1]!.reason).toBe('ResolvedRefs');
    expect(chain().filters[0]!.typedConfig.cluster).toBe(
      'inbound-vip|9000|tcp|echo-x.other.svc.cluster.local',
    );
  });

  it('attaches through the waypoint Gateway to every TCP port it serves and counts in attachedRoutes', () => {
    const { h, statuses, chain } = setup();
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute(
        'gw',
        [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp' }],
        [{ name: 'echo-v2', port: 9000 }],
      ),
    );
    expect(chain().filters[0]!.typedConfig.cluster).toBe(V2);
    const parents = statuses.get('TCPRoute/shop/gw')!;
    expect(parents[0]!.conditions[0]!.status).toBe('True');
    const attachments = new RouteAttachments();
    attachments.record('TCPRoute', 'shop/gw', parents);
    expect(attachments.attachedRoutes('shop/wp', { name: 'mesh', port: 15008 })).toBe(1);
  });

  it('uses the oldest TCPRoute of a port, ignores TCPRoutes on HTTP ports (status still written), and withdraws on delete', () => {
    const { h, statuses, chain } = setup();
    const older = tcpRoute('older', [echoParent], [{ name: 'echo-v1', port: 9000 }], '2026-01-01T00:00:00Z');
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute('newer', [echoParent], [{ name: 'echo-v2', port: 9000 }], '2026-02-01T00:00:00Z'),
    );
    h.upsert(K.TCP_ROUTE, older);
    expect(chain().filters[0]!.typedConfig.cluster).toBe(V1);
    h.delete(K.TCP_ROUTE, older);
    expect(chain().filters[0]!.typedConfig.cluster).toBe(V2);

    h.upsert(
      K.SERVICE,
      makeService(
        'web',
        NS,
        { clusterIP: '10.96.1.20', selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] },
        { 'istio.io/use-waypoint': 'wp' },
      ),
    );
    h.upsert(
      K.TCP_ROUTE,
      tcpRoute('onhttp', [{ group: '', kind: 'Service', name: 'web' }], [{ name: 'echo-v1', port: 9000 }]),
    );
    expect(statuses.get('TCPRoute/shop/onhttp')![0]!.conditions[0]!.reason).toBe('Accepted');
    const rc = decodeEnvoy(
      EnvoyType.routeConfiguration,
      h.waypoints
        .resourcesFor(`${NS}/wp`, EnvoyTypeUrls.routeConfiguration)
        .get('inbound-vip|80|http|web.shop.svc.cluster.local')!.value,
    ) as { virtualHosts: { routes: { name: string; route: { cluster: string } }[] }[] };
    expect(rc.virtualHosts[0]!.routes.map(r => [r.name, r.route.cluster])).toEqual([
      ['default', 'inbound-vip|80|http|web.shop.svc.cluster.local'],
    ]);
  });
});

describe('HTTPRoute with a ServiceEntry parent (GAMMA for waypoint-bound ServiceEntries)', () => {
  const HTTPBIN = 'inbound-vip|80|http|httpbin.org';

  function entry(): ServiceEntry {
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: {
        namespace: 'egress',
        name: 'httpbin',
        labels: { 'istio.io/use-waypoint': 'egress' },
        generation: 1,
      },
      spec: {
        hosts: ['httpbin.org'],
        addresses: ['240.240.0.1'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'DNS',
      },
    };
  }

  function seRoute(rules: readonly unknown[], parent: Record<string, unknown> = {}): KubeObject {
    return {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {
        namespace: 'egress',
        name: 'se-route',
        generation: 4,
        creationTimestamp: '2026-01-01T00:00:00Z',
      },
      spec: {
        parentRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'httpbin', ...parent }],
        rules,
      },
    } as KubeObject;
  }

  function setupEntry() {
    const statuses = new Map<string, readonly RouteParentStatus[]>();
    const h = waypointIndexes({
      onRouteStatus: (kind, key, parents) => statuses.set(`${kind}/${key}`, parents),
    });
    h.upsert(K.GATEWAY, makeWaypointGateway('egress', 'egress'));
    h.upsert(K.SERVICE_ENTRY, entry());
    const rc = () =>
      decodeEnvoy(
        EnvoyType.routeConfiguration,
        h.waypoints.resourcesFor('egress/egress', EnvoyTypeUrls.routeConfiguration).get(HTTPBIN)!.value,
      ) as {
        virtualHosts: {
          routes: {
            name: string;
            directResponse?: { status: number };
            route?: { cluster?: string; weightedClusters?: { clusters: { name: string; weight: number }[] } };
            requestHeadersToAdd?: { header: { key: string; value: string } }[];
          }[];
        }[];
      };
    return { h, statuses, rc };
  }

  it('attaches to the entry’s route configuration: header modifier and weighted backends to Services; status for the entry parent', () => {
    const { h, statuses, rc } = setupEntry();
    expect(rc().virtualHosts[0]!.routes.map(r => r.name)).toEqual(['default']);
    h.upsert(
      K.SERVICE,
      makeService('proxy', 'egress', {
        clusterIP: '10.96.2.1',
        selector: { app: 'proxy' },
        ports: [{ name: 'http', port: 8080 }],
      }),
    );
    h.upsert(
      K.HTTP_ROUTE,
      seRoute([
        {
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { set: [{ name: 'x-egress', value: 'yes' }] },
            },
          ],
          backendRefs: [
            { name: 'proxy', port: 8080, weight: 3 },
            { name: 'gone', port: 80, weight: 1 },
          ],
        },
      ]),
    );
    const route = rc().virtualHosts[0]!.routes[0]!;
    expect(route.name).toBe('egress.se-route.0');
    expect(route.requestHeadersToAdd?.map(h => [h.header.key, h.header.value])).toEqual([
      ['x-egress', 'yes'],
    ]);
    expect(route.route!.weightedClusters!.clusters.map(c => [c.name, c.weight])).toEqual([
      ['inbound-vip|8080|http|proxy.egress.svc.cluster.local', 3],
      ['BackendNotFound', 1],
    ]);
    expect(
      h.waypoints
        .resourcesFor('egress/egress', EnvoyTypeUrls.cluster)
        .has('inbound-vip|8080|http|proxy.egress.svc.cluster.local'),
    ).toBe(true);
    const parents = statuses.get('HTTPRoute/egress/se-route')!;
    expect(parents.map(p => [p.parentRef.kind, p.parentRef.group, p.parentRef.name])).toEqual([
      ['ServiceEntry', 'networking.istio.io', 'httpbin'],
    ]);
    expect(parents[0]!.conditions.map(c => [c.type, c.status, c.reason])).toEqual([
      ['Accepted', 'True', 'Accepted'],
      ['ResolvedRefs', 'False', 'BackendNotFound'],
      ['ResolvedWaypoints', 'True', 'ResolvedWaypoints'],
    ]);
  });

  it('sends to the entry’s own host with a networking.istio.io Hostname backendRef (header modifier applied)', () => {
    const { h, statuses, rc } = setupEntry();
    h.upsert(
      K.HTTP_ROUTE,
      seRoute([
        {
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { add: [{ name: 'x-se-route', value: 'applied' }] },
            },
          ],
          backendRefs: [{ group: 'networking.istio.io', kind: 'Hostname', name: 'httpbin.org', port: 80 }],
        },
      ]),
    );
    const route = rc().virtualHosts[0]!.routes[0]!;
    expect(route.route!.cluster).toBe(HTTPBIN);
    expect(route.requestHeadersToAdd?.map(x => [x.header.key, x.header.value])).toEqual([
      ['x-se-route', 'applied'],
    ]);
    expect(statuses.get('HTTPRoute/egress/se-route')![0]!.conditions[1]!.reason).toBe('ResolvedRefs');
    // A host no ServiceEntry has: BackendNotFound.
    h.upsert(
      K.HTTP_ROUTE,
      seRoute([
        {
          backendRefs: [
            { group: 'networking.istio.io', kind: 'Hostname', name: 'nowhere.example', port: 80 },
          ],
        },
      ]),
    );
    expect(statuses.get('HTTPRoute/egress/se-route')![0]!.conditions[1]!.reason).toBe('BackendNotFound');
  });

  it('honours the parentRef port, and drops the routes when the entry leaves the waypoint', () => {
    const { h, rc } = setupEntry();
    h.upsert(K.HTTP_ROUTE, seRoute([{ backendRefs: [] }], { port: 8443 }));
    expect(rc().virtualHosts[0]!.routes.map(r => r.name)).toEqual(['default']);
    h.upsert(K.HTTP_ROUTE, seRoute([{ backendRefs: [] }], { port: 80 }));
    expect(rc().virtualHosts[0]!.routes[0]!.directResponse).toEqual({ status: 500 });
    h.upsert(K.SERVICE_ENTRY, { ...entry(), metadata: { ...entry().metadata, labels: {} } });
    expect(h.waypoints.resourcesFor('egress/egress', EnvoyTypeUrls.routeConfiguration).has(HTTPBIN)).toBe(
      false,
    );
  });
});
