import { describe, expect, it } from 'vitest';
import type { Gateway, KubeObject, Service } from '../kube/objects.ts';
import { bindWaypoint, waypointBoundCondition, type BindingLookup, type WaypointBinding } from './binding.ts';
import { WaypointBindingIndex } from './waypoint-bindings.ts';

function waypoint(
  namespace: string,
  name: string,
  opts: {
    waypointFor?: string;
    from?: string;
    selector?: Record<string, string>;
    ready?: boolean;
    className?: string;
  } = {},
): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name,
      namespace,
      ...(opts.waypointFor === undefined ? {} : { labels: { 'istio.io/waypoint-for': opts.waypointFor } }),
    },
    spec: {
      gatewayClassName: opts.className ?? 'istio-waypoint',
      listeners: [
        {
          name: 'mesh',
          port: 15008,
          protocol: 'HBONE',
          ...(opts.from === undefined
            ? {}
            : {
                allowedRoutes: {
                  namespaces: {
                    from: opts.from,
                    ...(opts.selector === undefined ? {} : { selector: { matchLabels: opts.selector } }),
                  },
                },
              }),
        },
      ],
    },
    ...(opts.ready === false
      ? {}
      : {
          status: {
            addresses: [
              { type: 'IPAddress', value: '10.96.0.20' },
              { type: 'Hostname', value: `${name}.${namespace}.svc.cluster.local` },
            ],
          },
        }),
  } as Gateway;
}

function obj(namespace: string, name: string, labels: Record<string, string> = {}): KubeObject {
  return { metadata: { namespace, name, labels } };
}

function lookup(gateways: Gateway[], namespaces: KubeObject[], services: Service[] = []): BindingLookup {
  return {
    gateway: (ns, name) => gateways.find(g => g.metadata?.namespace === ns && g.metadata.name === name),
    namespace: name => namespaces.find(n => n.metadata?.name === name),
    service: (ns, name) => services.find(s => s.metadata?.namespace === ns && s.metadata.name === name),
  };
}

const boundTo = (b: WaypointBinding): string | undefined =>
  b.kind === 'bound' ? `${b.waypoint.namespace}/${b.waypoint.name}` : undefined;

describe('bindWaypoint', () => {
  const gws = [
    waypoint('app', 'ns-wp'),
    waypoint('app', 'svc-wp'),
    waypoint('app', 'pod-wp', { waypointFor: 'all' }),
  ];
  const ns = { metadata: { name: 'app', labels: { 'istio.io/use-waypoint': 'ns-wp' } } };

  it('binds a Service to its namespace waypoint, as a hostname GatewayAddress with the HBONE port', () => {
    const b = bindWaypoint(obj('app', 'reviews'), 'service', lookup(gws, [ns]));
    expect(b).toEqual({
      kind: 'bound',
      waypoint: { namespace: 'app', name: 'ns-wp' },
      address: {
        hostname: { namespace: 'app', hostname: 'ns-wp.app.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
    });
  });

  it("takes the HBONE port from the waypoint's Service", () => {
    const svc: Service = {
      metadata: { namespace: 'app', name: 'ns-wp' },
      spec: {
        ports: [
          { name: 'status-port', port: 15021 },
          { name: 'mesh', port: 15009, appProtocol: 'hbone' },
        ],
      },
    };
    const b = bindWaypoint(obj('app', 'reviews'), 'service', lookup(gws, [ns], [svc]));
    expect(b.kind === 'bound' && b.address.hboneMtlsPort).toBe(15009);
  });

  it('precedence: the object label wins over the namespace label (pod and Service alike)', () => {
    const l = lookup(gws, [ns]);
    expect(
      boundTo(bindWaypoint(obj('app', 'svc', { 'istio.io/use-waypoint': 'svc-wp' }), 'service', l)),
    ).toBe('app/svc-wp');
    expect(
      boundTo(bindWaypoint(obj('app', 'pod', { 'istio.io/use-waypoint': 'pod-wp' }), 'workload', l)),
    ).toBe('app/pod-wp');
    // A pod without its own label inherits the namespace's, which serves services only: no error.
    expect(bindWaypoint(obj('app', 'pod'), 'workload', l)).toEqual({ kind: 'none' });
  });

  it('`none` on the object opts out even when the namespace names a waypoint', () => {
    const b = bindWaypoint(
      obj('app', 'svc', { 'istio.io/use-waypoint': 'none' }),
      'service',
      lookup(gws, [ns]),
    );
    expect(b).toEqual({ kind: 'none' });
    expect(waypointBoundCondition(b)).toBeUndefined();
  });

  it('`none` on the namespace means no waypoint', () => {
    const none = { metadata: { name: 'app', labels: { 'istio.io/use-waypoint': 'none' } } };
    expect(bindWaypoint(obj('app', 'svc'), 'service', lookup(gws, [none]))).toEqual({ kind: 'none' });
  });

  it('objects istiod deploys (the waypoint itself) never bind', () => {
    const own = obj('app', 'ns-wp', { 'gateway.istio.io/managed': 'istio.io-mesh-controller' });
    expect(bindWaypoint(own, 'service', lookup(gws, [ns]))).toEqual({ kind: 'none' });
  });

  it('cross-namespace: use-waypoint-namespace, admitted only by the listener allowedRoutes', () => {
    const shared = [
      waypoint('infra', 'open', { from: 'All' }),
      waypoint('infra', 'closed'),
      waypoint('infra', 'picky', { from: 'Selector', selector: { team: 'a' } }),
    ];
    const namespaces = [
      { metadata: { name: 'app', labels: { team: 'a' } } },
      { metadata: { name: 'other' } },
    ];
    const l = lookup(shared, namespaces);
    const use = (ns: string, name: string): KubeObject =>
      obj(ns, 'svc', { 'istio.io/use-waypoint': name, 'istio.io/use-waypoint-namespace': 'infra' });
    expect(boundTo(bindWaypoint(use('app', 'open'), 'service', l))).toBe('infra/open');
    expect(boundTo(bindWaypoint(use('app', 'picky'), 'service', l))).toBe('infra/picky');
    const denied = bindWaypoint(use('app', 'closed'), 'service', l);
    expect(denied).toMatchObject({ kind: 'error', reason: 'AttachmentDenied' });
    expect(bindWaypoint(use('other', 'picky'), 'service', l)).toMatchObject({
      kind: 'error',
      reason: 'AttachmentDenied',
    });
    expect(waypointBoundCondition(denied)).toEqual({
      type: 'istio.io/WaypointBound',
      status: 'False',
      reason: 'AttachmentDenied',
      message: 'we are not permitted to attach to waypoint "infra/closed" (missing allowedRoutes?)',
    });
  });

  it('cross-namespace from the namespace label', () => {
    const l = lookup(
      [waypoint('infra', 'open', { from: 'All' })],
      [
        {
          metadata: {
            name: 'app',
            labels: { 'istio.io/use-waypoint': 'open', 'istio.io/use-waypoint-namespace': 'infra' },
          },
        },
      ],
    );
    expect(boundTo(bindWaypoint(obj('app', 'svc'), 'service', l))).toBe('infra/open');
  });

  it('waypoint-for: service, workload, all and none', () => {
    const kinds = ['service', 'workload', 'all', 'none'];
    const l = lookup(
      kinds.map(k => waypoint('app', `for-${k}`, { waypointFor: k })),
      [{ metadata: { name: 'app' } }],
    );
    const result = (k: string, kind: 'service' | 'workload'): string =>
      bindWaypoint(obj('app', 'x', { 'istio.io/use-waypoint': `for-${k}` }), kind, l).kind === 'bound'
        ? 'bound'
        : 'refused';
    expect(kinds.map(k => [k, result(k, 'service'), result(k, 'workload')])).toEqual([
      ['service', 'bound', 'refused'],
      ['workload', 'refused', 'bound'],
      ['all', 'bound', 'bound'],
      ['none', 'refused', 'refused'],
    ]);
    expect(bindWaypoint(obj('app', 'x', { 'istio.io/use-waypoint': 'for-workload' }), 'service', l)).toEqual({
      kind: 'error',
      waypoint: { namespace: 'app', name: 'for-workload' },
      reason: 'UnsupportedTrafficType',
      message:
        'attempting to bind to traffic type "service" which the waypoint "app/for-workload" does not support',
    });
  });

  it('a missing or not yet addressed waypoint: WaypointIsNotReady', () => {
    const l = lookup([waypoint('app', 'young', { ready: false })], [{ metadata: { name: 'app' } }]);
    for (const name of ['missing', 'young']) {
      const b = bindWaypoint(obj('app', 'svc', { 'istio.io/use-waypoint': name }), 'service', l);
      expect(waypointBoundCondition(b)).toEqual({
        type: 'istio.io/WaypointBound',
        status: 'False',
        reason: 'WaypointIsNotReady',
        message: `waypoint "app/${name}" is not ready`,
      });
    }
  });

  it('a Gateway of another class is not a waypoint', () => {
    const l = lookup([waypoint('app', 'ingress', { className: 'istio' })], [{ metadata: { name: 'app' } }]);
    const b = bindWaypoint(obj('app', 'svc', { 'istio.io/use-waypoint': 'ingress' }), 'service', l);
    expect(b).toMatchObject({ kind: 'error', reason: 'WaypointIsNotReady' });
  });

  it('WaypointBound=True with upstream reason and message when bound', () => {
    const b = bindWaypoint(obj('app', 'reviews'), 'service', lookup(gws, [ns]));
    expect(waypointBoundCondition(b)).toEqual({
      type: 'istio.io/WaypointBound',
      status: 'True',
      reason: 'WaypointAccepted',
      message: 'Successfully attached to waypoint app/ns-wp',
    });
  });

  it("notes the Service's own istio.io/ingress-use-waypoint label in the message, as upstream", () => {
    const b = bindWaypoint(obj('app', 'reviews'), 'service', lookup(gws, [ns]));
    const message = (labels: Record<string, string>): string | undefined =>
      waypointBoundCondition(b, labels)?.message;
    expect(message({ 'istio.io/ingress-use-waypoint': 'TRUE' })).toBe(
      'Successfully attached to waypoint app/ns-wp. Ingress traffic will traverse the waypoint',
    );
    expect(message({ 'istio.io/ingress-use-waypoint': 'eurt' })).toBe(
      'Successfully attached to waypoint app/ns-wp. Ingress traffic is not using the waypoint, ' +
        'set the istio.io/ingress-use-waypoint label to true if desired.',
    );
    expect(message({})).toBe('Successfully attached to waypoint app/ns-wp');
  });
});

describe('WaypointBindingIndex', () => {
  it('tracks which services and workloads each waypoint serves, and reports changed waypoints', () => {
    const index = new WaypointBindingIndex();
    const changes: string[][] = [];
    index.onChange(w => changes.push([...w].sort()));
    const bound = (ns: string, name: string): WaypointBinding => ({
      kind: 'bound',
      waypoint: { namespace: ns, name },
      address: { hboneMtlsPort: 15008 },
    });
    index.record('service', 'app/reviews', bound('app', 'wp'));
    index.record('service', 'app/ratings', bound('app', 'wp'));
    index.record('workload', 'app/pod-1', bound('app', 'wp2'));
    index.record('service', 'app/reviews', bound('app', 'wp')); // unchanged: no event
    expect([...index.services('app/wp')].sort()).toEqual(['app/ratings', 'app/reviews']);
    expect([...index.workloads('app/wp2')]).toEqual(['app/pod-1']);
    expect(index.waypoints()).toEqual(['app/wp', 'app/wp2']);
    index.record('service', 'app/reviews', bound('app', 'wp2'));
    index.record('service', 'app/ratings', { kind: 'none' });
    expect([...index.services('app/wp')]).toEqual([]);
    expect(index.waypointOf('service', 'app/reviews')).toBe('app/wp2');
    expect(changes).toEqual([['app/wp'], ['app/wp'], ['app/wp2'], ['app/wp', 'app/wp2'], ['app/wp']]);
  });
});
