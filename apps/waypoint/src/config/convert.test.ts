import { describe, expect, it } from 'vitest';
import { any, assignment, edsCluster, httpListener, ms, router } from '../testing/fixtures.ts';
import { EnvoyType, decodeEnvoy, encodeEnvoy } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { convertCluster, convertClusterLoadAssignment, serviceHostOf } from './convert-cluster.ts';
import { convertListener } from './convert-listener.ts';
import { convertRouteConfiguration } from './convert-route.ts';
import type { Converted, ForwardAction, RedirectAction } from './types.ts';

/** Through the wire, as the xDS client sees it. */
const wire = (type: string, value: ProtoObject): ProtoObject => decodeEnvoy(type, encodeEnvoy(type, value));

function ok<T>(c: Converted<T>): T {
  if (!c.ok) throw new Error(c.problems.join('; '));
  return c.value;
}

function problems<T>(c: Converted<T>): readonly string[] {
  if (c.ok) throw new Error('expected problems');
  return c.problems;
}

/** A cluster named `c` (version 1) with the given fields, converted after the wire. */
const clusterC = (fields: ProtoObject): ReturnType<typeof convertCluster> =>
  convertCluster('c', '1', wire(EnvoyType.cluster, { name: 'c', ...fields }));

const route = (r: ProtoObject): ProtoObject =>
  wire(EnvoyType.routeConfiguration, {
    name: 'r',
    virtual_hosts: [{ name: 'v', domains: ['*'], routes: [r] }],
  });

describe('convertRouteConfiguration', () => {
  it('converts matches: prefix, exact, regex, headers (method included), query, case', () => {
    const table = ok(
      convertRouteConfiguration(
        'r',
        '1',
        wire(EnvoyType.routeConfiguration, {
          name: 'r',
          virtual_hosts: [
            {
              name: 'v',
              domains: ['Reviews', '*.example.com'],
              routes: [
                {
                  match: {
                    safe_regex: { regex: '/api/v[0-9]+/.*' },
                    headers: [
                      { name: ':method', string_match: { exact: 'GET' } },
                      { name: 'x-user', present_match: true, invert_match: true },
                    ],
                    query_parameters: [{ name: 'debug', string_match: { exact: '1' } }, { name: 'trace' }],
                  },
                  route: { cluster: 'c' },
                },
                { match: { path: '/Exact', case_sensitive: { value: false } }, route: { cluster: 'c' } },
              ],
            },
          ],
        }),
      ),
    );
    const vh = table.virtualHosts[0]!;
    expect(vh.domains).toEqual(['reviews', '*.example.com']);
    const m = vh.routes[0]!.match;
    expect(m.path.kind).toBe('regex');
    expect(m.headers).toMatchObject([
      { name: ':method', match: { kind: 'exact', value: 'GET' }, invert: false },
      { name: 'x-user', match: { kind: 'present', present: true }, invert: true },
    ]);
    expect(m.query).toMatchObject([
      { name: 'debug', match: { kind: 'exact', value: '1' } },
      { name: 'trace', match: { kind: 'present' } },
    ]);
    expect(vh.routes[1]!.match).toMatchObject({
      path: { kind: 'exact', value: '/exact' },
      caseSensitive: false,
    });
  });

  it('converts weighted clusters, timeouts, retries, rewrites and hash policies', () => {
    const table = ok(
      convertRouteConfiguration(
        'r',
        '1',
        route({
          match: { prefix: '/a/' },
          route: {
            weighted_clusters: {
              clusters: [
                { name: 'x', weight: { value: 90 } },
                { name: 'y', weight: { value: 10 } },
              ],
            },
            timeout: ms(1500),
            prefix_rewrite: '/b/',
            host_rewrite_literal: 'other',
            hash_policy: [{ header: { header_name: 'X-User' } }],
            retry_policy: {
              retry_on: 'connect-failure,retriable-status-codes',
              num_retries: { value: 4 },
              per_try_timeout: ms(250),
              retriable_status_codes: [409],
              retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
            },
          },
        }),
      ),
    );
    const action = table.virtualHosts[0]!.routes[0]!.action as ForwardAction;
    expect(action.clusters.map(c => [c.name, c.weight])).toEqual([
      ['x', 90],
      ['y', 10],
    ]);
    expect(action.totalWeight).toBe(100);
    expect(action.timeoutMs).toBe(1500);
    expect(action.prefixRewrite).toBe('/b/');
    expect(action.hostRewrite).toBe('other');
    expect(action.hashPolicy).toEqual([{ kind: 'header', name: 'x-user' }]);
    expect(action.retry).toMatchObject({ numRetries: 4, perTryTimeoutMs: 250 });
    expect([...action.retry!.retryOn]).toEqual(['connect-failure', 'retriable-status-codes']);
    expect([...action.retry!.retriableStatusCodes]).toEqual([409]);
  });

  it("defaults the route timeout to Envoy's 15 s", () => {
    const table = ok(
      convertRouteConfiguration('r', '1', route({ match: { prefix: '/' }, route: { cluster: 'c' } })),
    );
    expect((table.virtualHosts[0]!.routes[0]!.action as ForwardAction).timeoutMs).toBe(15_000);
  });

  it('reads how gRPC deadlines apply: max_grpc_timeout (istiod) and max_stream_duration.grpc_timeout_header_max', () => {
    const actionOf = (r: ProtoObject): ForwardAction =>
      ok(convertRouteConfiguration('r', '1', route({ match: { prefix: '/' }, route: r }))).virtualHosts[0]!
        .routes[0]!.action as ForwardAction;
    expect(actionOf({ cluster: 'c', timeout: ms(0), max_grpc_timeout: ms(0) }).grpcTimeout).toEqual({
      mode: 'replace',
      maxMs: 0,
    });
    expect(actionOf({ cluster: 'c', timeout: ms(2000), max_grpc_timeout: ms(2000) }).grpcTimeout).toEqual({
      mode: 'replace',
      maxMs: 2000,
    });
    expect(
      actionOf({ cluster: 'c', max_stream_duration: { grpc_timeout_header_max: ms(500) } }).grpcTimeout,
    ).toEqual({ mode: 'limit', maxMs: 500 });
    expect(actionOf({ cluster: 'c' }).grpcTimeout).toBeUndefined();
  });

  it('converts redirects and header modifiers', () => {
    const table = ok(
      convertRouteConfiguration(
        'r',
        '1',
        route({
          match: { prefix: '/' },
          redirect: { https_redirect: true, response_code: 'PERMANENT_REDIRECT', strip_query: true },
          response_headers_to_add: [{ header: { key: 'X-A', value: '1' }, append_action: 'ADD_IF_ABSENT' }],
          response_headers_to_remove: ['Server'],
        }),
      ),
    );
    const r = table.virtualHosts[0]!.routes[0]!;
    expect(r.action as RedirectAction).toMatchObject({
      kind: 'redirect',
      scheme: 'https',
      status: 308,
      stripQuery: true,
    });
    expect(r.responseHeaders).toEqual({
      add: [{ name: 'x-a', value: '1', mode: 'if-absent' }],
      remove: ['server'],
    });
  });

  it('reports unsupported fields and bad values with their paths', () => {
    const p = problems(
      convertRouteConfiguration(
        'r',
        '1',
        route({
          match: { prefix: '/', runtime_fraction: { default_value: { numerator: 1 } } },
          route: {
            cluster: 'c',
            retry_policy: { retry_on: '5xx,envoy-ratelimited' },
            cors: { allow_credentials: { value: true } },
          },
        }),
      ),
    );
    expect(p).toEqual([
      'virtual_hosts[0].routes[0].match.runtime_fraction: is not supported by the waypoint',
      'virtual_hosts[0].routes[0].route.cors: is not supported by the waypoint',
      'virtual_hosts[0].routes[0].route.retry_policy.retry_on: condition "envoy-ratelimited" is not supported',
    ]);
  });

  it("reads the fault filter's per-route config (istiod's form: percentages per million)", () => {
    const table = ok(
      convertRouteConfiguration(
        'r',
        '1',
        route({
          match: { prefix: '/' },
          route: { cluster: 'c' },
          typed_per_filter_config: {
            'envoy.filters.http.fault': any(EnvoyType.fault, {
              delay: { fixed_delay: ms(1500), percentage: { numerator: 500_000, denominator: 'MILLION' } },
              abort: { http_status: 503, percentage: { numerator: 10, denominator: 'HUNDRED' } },
            }),
          },
        }),
      ),
    );
    expect(table.virtualHosts[0]!.routes[0]!.fault).toEqual({
      delay: { fixedDelayMs: 1500, perMillion: 500_000 },
      abort: { httpStatus: 503, perMillion: 100_000 },
    });
    const plain = ok(
      convertRouteConfiguration('r', '1', route({ match: { prefix: '/' }, route: { cluster: 'c' } })),
    );
    expect(plain.virtualHosts[0]!.routes[0]!.fault).toBeUndefined();
  });

  it('rejects per-route config of other filters and fault kinds it does not implement', () => {
    const p = problems(
      convertRouteConfiguration(
        'r',
        '1',
        route({
          match: { prefix: '/' },
          route: { cluster: 'c' },
          typed_per_filter_config: {
            'envoy.filters.http.fault': any(EnvoyType.fault, {
              abort: { grpc_status: 14, percentage: { numerator: 1 } },
              delay: { header_delay: {} },
            }),
            'envoy.filters.http.rbac': any(EnvoyType.httpRbac, {}),
          },
        }),
      ),
    );
    const at = 'virtual_hosts[0].routes[0].typed_per_filter_config';
    expect(p).toEqual([
      `${at}["envoy.filters.http.fault"].delay.header_delay: is not supported by the waypoint`,
      `${at}["envoy.filters.http.fault"].delay: needs fixed_delay (header_delay is not supported)`,
      `${at}["envoy.filters.http.fault"].abort.grpc_status: is not supported by the waypoint`,
      `${at}["envoy.filters.http.fault"].abort.http_status: needs an HTTP status 200..599 (grpc_status and header_abort are not supported)`,
      `${at}["envoy.filters.http.rbac"]: per-route config of "envoy.filters.http.rbac" (type.googleapis.com/${EnvoyType.httpRbac}) is not supported`,
    ]);
  });

  it('rejects an invalid regex, a name mismatch and duplicate domains', () => {
    const p = problems(
      convertRouteConfiguration(
        'other',
        '1',
        wire(EnvoyType.routeConfiguration, {
          name: 'r',
          virtual_hosts: [
            {
              name: 'a',
              domains: ['x'],
              routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }],
            },
            { name: 'b', domains: ['x'] },
          ],
        }),
      ),
    );
    expect(p[0]).toBe('name: is "r", not the resource name "other"');
    expect(p[1]).toMatch(/^virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid regex "\("/);
    expect(p[2]).toBe('virtual_hosts[1].domains: domain "x" is in two virtual hosts');
  });
});

describe('convertCluster and convertClusterLoadAssignment', () => {
  it('converts LB policy, circuit breakers and the EDS name', () => {
    const c = ok(
      convertCluster(
        'outbound|80||reviews.default.svc.cluster.local',
        '3',
        wire(
          EnvoyType.cluster,
          edsCluster('outbound|80||reviews.default.svc.cluster.local', {
            lb_policy: 'LEAST_REQUEST',
            circuit_breakers: {
              thresholds: [
                {
                  max_connections: { value: 10 },
                  max_pending_requests: { value: 2 },
                  max_requests: { value: 5 },
                  max_retries: { value: 1 },
                },
              ],
            },
          }),
        ),
      ),
    );
    expect(c).toMatchObject({
      edsName: 'outbound|80||reviews.default.svc.cluster.local',
      lbPolicy: 'least-request',
      connectTimeoutMs: 1000,
      circuitBreakers: { maxConnections: 10, maxPendingRequests: 2, maxRequests: 5, maxRetries: 1 },
      serviceHost: 'reviews.default.svc.cluster.local',
    });
  });

  it('rejects unsupported cluster types and fields', () => {
    expect(
      problems(
        clusterC({
          type: 'ORIGINAL_DST',
          lb_policy: 'LEAST_REQUEST',
          outlier_detection: {
            consecutive_5xx: { value: 3 },
            enforcing_success_rate: { value: 100 },
            failure_percentage_threshold: { value: 50 },
          },
        }),
      ),
    ).toEqual([
      'lb_policy: is LEAST_REQUEST; an ORIGINAL_DST cluster needs CLUSTER_PROVIDED',
      'outlier_detection.failure_percentage_threshold: is not supported by the waypoint',
      'outlier_detection.enforcing_success_rate: success-rate ejection is not supported (set it to 0)',
    ]);
  });

  it("converts outlier detection as istiod sends it, with Envoy's defaults for unset fields", () => {
    const convert = (od: ProtoObject) =>
      ok(clusterC(edsCluster('c', { outlier_detection: od }))).outlierDetection;
    expect(
      convert({
        consecutive_5xx: { value: 3 },
        enforcing_consecutive_5xx: { value: 100 },
        interval: ms(2000),
        base_ejection_time: ms(60_000),
        max_ejection_percent: { value: 50 },
        enforcing_success_rate: { value: 0 },
      }),
    ).toEqual({
      consecutive5xx: 3,
      consecutiveGatewayFailure: 0,
      intervalMs: 2000,
      baseEjectionTimeMs: 60_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 50,
    });
    // Envoy's defaults: 5 consecutive 5xx enforced; gateway failures counted but not enforced.
    expect(convert({ consecutive_gateway_failure: { value: 2 } })).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayFailure: 0,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 10,
    });
    expect(
      convert({
        enforcing_consecutive_5xx: { value: 0 },
        consecutive_gateway_failure: { value: 2 },
        enforcing_consecutive_gateway_failure: { value: 100 },
      }),
    ).toMatchObject({ consecutive5xx: 0, consecutiveGatewayFailure: 2 });
    expect(ok(clusterC(edsCluster('c'))).outlierDetection).toBeUndefined();
  });

  it('reads endpoint weight, health, workload, identity and the HBONE next hop', () => {
    const set = ok(
      convertClusterLoadAssignment(
        'c',
        '2',
        wire(
          EnvoyType.clusterLoadAssignment,
          assignment('c', [
            {
              address: '10.0.0.5',
              port: 9080,
              hbone: '10.0.0.5:15008',
              identity: 'spiffe://cluster.local/ns/default/sa/r',
              workload: 'r-v1;default;r;v1;Kubernetes',
            },
          ]),
        ),
      ),
    );
    expect(set.endpoints).toEqual([
      {
        address: '10.0.0.5',
        port: 9080,
        hboneAddress: '10.0.0.5',
        hbonePort: 15008,
        weight: 1,
        healthy: true,
        identity: 'spiffe://cluster.local/ns/default/sa/r',
        workload: {
          name: 'r-v1',
          namespace: 'default',
          canonicalService: 'r',
          canonicalRevision: 'v1',
          cluster: 'Kubernetes',
        },
      },
    ]);
  });

  it("reads upstream's form: the endpoint is the HBONE address, tunnel.destination the authority", () => {
    const set = ok(
      convertClusterLoadAssignment(
        'c',
        '1',
        wire(EnvoyType.clusterLoadAssignment, {
          cluster_name: 'c',
          endpoints: [
            {
              lb_endpoints: [
                {
                  endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 15008 } } },
                  health_status: 'UNHEALTHY',
                  metadata: {
                    filter_metadata: {
                      tunnel: { fields: { destination: { stringValue: '10.0.0.7:9080' } } },
                    },
                  },
                },
              ],
            },
          ],
        }),
      ),
    );
    expect(set.endpoints[0]).toMatchObject({
      address: '10.0.0.7',
      port: 9080,
      hboneAddress: '10.0.0.7',
      hbonePort: 15008,
      healthy: false,
    });
  });

  it('reads the upstream protocol from HttpProtocolOptions (as istiod sends it)', () => {
    const withOptions = (options: ProtoObject): ProtoObject =>
      wire(
        EnvoyType.cluster,
        edsCluster('c', {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': any(
              EnvoyType.httpProtocolOptions,
              options,
            ),
          },
        }),
      );
    const protocol = (options: ProtoObject) =>
      ok(convertCluster('c', '1', withOptions(options))).upstreamProtocol;
    expect(ok(clusterC(edsCluster('c'))).upstreamProtocol).toBe('http1');
    expect(protocol({ explicit_http_config: { http2_protocol_options: {} } })).toBe('http2');
    expect(protocol({ explicit_http_config: { http_protocol_options: {} } })).toBe('http1');
    expect(
      protocol({
        common_http_protocol_options: { idle_timeout: ms(30_000), max_requests_per_connection: { value: 5 } },
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      }),
    ).toBe('downstream');
    expect(problems(convertCluster('c', '1', withOptions({ auto_config: {} })))).toEqual([
      'typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].auto_config: is not supported by the waypoint',
    ]);
  });

  it('reads the HTTP/2 pool limits: max_concurrent_streams and max_requests_per_connection', () => {
    const withOptions = (options: ProtoObject): ProtoObject =>
      wire(
        EnvoyType.cluster,
        edsCluster('c', {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': any(
              EnvoyType.httpProtocolOptions,
              options,
            ),
          },
        }),
      );
    expect(ok(clusterC(edsCluster('c'))).connectionLimits).toBeUndefined();
    expect(
      ok(convertCluster('c', '1', withOptions({ explicit_http_config: { http2_protocol_options: {} } })))
        .connectionLimits,
    ).toBeUndefined();
    expect(
      ok(
        convertCluster(
          'c',
          '1',
          withOptions({
            common_http_protocol_options: { max_requests_per_connection: { value: 7 } },
            explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 3 } } },
          }),
        ),
      ).connectionLimits,
    ).toEqual({ maxRequestsPerConnection: 7, maxConcurrentStreams: 3 });
    expect(
      ok(
        convertCluster(
          'c',
          '1',
          withOptions({
            common_http_protocol_options: { max_requests_per_connection: { value: 2 } },
            use_downstream_protocol_config: {},
          }),
        ),
      ).connectionLimits,
    ).toEqual({ maxRequestsPerConnection: 2, maxConcurrentStreams: 2_147_483_647 });
    expect(
      ok(
        convertCluster(
          'c',
          '1',
          withOptions({
            use_downstream_protocol_config: {
              http_protocol_options: {},
              http2_protocol_options: { max_concurrent_streams: { value: 4 } },
            },
          }),
        ),
      ).connectionLimits,
    ).toEqual({ maxRequestsPerConnection: 0, maxConcurrentStreams: 4 });
    expect(
      problems(
        convertCluster(
          'c',
          '1',
          withOptions({
            explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 0 } } },
          }),
        ),
      ),
    ).toEqual([
      'typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http2_protocol_options.max_concurrent_streams: must be at least 1',
    ]);
  });

  it("accepts upstream's scaffolding: connect_terminate and the internal-listener cluster", () => {
    expect(
      ok(
        convertListener('connect_terminate', '1', {
          name: 'connect_terminate',
          filter_chains: [{ name: 'x' }],
        }),
      ).chains,
    ).toEqual([]);
    const c = ok(
      convertCluster(
        'main_internal',
        '1',
        wire(EnvoyType.cluster, {
          name: 'main_internal',
          type: 'STATIC',
          load_assignment: {
            cluster_name: 'main_internal',
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: {
                      address: { envoy_internal_address: { server_listener_name: 'main_internal' } },
                    },
                  },
                ],
              },
            ],
          },
        }),
      ),
    );
    expect(c.staticEndpoints).toEqual([]);
  });

  it('converts STRICT_DNS and LOGICAL_DNS clusters with their hosts and resolver settings', () => {
    const dns = (type: string, extra: ProtoObject = {}): ProtoObject =>
      wire(EnvoyType.cluster, {
        name: 'inbound-vip|80|http|api.example.com',
        type,
        dns_lookup_family: 'V4_ONLY',
        dns_refresh_rate: ms(60_000),
        respect_dns_ttl: true,
        load_assignment: {
          cluster_name: 'inbound-vip|80|http|api.example.com',
          endpoints: [
            {
              lb_endpoints: [
                {
                  endpoint: { address: { socket_address: { address: 'api.example.com', port_value: 443 } } },
                },
                {
                  endpoint: { address: { socket_address: { address: '192.0.2.7', port_value: 8443 } } },
                  load_balancing_weight: { value: 3 },
                },
              ],
            },
          ],
        },
        ...extra,
      });
    const strict = ok(convertCluster('inbound-vip|80|http|api.example.com', '1', dns('STRICT_DNS')));
    expect(strict.discovery).toEqual({
      kind: 'dns',
      mode: 'strict',
      family: 'v4-only',
      refreshMs: 60_000,
      hosts: [
        { host: 'api.example.com', port: 443, weight: 1 },
        { host: '192.0.2.7', port: 8443, weight: 3 },
      ],
    });
    expect(strict.serviceHost).toBe('api.example.com');
    const logical = ok(
      convertCluster(
        'inbound-vip|80|http|api.example.com',
        '1',
        dns('LOGICAL_DNS', { dns_lookup_family: undefined, dns_refresh_rate: undefined }),
      ),
    );
    // Envoy's defaults: AUTO and 5 s.
    expect(logical.discovery).toMatchObject({
      kind: 'dns',
      mode: 'logical',
      family: 'auto',
      refreshMs: 5000,
    });
    expect(
      problems(
        convertCluster(
          'inbound-vip|80|http|api.example.com',
          '1',
          dns('STRICT_DNS', {
            transport_socket: { name: 'envoy.transport_sockets.tls' },
          }),
        ),
      ),
    ).toEqual([
      'transport_socket.typed_config: no typed_config is not supported (expected UpstreamTlsContext)',
    ]);
    expect(problems(clusterC({ type: 'LOGICAL_DNS' }))).toEqual([
      'load_assignment: a LOGICAL_DNS cluster needs a load_assignment',
    ]);
  });

  it('converts ORIGINAL_DST clusters (CLUSTER_PROVIDED, no endpoints, no HTTP header)', () => {
    const c = ok(
      convertCluster(
        'inbound-vip|80|http|any.example.com',
        '1',
        wire(EnvoyType.cluster, {
          name: 'inbound-vip|80|http|any.example.com',
          type: 'ORIGINAL_DST',
          lb_policy: 'CLUSTER_PROVIDED',
        }),
      ),
    );
    expect(c.discovery).toEqual({ kind: 'original-dst' });
    expect(
      problems(
        clusterC({
          type: 'ORIGINAL_DST',
          lb_policy: 'CLUSTER_PROVIDED',
          original_dst_lb_config: { use_http_header: true },
          load_assignment: { cluster_name: 'c' },
        }),
      ),
    ).toEqual([
      'load_assignment: an ORIGINAL_DST cluster takes no endpoints',
      'original_dst_lb_config.use_http_header: is not supported (the CONNECT authority is the destination)',
    ]);
  });

  it('parses service hosts from Istio cluster names', () => {
    expect(serviceHostOf('inbound-vip|80|http|reviews.default.svc.cluster.local')).toBe(
      'reviews.default.svc.cluster.local',
    );
    expect(serviceHostOf('main_internal')).toBeUndefined();
  });
});

describe('convertListener', () => {
  it('converts the HTTP chain with its match, RDS name and RBAC filter', () => {
    const l = ok(
      convertListener(
        'main',
        '1',
        wire(
          EnvoyType.listener,
          httpListener('main', '10.96.0.10', 80, 'r80', {
            rules: {
              action: 'ALLOW',
              policies: {
                p: {
                  permissions: [{ any: true }],
                  principals: [{ authenticated: { principal_name: { exact: 'spiffe://x' } } }],
                },
              },
            },
          }),
        ),
      ),
    );
    const chain = l.chains[0]!;
    expect(chain.match.destinationPort).toBe(80);
    expect(chain.match.prefixRanges[0]).toMatchObject({ family: 4, prefixLength: 32 });
    expect(chain.action).toMatchObject({
      kind: 'http',
      routes: { rds: 'r80' },
      rbac: [{ rules: { action: 'ALLOW' } }],
    });
  });

  it('rejects unknown HTTP filters, a missing router and filter_chain_matcher', () => {
    const listener = httpListener('main', '10.96.0.10', 80, 'r80');
    const chain = (listener.filter_chains as ProtoObject[])[0]!;
    const hcm = (chain.filters as ProtoObject[])[0]!.typed_config as ProtoObject;
    hcm.http_filters = [
      {
        name: 'envoy.filters.http.fault',
        typed_config: any('envoy.extensions.filters.http.router.v3.Router', {}),
      },
    ];
    const p = problems(
      convertListener(
        'main',
        '1',
        wire(EnvoyType.listener, { ...listener, filter_chain_matcher: { on_no_match: {} } }),
      ),
    );
    expect(p).toContain('filter_chain_matcher: is not supported by the waypoint');
    expect(p.some(x => x.includes('the last HTTP filter must be the router'))).toBe(false);
    hcm.http_filters = [{ name: 'envoy.filters.http.jwt_authn' }];
    const q = problems(convertListener('main', '1', wire(EnvoyType.listener, listener)));
    expect(q).toEqual([
      'filter_chains[0].filters[0].typed_config.http_filters[0]: HTTP filter "envoy.filters.http.jwt_authn" (no typed_config) is not supported',
      'filter_chains[0].filters[0].typed_config.http_filters: the last HTTP filter must be the router',
    ]);
    expect(router.name).toBe('envoy.filters.http.router');
  });
  it('reads the fault filter of a chain (as istiod sends it: an empty config before the router)', () => {
    const listener = httpListener('main', '10.96.0.10', 80, 'r80');
    const hcm = ((listener.filter_chains as ProtoObject[])[0]!.filters as ProtoObject[])[0]!
      .typed_config as ProtoObject;
    hcm.http_filters = [{ name: 'envoy.filters.http.fault', typed_config: any(EnvoyType.fault, {}) }, router];
    const chain = ok(convertListener('main', '1', wire(EnvoyType.listener, listener))).chains[0]!;
    expect(chain.action).toMatchObject({ kind: 'http', fault: { delay: undefined, abort: undefined } });
    hcm.http_filters = [router];
    const without = ok(convertListener('main', '1', wire(EnvoyType.listener, listener))).chains[0]!;
    expect(without.action).toMatchObject({ kind: 'http', fault: undefined });
  });

  it('accepts an internal listener with no chains (no Service bound yet), not a plain one', () => {
    const empty = convertListener(
      'main_internal',
      '1',
      wire(EnvoyType.listener, { name: 'main_internal', internal_listener: {} }),
    );
    expect(empty).toMatchObject({ ok: true, value: { chains: [], defaultChain: undefined } });
    expect(problems(convertListener('main', '1', wire(EnvoyType.listener, { name: 'main' })))).toEqual([
      'filter_chains: a listener needs at least one filter chain',
    ]);
  });
});

describe('convertListener: gateway listeners (router mode)', () => {
  const hcmFilter = {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: any(EnvoyType.httpConnectionManager, {
      stat_prefix: 'https.443',
      rds: { route_config_name: 'https.443' },
      http_filters: [router],
    }),
  };
  const tls = (context: ProtoObject): ProtoObject => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: any(EnvoyType.downstreamTlsContext, context),
  });
  const gatewayListener = (chain: ProtoObject): ProtoObject =>
    wire(EnvoyType.listener, {
      name: '0.0.0.0_443',
      address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
      listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
      filter_chains: [{ filters: [hcmFilter], ...chain }],
    });

  it('keeps the socket address, the server names and the inline certificates (bytes or string)', () => {
    const listener = ok(
      convertListener(
        '0.0.0.0_443',
        '1',
        gatewayListener({
          filter_chain_match: { server_names: ['Bookinfo.Example.com', '*.example.org'] },
          transport_socket: tls({
            common_tls_context: {
              alpn_protocols: ['h2', 'http/1.1'],
              tls_certificates: [
                {
                  certificate_chain: { inline_bytes: Buffer.from('CERT').toString('base64') },
                  private_key: { inline_string: 'KEY' },
                },
              ],
            },
          }),
        }),
      ),
    );
    expect(listener.address).toEqual({ host: '0.0.0.0', port: 443 });
    const chain = listener.chains[0]!;
    expect(chain.match.serverNames).toEqual(['bookinfo.example.com', '*.example.org']);
    expect(chain.tls).toEqual({
      certificates: [{ certificateChain: 'CERT', privateKey: 'KEY' }],
      alpn: ['h2', 'http/1.1'],
    });
  });

  it('reports SDS, a client certificate requirement without a CA, and malformed server names', () => {
    const q = problems(
      convertListener(
        '0.0.0.0_443',
        '1',
        gatewayListener({
          filter_chain_match: { server_names: ['a.*.example.com'] },
          transport_socket: tls({
            require_client_certificate: { value: true },
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'kubernetes://gw-cert' }],
            },
          }),
        }),
      ),
    );
    expect(q.join('\n')).toMatch(
      /server_names\[0\]: "a\.\*\.example\.com" is neither a name nor a \*\.suffix wildcard/,
    );
    expect(q.join('\n')).toMatch(
      /require_client_certificate: needs common_tls_context\.validation_context\.trusted_ca/,
    );
    expect(q.join('\n')).toMatch(/tls_certificate_sds_secret_configs/);
    expect(q.join('\n')).toMatch(/needs at least one certificate/);
    const passthrough = problems(
      convertListener(
        '0.0.0.0_443',
        '1',
        gatewayListener({
          filter_chain_match: { transport_protocol: 'tls', server_names: ['a.example.com'] },
        }),
      ),
    );
    expect(passthrough.join('\n')).toMatch(
      /TLS passthrough \(tls without a transport_socket\) needs a tcp_proxy filter/,
    );
  });

  it('keeps a MUTUAL chain (client CA) and a TLS passthrough chain (tcp_proxy, transport_protocol tls)', () => {
    const mutual = ok(
      convertListener(
        '0.0.0.0_443',
        '1',
        gatewayListener({
          transport_socket: tls({
            require_client_certificate: { value: true },
            common_tls_context: {
              tls_certificates: [
                { certificate_chain: { inline_string: 'CERT' }, private_key: { inline_string: 'KEY' } },
              ],
              validation_context: { trusted_ca: { inline_bytes: Buffer.from('CA').toString('base64') } },
            },
          }),
        }),
      ),
    );
    expect(mutual.chains[0]!.tls).toEqual({
      certificates: [{ certificateChain: 'CERT', privateKey: 'KEY' }],
      alpn: [],
      clientCa: 'CA',
    });
    const passthrough = ok(
      convertListener(
        '0.0.0.0_443',
        '1',
        wire(EnvoyType.listener, {
          name: '0.0.0.0_443',
          address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
          filter_chains: [
            {
              name: 'tls~ns/route~pt.example.com',
              filter_chain_match: { transport_protocol: 'tls', server_names: ['pt.example.com'] },
              filters: [
                {
                  name: 'envoy.filters.network.tcp_proxy',
                  typed_config: any(EnvoyType.tcpProxy, {
                    stat_prefix: 'outbound|443||tls.ns.svc.cluster.local',
                    cluster: 'outbound|443||tls.ns.svc.cluster.local',
                  }),
                },
              ],
            },
          ],
        }),
      ),
    );
    const chain = passthrough.chains[0]!;
    expect(chain.tls).toBeUndefined();
    expect(chain.match).toMatchObject({ serverNames: ['pt.example.com'], transportProtocol: 'tls' });
    expect(chain.action).toMatchObject({ kind: 'tcp', cluster: 'outbound|443||tls.ns.svc.cluster.local' });
  });
});
