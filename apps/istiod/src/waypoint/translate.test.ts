import { describe, expect, it } from 'vitest';
import { validateAuthorizationPolicy } from '@ambient-mesh/policy-engine';
import { EnvoyType, decodeEnvoy, encodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { resolveRoute, type RouteLookup, type ServiceInfo } from './resolve-route.ts';
import { MAX_THRESHOLD, buildCluster, buildLoadAssignment, hashPolicy } from './translate-cluster.ts';
import { buildRbacFilters } from './translate-rbac.ts';
import { buildRouteConfiguration, type RouteTranslationContext } from './translate-route.ts';
import { buildMainInternal } from './translate-listener.ts';
import { portProtocol } from './waypoint-index.ts';
import type { BackendTarget, ValidRoute } from './types.ts';
import { validateHttpRoute, validateGrpcRoute } from './validate-route.ts';
import { validateDestinationRule, validateVirtualService } from './validate-istio.ts';

const svc = (name: string, ns = 'default', ports = [80]): ServiceInfo => ({
  key: { namespace: ns, name },
  hostname: `${name}.${ns}.svc.cluster.local`,
  vips: ['10.0.0.1'],
  ports: ports.map(port => ({ port, name: 'http', targetPort: 8080, protocol: 'http' })),
  selector: { app: name },
});

const lookup: RouteLookup = {
  service: k =>
    ['reviews', 'ratings', 'mirror'].includes(k.name) && k.namespace === 'default' ? svc(k.name) : undefined,
  referenceGrantAllows: () => false,
};

const ctx: RouteTranslationContext = {
  name: 'inbound-vip|80|http|reviews.default.svc.cluster.local',
  virtualHostName: 'reviews.default.svc.cluster.local:80',
  port: 80,
  defaultTarget: { service: { namespace: 'default', name: 'reviews' }, port: 80 },
  clusterFor: (t: BackendTarget) =>
    `inbound-vip|${t.port}|${t.subset === undefined ? 'http' : `http/${t.subset}`}|${t.service.name}.${t.service.namespace}.svc.cluster.local`,
  hashPolicyFor: () => undefined,
};

function httpRoute(name: string, rules: unknown[], created = '2026-01-01T00:00:00Z'): ValidRoute {
  const r = validateHttpRoute({
    metadata: { name, namespace: 'default', creationTimestamp: created, generation: 3 },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 80 }], rules },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** Encodes and decodes, so every assertion is on what goes on the wire. */
function wireRoutes(routes: ValidRoute[]): Record<string, unknown>[] {
  const cfg = buildRouteConfiguration(
    routes.map(r => resolveRoute(r, lookup, () => true)),
    ctx,
  );
  const decoded = decodeEnvoy(
    EnvoyType.routeConfiguration,
    encodeEnvoy(EnvoyType.routeConfiguration, cfg),
  ) as {
    virtualHosts: { routes: Record<string, unknown>[] }[];
  };
  return decoded.virtualHosts[0]!.routes;
}

const backend = (name: string, weight?: number) => ({
  name,
  port: 80,
  ...(weight !== undefined ? { weight } : {}),
});

describe('HTTPRoute to RouteConfiguration', () => {
  it('orders matches by Gateway API precedence: exact, longest prefix, method, headers, query; then age', () => {
    const older = httpRoute('a-old', [
      { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [backend('reviews')] },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'GET' }],
        backendRefs: [backend('reviews')],
      },
    ]);
    const newer = httpRoute(
      'b-new',
      [
        { matches: [{ path: { type: 'PathPrefix', value: '/api/v1' } }], backendRefs: [backend('ratings')] },
        { matches: [{ path: { type: 'Exact', value: '/login' } }], backendRefs: [backend('ratings')] },
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'X-User', value: 'jason' }] },
          ],
          backendRefs: [backend('ratings')],
        },
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [backend('ratings')] },
        {
          matches: [{ path: { type: 'RegularExpression', value: '/v[0-9]+/.*' } }],
          backendRefs: [backend('ratings')],
        },
      ],
      '2026-02-01T00:00:00Z',
    );
    const names = wireRoutes([newer, older]).map(r => r.name);
    expect(names).toEqual([
      'default.b-new.1', // Exact
      'default.b-new.0', // longest prefix
      'default.a-old.1', // /api with a method
      'default.b-new.2', // /api with a header
      'default.b-new.3', // /api plain
      'default.a-old.0', // /
      'default.b-new.4', // regex last
    ]);
  });

  it('translates path, header, query and method matches', () => {
    const [r] = wireRoutes([
      httpRoute('m', [
        {
          matches: [
            {
              path: { type: 'PathPrefix', value: '/api/' },
              headers: [
                { name: 'X-Env', value: 'canary' },
                { type: 'RegularExpression', name: 'x-id', value: '[0-9]+' },
              ],
              queryParams: [{ name: 'debug', value: '1' }],
              method: 'POST',
            },
          ],
          backendRefs: [backend('reviews')],
        },
      ]),
    ]);
    expect(r!.match).toEqual({
      pathSeparatedPrefix: '/api',
      headers: [
        { name: 'x-env', stringMatch: { exact: 'canary' } },
        { name: 'x-id', stringMatch: { safeRegex: { regex: '[0-9]+' } } },
        { name: ':method', stringMatch: { exact: 'POST' } },
      ],
      queryParameters: [{ name: 'debug', stringMatch: { exact: '1' } }],
    });
  });

  it('splits traffic by weight, sends unresolved backends 500, and applies timeouts and retries', () => {
    const [r] = wireRoutes([
      httpRoute('w', [
        {
          backendRefs: [backend('reviews', 90), backend('ratings', 10), backend('missing', 5)],
          timeouts: { request: '10s', backendRequest: '2s' },
          retry: { attempts: 3, codes: [503, 502], backoff: '100ms' },
        },
      ]),
    ]);
    const route = r!.route as Record<string, unknown>;
    expect(route.weightedClusters).toEqual({
      clusters: [
        { name: 'inbound-vip|80|http|reviews.default.svc.cluster.local', weight: 90 },
        { name: 'inbound-vip|80|http|ratings.default.svc.cluster.local', weight: 10 },
        { name: 'BackendNotFound', weight: 5 },
      ],
    });
    expect(route.clusterNotFoundResponseCode).toBe('INTERNAL_SERVER_ERROR');
    expect(route.timeout).toEqual({ seconds: 10 });
    const retry = route.retryPolicy as Record<string, unknown>;
    expect(retry.numRetries).toBe(3);
    expect(retry.retriableStatusCodes).toEqual([503, 502]);
    expect(String(retry.retryOn).split(',')).toContain('retriable-status-codes');
    expect(retry.perTryTimeout).toEqual({ seconds: 2 });
    expect(retry.retryBackOff).toEqual({ baseInterval: { nanos: 100_000_000 } });
  });

  it('applies header modifiers, rewrite, mirror and redirect', () => {
    const routes = wireRoutes([
      httpRoute('f', [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: {
                set: [{ name: 'x-a', value: '1' }],
                add: [{ name: 'x-b', value: '2' }],
                remove: ['x-c'],
              },
            },
            {
              type: 'ResponseHeaderModifier',
              responseHeaderModifier: { set: [{ name: 'x-r', value: 'y' }] },
            },
            {
              type: 'URLRewrite',
              urlRewrite: {
                hostname: 'new.example',
                path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
              },
            },
            { type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 25 } },
          ],
          backendRefs: [backend('reviews')],
        },
        {
          matches: [{ path: { type: 'Exact', value: '/moved' } }],
          filters: [
            {
              type: 'RequestRedirect',
              requestRedirect: { scheme: 'https', hostname: 'x.example', statusCode: 308 },
            },
          ],
        },
      ]),
    ]);
    const redirect = routes.find(r => r.name === 'default.f.1')!;
    expect(redirect.redirect).toEqual({
      schemeRedirect: 'https',
      hostRedirect: 'x.example',
      responseCode: 'PERMANENT_REDIRECT',
    });
    const main = routes.find(r => r.name === 'default.f.0')!;
    expect(main.requestHeadersToAdd).toEqual([
      { header: { key: 'x-a', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      // APPEND_IF_EXISTS_OR_ADD is the enum's zero value, so it is not on the wire.
      { header: { key: 'x-b', value: '2' } },
    ]);
    expect(main.requestHeadersToRemove).toEqual(['x-c']);
    expect(main.responseHeadersToAdd).toEqual([
      { header: { key: 'x-r', value: 'y' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    const action = main.route as Record<string, unknown>;
    expect(action.hostRewriteLiteral).toBe('new.example');
    expect(action.prefixRewrite).toBe('/new');
    expect(action.requestMirrorPolicies).toEqual([
      {
        cluster: 'inbound-vip|80|http|mirror.default.svc.cluster.local',
        runtimeFraction: { defaultValue: { numerator: 250_000, denominator: 'MILLION' } },
      },
    ]);
  });

  it('strips a prefix replaced by "/" to exactly one slash with a regex rewrite, as Istio', () => {
    const rewrite = (prefix: string, value: string): Record<string, unknown> => {
      const routes = wireRoutes([
        httpRoute('s', [
          {
            matches: [{ path: { type: 'PathPrefix', value: prefix } }],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: value } },
              },
            ],
            backendRefs: [backend('reviews')],
          },
        ]),
      ]);
      return routes.find(r => r.name === 'default.s.0')!.route as Record<string, unknown>;
    };
    const strip = rewrite('/strip-prefix', '/');
    expect(strip.prefixRewrite).toBeUndefined();
    expect(strip.regexRewrite).toEqual({
      pattern: { regex: '^/strip-prefix(/?)(.*)' },
      substitution: '/\\2',
    });
    const re = new RegExp((strip.regexRewrite as { pattern: { regex: string } }).pattern.regex);
    expect(['/strip-prefix/three', '/strip-prefix', '/strip-prefix/'].map(p => p.replace(re, '/$2'))).toEqual(
      ['/three', '/', '/'],
    );
    // Regex metacharacters of the prefix are literal.
    expect(rewrite('/a.b', '/').regexRewrite).toEqual({
      pattern: { regex: '^/a\\.b(/?)(.*)' },
      substitution: '/\\2',
    });
    // Any other replacement stays a prefix rewrite.
    expect(rewrite('/prefix/one', '/one').prefixRewrite).toBe('/one');
  });

  it('replaces the matched prefix of a redirect (ReplacePrefixMatch) with prefixRewrite', () => {
    const routes = wireRoutes([
      httpRoute('rd', [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/original-prefix' } }],
          filters: [
            {
              type: 'RequestRedirect',
              requestRedirect: {
                path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' },
              },
            },
          ],
        },
      ]),
    ]);
    const r = routes.find(x => x.name === 'default.rd.0')!;
    expect(r.match).toEqual({ pathSeparatedPrefix: '/original-prefix' });
    expect(r.redirect).toEqual({ responseCode: 'FOUND', prefixRewrite: '/replacement-prefix' });
  });

  it('strips a redirect\'s prefix replaced by "/" to one slash (`/foo/x` → `/x`, not `//x`)', () => {
    const redirect = (prefix: string, value: string): Record<string, unknown> => {
      const routes = wireRoutes([
        httpRoute('rs', [
          {
            matches: [{ path: { type: 'PathPrefix', value: prefix } }],
            filters: [
              {
                type: 'RequestRedirect',
                requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: value } },
              },
            ],
          },
        ]),
      ]);
      return routes.find(x => x.name === 'default.rs.0')!.redirect as Record<string, unknown>;
    };
    const strip = redirect('/foo', '/');
    expect(strip).toEqual({
      responseCode: 'FOUND',
      regexRewrite: { pattern: { regex: '^/foo(/?)(.*)' }, substitution: '/\\2' },
    });
    const apply = (r: Record<string, unknown>, path: string): string => {
      const rw = r.regexRewrite as { pattern: { regex: string }; substitution: string };
      return path.replace(new RegExp(rw.pattern.regex), rw.substitution.replace(/\\(\d)/g, '$$$1'));
    };
    expect(['/foo/x', '/foo', '/foo/'].map(p => apply(strip, p))).toEqual(['/x', '/', '/']);
    // A replacement ending in "/" keeps one slash too (Gateway API: `/foo/bar` → `/xyz/bar`).
    expect(apply(redirect('/foo', '/xyz/'), '/foo/bar')).toBe('/xyz/bar');
    expect(apply(redirect('/foo/', '/xyz/'), '/foo/bar')).toBe('/xyz/bar');
  });

  it('applies backendRef header filters: on the route for one backend, per weighted cluster for several', () => {
    const withFilters = (name: string, weight: number, value: string) => ({
      ...backend(name, weight),
      filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-b', value }] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['x-gone'] } },
      ],
    });
    const routes = wireRoutes([
      httpRoute('b', [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/one' } }],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { add: [{ name: 'x-rule', value: 'r' }] },
            },
          ],
          backendRefs: [withFilters('reviews', 1, 'one')],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/two' } }],
          backendRefs: [withFilters('reviews', 1, 'r'), backend('ratings', 1)],
        },
      ]),
    ]);
    const one = routes.find(r => r.name === 'default.b.0')!;
    expect((one.route as Record<string, unknown>).cluster).toBe(
      'inbound-vip|80|http|reviews.default.svc.cluster.local',
    );
    expect(one.requestHeadersToAdd).toEqual([
      { header: { key: 'x-rule', value: 'r' } },
      { header: { key: 'x-b', value: 'one' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect(one.responseHeadersToRemove).toEqual(['x-gone']);
    const two = routes.find(r => r.name === 'default.b.1')!;
    const clusters = (
      (two.route as Record<string, unknown>).weightedClusters as { clusters: Record<string, unknown>[] }
    ).clusters;
    expect(clusters[0]).toMatchObject({
      name: 'inbound-vip|80|http|reviews.default.svc.cluster.local',
      requestHeadersToAdd: [
        { header: { key: 'x-b', value: 'r' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      ],
      responseHeadersToRemove: ['x-gone'],
    });
    expect(clusters[1]!.requestHeadersToAdd ?? []).toEqual([]);
    expect(two.requestHeadersToAdd ?? []).toEqual([]);
  });

  it('rejects a backendRef filter type Istio does not apply per backend, naming the field', () => {
    const r = validateHttpRoute({
      metadata: { name: 'x', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z', generation: 1 },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 80 }],
        rules: [
          { backendRefs: [{ ...backend('reviews'), filters: [{ type: 'URLRewrite', urlRewrite: {} }] }] },
        ],
      },
    });
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).toContain('spec.rules[0].backendRefs[0].filters[0].type');
  });

  it('gives a Service port without routes a default route with Istio’s default retries', () => {
    const [r] = wireRoutes([]);
    expect(r!.name).toBe('default');
    expect((r!.route as Record<string, unknown>).cluster).toBe(
      'inbound-vip|80|http|reviews.default.svc.cluster.local',
    );
    expect(((r!.route as Record<string, unknown>).retryPolicy as Record<string, unknown>).numRetries).toBe(2);
  });

  it('turns GRPCRoute method matches into path matches', () => {
    const g = validateGrpcRoute({
      metadata: { name: 'g', namespace: 'default' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
        rules: [
          {
            matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }],
            backendRefs: [backend('reviews')],
          },
          { matches: [{ method: { service: 'helloworld.Greeter' } }], backendRefs: [backend('ratings')] },
        ],
      },
    });
    if (!g.ok) throw new Error('invalid');
    const routes = wireRoutes([g.value]);
    expect(routes.map(r => r.match)).toEqual([
      { path: '/helloworld.Greeter/SayHello' },
      { pathSeparatedPrefix: '/helloworld.Greeter' },
    ]);
  });

  it('carries VirtualService fault, retries and timeout, and routes to subsets', () => {
    const vs = validateVirtualService(
      {
        metadata: { name: 'vs', namespace: 'default' },
        spec: {
          hosts: ['reviews'],
          http: [
            {
              match: [{ uri: { prefix: '/slow' } }],
              fault: {
                delay: { fixedDelay: '2s', percentage: { value: 50 } },
                abort: { httpStatus: 503, percentage: { value: 10 } },
              },
              retries: { attempts: 4, perTryTimeout: '1s', retryOn: '5xx,gateway-error,503' },
              timeout: '5s',
              route: [{ destination: { host: 'reviews', subset: 'v2' } }],
            },
          ],
        },
      },
      'cluster.local',
    );
    if (!vs.ok) throw new Error(JSON.stringify(vs.errors));
    const [r] = wireRoutes([vs.value]);
    const action = r!.route as Record<string, unknown>;
    expect(action.cluster).toBe('inbound-vip|80|http/v2|reviews.default.svc.cluster.local');
    expect(action.timeout).toEqual({ seconds: 5 });
    const retry = action.retryPolicy as Record<string, unknown>;
    expect(retry).toMatchObject({
      numRetries: 4,
      retriableStatusCodes: [503],
      perTryTimeout: { seconds: 1 },
    });
    expect(String(retry.retryOn)).toBe('5xx,gateway-error,retriable-status-codes');
    const fault = unpackTyped(
      (r!.typedPerFilterConfig as Record<string, unknown>)['envoy.filters.http.fault'],
    );
    expect(fault).toEqual({
      delay: { fixedDelay: { seconds: 2 }, percentage: { numerator: 500_000, denominator: 'MILLION' } },
      abort: { httpStatus: 503, percentage: { numerator: 100_000, denominator: 'MILLION' } },
    });
  });
});

describe('route validation and resolution', () => {
  it('rejects an invalid regex, naming the field', () => {
    const r = validateHttpRoute({
      metadata: { name: 'bad', namespace: 'default' },
      spec: { rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/(unclosed' } }] }] },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.path).toBe('spec.rules[0].matches[0].path.value');
  });

  it('rejects RE2-incompatible lookaround', () => {
    const r = validateHttpRoute({
      metadata: { name: 'bad', namespace: 'default' },
      spec: {
        rules: [{ matches: [{ headers: [{ type: 'RegularExpression', name: 'x', value: '(?=a)b' }] }] }],
      },
    });
    expect(r.ok).toBe(false);
  });

  it('reports BackendNotFound for a missing Service and RefNotPermitted across namespaces without a ReferenceGrant', () => {
    const missing = resolveRoute(httpRoute('m', [{ backendRefs: [backend('missing')] }]), lookup, () => true);
    expect(missing.parents[0]!.conditions).toContainEqual(
      expect.objectContaining({ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound' }),
    );
    const cross = resolveRoute(
      httpRoute('x', [{ backendRefs: [{ name: 'reviews', namespace: 'other', port: 80 }] }]),
      lookup,
      () => true,
    );
    expect(cross.parents[0]!.conditions).toContainEqual(
      expect.objectContaining({ type: 'ResolvedRefs', status: 'False', reason: 'RefNotPermitted' }),
    );
    expect(cross.rules[0]!.backends).toEqual([]);
    const granted = resolveRoute(
      httpRoute('x', [{ backendRefs: [{ name: 'reviews', namespace: 'default', port: 80 }] }]),
      { ...lookup, referenceGrantAllows: () => true },
      () => true,
    );
    expect(granted.parents[0]!.conditions[1]).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
      observedGeneration: 3,
    });
  });
});

describe('DestinationRule to Cluster', () => {
  const dr = (trafficPolicy: unknown) => {
    const r = validateDestinationRule({
      metadata: { name: 'dr', namespace: 'default' },
      spec: { host: 'reviews', trafficPolicy },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.value;
  };
  const wire = (c: object) => decodeEnvoy(EnvoyType.cluster, encodeEnvoy(EnvoyType.cluster, c));

  it('maps simple load balancers and defaults thresholds to the uint32 maximum', () => {
    for (const [simple, lb] of [
      ['LEAST_REQUEST', 'LEAST_REQUEST'],
      ['RANDOM', 'RANDOM'],
      ['ROUND_ROBIN', undefined],
    ] as const) {
      const c = wire(
        buildCluster({
          name: 'c',
          trafficPolicy: dr({ loadBalancer: { simple } }).trafficPolicy!,
          http2: false,
          tcp: false,
        }),
      );
      expect(c.lbPolicy).toBe(lb); // ROUND_ROBIN is the proto default, omitted on the wire
      expect((c.circuitBreakers as { thresholds: unknown[] }).thresholds[0]).toEqual({
        maxConnections: MAX_THRESHOLD,
        maxPendingRequests: MAX_THRESHOLD,
        maxRequests: MAX_THRESHOLD,
        maxRetries: MAX_THRESHOLD,
        trackRemaining: true,
      });
    }
  });

  it('asks for HTTP/2 upstream on gRPC/h2c ports and for the downstream protocol on HTTP ports', () => {
    const options = (http2: boolean, tcp: boolean) => {
      const c = wire(buildCluster({ name: 'c', trafficPolicy: {}, http2, tcp }));
      const typed = (c.typedExtensionProtocolOptions ?? {}) as Record<string, unknown>;
      const packed = typed['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
      return packed === undefined ? undefined : unpackTyped(packed);
    };
    expect(options(true, false)).toEqual({ explicitHttpConfig: { http2ProtocolOptions: {} } });
    expect(options(false, false)).toEqual({ useDownstreamProtocolConfig: {} });
    expect(options(false, true)).toBeUndefined();
    for (const [name, appProtocol] of [
      ['grpc', undefined],
      ['grpc-echo', undefined],
      ['http2-api', undefined],
      ['web', 'grpc'],
      ['web', 'h2c'],
      ['web', 'http2'],
      ['web', 'kubernetes.io/h2c'],
      ['http', 'GRPC'],
    ] as const)
      expect(portProtocol(name, appProtocol), `${name}/${appProtocol ?? '-'}`).toBe('grpc');
    expect(portProtocol('http-web', undefined)).toBe('http');
    expect(portProtocol('grpc', 'http')).toBe('http');
    expect(portProtocol('tcp-db', undefined)).toBe('tcp');
  });

  it('uses a ring hash for consistentHash, with the hash policy on the route', () => {
    const tp = dr({
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 1024 } } },
    }).trafficPolicy!;
    const c = wire(buildCluster({ name: 'c', trafficPolicy: tp, http2: false, tcp: false }));
    expect(c.lbPolicy).toBe('RING_HASH');
    expect(c.ringHashLbConfig).toEqual({ minimumRingSize: 1024 });
    expect(hashPolicy(tp.loadBalancer!.consistentHash)).toEqual([{ header: { headerName: 'x-user' } }]);
    const cookie = dr({
      loadBalancer: { consistentHash: { httpCookie: { name: 'sid', ttl: '60s' } } },
    }).trafficPolicy!;
    expect(hashPolicy(cookie.loadBalancer!.consistentHash)).toEqual([
      { cookie: { name: 'sid', ttl: { seconds: 60, nanos: 0 } } },
    ]);
    const src = dr({ loadBalancer: { consistentHash: { useSourceIp: true } } }).trafficPolicy!;
    expect(hashPolicy(src.loadBalancer!.consistentHash)).toEqual([
      { connectionProperties: { sourceIp: true } },
    ]);
  });

  it('maps connectionPool to circuit breakers and protocol options, and outlierDetection', () => {
    const tp = dr({
      connectionPool: {
        tcp: { maxConnections: 100, connectTimeout: '3s' },
        http: {
          http1MaxPendingRequests: 10,
          http2MaxRequests: 200,
          maxRetries: 3,
          maxRequestsPerConnection: 5,
          idleTimeout: '30s',
        },
      },
      outlierDetection: {
        consecutive5xxErrors: 7,
        interval: '5s',
        baseEjectionTime: '1m',
        maxEjectionPercent: 50,
      },
    }).trafficPolicy!;
    const c = wire(buildCluster({ name: 'c', trafficPolicy: tp, http2: false, tcp: false }));
    expect(c.connectTimeout).toEqual({ seconds: 3 });
    expect((c.circuitBreakers as { thresholds: unknown[] }).thresholds[0]).toEqual({
      maxConnections: 100,
      maxPendingRequests: 10,
      maxRequests: 200,
      maxRetries: 3,
      trackRemaining: true,
    });
    expect(c.outlierDetection).toEqual({
      consecutive_5xx: 7,
      enforcingConsecutive_5xx: 100,
      interval: { seconds: 5 },
      baseEjectionTime: { seconds: 60 },
      maxEjectionPercent: 50,
      enforcingSuccessRate: 0,
    });
    const opts = unpackTyped(
      (c.typedExtensionProtocolOptions as Record<string, unknown>)[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ],
    );
    expect(opts.commonHttpProtocolOptions).toEqual({
      maxRequestsPerConnection: 5,
      idleTimeout: { seconds: 30 },
    });
  });

  it('maps connectionPool.http.maxConcurrentStreams to the HTTP/2 protocol options', () => {
    const tp = dr({ connectionPool: { http: { maxConcurrentStreams: 3 } } }).trafficPolicy!;
    const opts = (http2: boolean): Record<string, unknown> => {
      const c = wire(buildCluster({ name: 'c', trafficPolicy: tp, http2, tcp: false }));
      return unpackTyped(
        (c.typedExtensionProtocolOptions as Record<string, unknown>)[
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
        ],
      );
    };
    expect(opts(true).explicitHttpConfig).toEqual({ http2ProtocolOptions: { maxConcurrentStreams: 3 } });
    expect(opts(false).useDownstreamProtocolConfig).toEqual({
      httpProtocolOptions: {},
      http2ProtocolOptions: { maxConcurrentStreams: 3 },
    });
  });

  it('rejects bad traffic policies with field paths', () => {
    const r = validateDestinationRule({
      metadata: { name: 'dr', namespace: 'default' },
      spec: {
        host: 'reviews',
        trafficPolicy: { loadBalancer: { simple: 'FASTEST' }, outlierDetection: { interval: 'soon' } },
      },
    });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors.map(e => e.path)).toEqual([
        'spec.trafficPolicy.loadBalancer.simple',
        'spec.trafficPolicy.outlierDetection.interval',
      ]);
  });
});

describe('endpoints and listeners', () => {
  it('puts backend pods at their HBONE port with the original destination in tunnel metadata', () => {
    const cla = buildLoadAssignment('c', [
      { ip: '10.1.0.5', targetPort: 8080, hbonePort: 15008, healthy: true },
    ]);
    const wire = decodeEnvoy(
      EnvoyType.clusterLoadAssignment,
      encodeEnvoy(EnvoyType.clusterLoadAssignment, cla),
    ) as {
      endpoints: { lbEndpoints: Record<string, unknown>[] }[];
    };
    const ep = wire.endpoints[0]!.lbEndpoints[0]!;
    expect(ep.endpoint).toEqual({ address: { socketAddress: { address: '10.1.0.5', portValue: 15008 } } });
    expect(ep.metadata).toEqual({
      filterMetadata: { tunnel: { fields: { destination: { stringValue: '10.1.0.5:8080' } } } },
    });
  });

  it('builds one main_internal filter chain per Service VIP and port, with RDS of the same name', () => {
    const name = 'inbound-vip|80|http|reviews.default.svc.cluster.local';
    const l = decodeEnvoy(
      EnvoyType.listener,
      encodeEnvoy(
        EnvoyType.listener,
        buildMainInternal([{ name, vips: ['10.0.0.1'], port: 80, tcp: false, rbac: [], fault: false }]),
      ),
    ) as { filterChains: { name: string; filterChainMatch: unknown; filters: { typedConfig: unknown }[] }[] };
    expect(l.filterChains[0]!.filterChainMatch).toEqual({
      destinationPort: 80,
      prefixRanges: [{ addressPrefix: '10.0.0.1', prefixLen: 32 }],
    });
    const hcm = unpackTyped(l.filterChains[0]!.filters[0]!.typedConfig);
    expect((hcm.rds as { routeConfigName: string }).routeConfigName).toBe(name);
  });
});

describe('AuthorizationPolicy to RBAC', () => {
  const policy = (name: string, spec: unknown) => {
    const r = validateAuthorizationPolicy({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: 'default' },
      spec,
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.value;
  };

  it('emits a DENY filter before an ALLOW filter, one RBAC policy per rule', () => {
    const { configs } = buildRbacFilters([
      policy('allow-get', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
          },
        ],
      }),
      policy('deny-admin', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'DENY',
        rules: [
          {
            to: [{ operation: { paths: ['/admin'] } }],
            when: [{ key: 'request.headers[X-Debug]', values: ['1'] }],
          },
        ],
      }),
    ]);
    const wire = configs.map(
      c =>
        decodeEnvoy(EnvoyType.rbac, encodeEnvoy(EnvoyType.rbac, c)) as {
          rules: { action?: string; policies: Record<string, unknown> };
        },
    );
    expect(wire.map(w => w.rules.action ?? 'ALLOW')).toEqual(['DENY', 'ALLOW']);
    expect(wire[0]!.rules.policies['ns[default]-policy[deny-admin]-rule[0]']).toEqual({
      // A request header condition is a principal, as upstream builds it.
      permissions: [{ urlPath: { path: { exact: '/admin' } } }],
      principals: [{ header: { name: 'x-debug', stringMatch: { exact: '1' } } }],
    });
    expect(wire[1]!.rules.policies['ns[default]-policy[allow-get]-rule[0]']).toEqual({
      permissions: [
        {
          andRules: {
            rules: [
              { header: { name: ':method', stringMatch: { exact: 'GET' } } },
              { urlPath: { path: { prefix: '/api/' } } },
            ],
          },
        },
      ],
      principals: [
        {
          filterState: {
            key: 'io.istio.peer_principal',
            stringMatch: { exact: 'spiffe://cluster.local/ns/default/sa/productpage' },
          },
        },
      ],
    });
  });

  it('makes an ALLOW policy without rules match nothing', () => {
    const { configs } = buildRbacFilters([
      policy('deny-all', {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp' }],
      }),
    ]);
    expect(configs).toEqual([{ rules: { action: 'ALLOW', policies: {} } }]);
  });

  it('translates AUDIT policies to an RBAC filter with action LOG, ahead of DENY and ALLOW (as upstream)', () => {
    const { configs } = buildRbacFilters([
      policy('allow-all', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'ALLOW',
        rules: [{}],
      }),
      policy('audit-writes', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'AUDIT',
        rules: [{ to: [{ operation: { methods: ['POST', 'PUT'] } }] }],
      }),
      policy('audit-unknown', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'AUDIT',
        rules: [{ when: [{ key: 'experimental.envoy.filters.whatever', values: ['x'] }] }],
      }),
      policy('deny-admin', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
      }),
    ]);
    const wire = configs.map(
      c =>
        decodeEnvoy(EnvoyType.rbac, encodeEnvoy(EnvoyType.rbac, c)) as {
          rules: { action?: string; policies: Record<string, unknown> };
        },
    );
    expect(wire.map(w => w.rules.action ?? 'ALLOW')).toEqual(['LOG', 'DENY', 'ALLOW']);
    // A rule with a condition we cannot evaluate audits nothing.
    expect(Object.keys(wire[0]!.rules.policies)).toEqual(['ns[default]-policy[audit-writes]-rule[0]']);
    expect(wire[0]!.rules.policies['ns[default]-policy[audit-writes]-rule[0]']).toEqual({
      permissions: [
        {
          orRules: {
            rules: [
              { header: { name: ':method', stringMatch: { exact: 'POST' } } },
              { header: { name: ':method', stringMatch: { exact: 'PUT' } } },
            ],
          },
        },
      ],
      principals: [{ any: true }],
    });
  });
});
