// The Envoy resources the waypoint benchmark serves over ADS, in the object form the protos take
// (`{ value }` wrappers, `{ seconds, nanos }` durations, `Any` with `@type`), shaped as istiod
// writes them for a waypoint: one inbound listener chain per service VIP:port using RDS, one EDS
// cluster per service whose endpoint is reached over HBONE. Two services: `echo-h1` (HTTP/1.1
// upstream, endpoint port 8080) and `echo-h2` (h2c upstream, `http2_protocol_options`, endpoint
// port 8081); HTTP/1.1 load goes to the first, h2c load to the second.
//
// Two variants:
//   plain:  listener with the router only; one route `/` → the cluster.
//   policy: an HTTP RBAC ALLOW filter with 10 policies (9 for other principals, the last one
//           admitting the client's principal for POST on /api/*), and 10 routes of which the
//           first 9 do not match (path prefixes and header matches) before the one that does.
import { EnvoyType } from '@ambient-mesh/waypoint';

type ProtoObject = Record<string, unknown>;

export interface Service {
  readonly name: string;
  readonly vip: string;
  readonly host: string;
  readonly route: string;
  readonly cluster: string;
  readonly endpoint: { readonly address: string; readonly port: number };
  readonly h2: boolean;
}

function service(name: string, vip: string, endpointPort: number, h2: boolean): Service {
  const host = `${name}.bench.svc.cluster.local`;
  return {
    name,
    vip,
    host,
    route: `${name}.80`,
    cluster: `outbound|80||${host}`,
    endpoint: { address: '10.1.0.1', port: endpointPort },
    h2,
  };
}

export const SERVICES = {
  h1: service('echo-h1', '10.96.0.10', 8080, false),
  h2: service('echo-h2', '10.96.0.11', 8081, true),
} as const;

/** Answered 403 under the policy variant (not POST on /api/*), 200 otherwise. */
export const DENY_PROBE_PATH = '/probe';
/** What the load generator requests: allowed by the policy and matched by its last route. */
export const REQUEST_PATH = '/api/echo';

const any = (type: string, value: ProtoObject): ProtoObject => ({
  '@type': `type.googleapis.com/${type}`,
  ...value,
});
const ms = (n: number): ProtoObject => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1e6 });

function rbacAllow(clientPrincipal: string): ProtoObject {
  const principal = (id: string): ProtoObject => ({
    filter_state: { key: 'io.istio.peer_principal', string_match: { exact: id } },
  });
  const policies: Record<string, ProtoObject> = {};
  for (let i = 0; i < 9; i++) {
    policies[`ns[bench]-policy[other-${i}]-rule[0]`] = {
      permissions: [{ url_path: { path: { prefix: `/other-${i}/` } } }],
      principals: [principal(`spiffe://cluster.local/ns/bench/sa/other-${i}`)],
    };
  }
  policies['ns[bench]-policy[allow-client]-rule[0]'] = {
    permissions: [
      {
        and_rules: {
          rules: [
            { url_path: { path: { prefix: '/api/' } } },
            { header: { name: ':method', string_match: { exact: 'POST' } } },
          ],
        },
      },
    ],
    principals: [principal(clientPrincipal)],
  };
  return { rules: { action: 'ALLOW', policies } };
}

export function listener(variant: 'plain' | 'policy', clientPrincipal: string): ProtoObject {
  const router = { name: 'envoy.filters.http.router', typed_config: any(EnvoyType.router, {}) };
  const httpFilters =
    variant === 'plain'
      ? [router]
      : [
          {
            name: 'envoy.filters.http.rbac',
            typed_config: any(EnvoyType.httpRbac, rbacAllow(clientPrincipal)),
          },
          router,
        ];
  return {
    name: 'main_internal',
    filter_chains: Object.values(SERVICES).map(s => ({
      name: `${s.vip}_80`,
      filter_chain_match: {
        destination_port: { value: 80 },
        prefix_ranges: [{ address_prefix: s.vip, prefix_len: { value: 32 } }],
      },
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: any(EnvoyType.httpConnectionManager, {
            stat_prefix: s.route,
            rds: { route_config_name: s.route },
            http_filters: httpFilters,
          }),
        },
      ],
    })),
  };
}

export function routeConfiguration(s: Service, variant: 'plain' | 'policy'): ProtoObject {
  const to = { cluster: s.cluster, timeout: ms(0) };
  const misses: ProtoObject[] = [];
  if (variant === 'policy') {
    for (let i = 0; i < 5; i++) misses.push({ name: `path-${i}`, match: { prefix: `/v${i}/` }, route: to });
    for (let i = 0; i < 4; i++)
      misses.push({
        name: `header-${i}`,
        match: { prefix: '/', headers: [{ name: 'x-canary', string_match: { exact: `c${i}` } }] },
        route: to,
      });
  }
  return {
    name: s.route,
    virtual_hosts: [
      {
        name: s.name,
        domains: [s.host, `${s.vip}:80`, '*'],
        routes: [...misses, { name: 'default', match: { prefix: '/' }, route: to }],
      },
    ],
  };
}

/** HTTP/1.1 upstream, or h2c (`explicit_http_config.http2_protocol_options`) for the h2 service. */
export function cluster(s: Service): ProtoObject {
  return {
    name: s.cluster,
    type: 'EDS',
    eds_cluster_config: { service_name: s.cluster },
    connect_timeout: ms(1000),
    ...(s.h2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': any(EnvoyType.httpProtocolOptions, {
              explicit_http_config: { http2_protocol_options: {} },
            }),
          },
        }
      : {}),
  };
}

export function assignment(s: Service, hboneAddress: string, serverIdentity: string): ProtoObject {
  const str = (v: string): ProtoObject => ({ stringValue: v });
  return {
    cluster_name: s.cluster,
    endpoints: [
      {
        lb_endpoints: [
          {
            endpoint: {
              address: { socket_address: { address: s.endpoint.address, port_value: s.endpoint.port } },
            },
            metadata: {
              filter_metadata: {
                istio: {
                  fields: { workload: str('echo;bench;echo;v1;Kubernetes'), identity: str(serverIdentity) },
                },
                tunnel: { fields: { address: str(hboneAddress) } },
              },
            },
          },
        ],
      },
    ],
  };
}
