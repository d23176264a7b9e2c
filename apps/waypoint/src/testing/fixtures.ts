/**
 * Envoy resources for tests, in the object form the protos take (`{ value }` wrappers,
 * `{ seconds, nanos }` durations, `Any` with `@type`, Structs as `{ fields }`).
 */
import { EnvoyType } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';

export const any = (type: string, value: ProtoObject): ProtoObject => ({
  '@type': `type.googleapis.com/${type}`,
  ...value,
});

export const ms = (n: number): ProtoObject => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1e6 });

export const router: ProtoObject = {
  name: 'envoy.filters.http.router',
  typed_config: any(EnvoyType.router, {}),
};

/**
 * A listener `name` (default `main_internal`) with one HTTP chain (`chainName`) for `vip:port` on
 * RDS `routeName`: the HCM runs `httpFilters` then the router, and carries any other `hcm` fields.
 */
export function hcmListener(o: {
  readonly name?: string;
  readonly chainName: string;
  readonly vip: string;
  readonly port: number;
  readonly routeName: string;
  readonly httpFilters?: readonly ProtoObject[];
  readonly hcm?: ProtoObject;
}): ProtoObject {
  return {
    name: o.name ?? 'main_internal',
    filter_chains: [
      {
        name: o.chainName,
        filter_chain_match: {
          destination_port: { value: o.port },
          prefix_ranges: [{ address_prefix: o.vip, prefix_len: { value: 32 } }],
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: any(EnvoyType.httpConnectionManager, {
              stat_prefix: o.routeName,
              rds: { route_config_name: o.routeName },
              http_filters: [...(o.httpFilters ?? []), router],
              ...o.hcm,
            }),
          },
        ],
      },
    ],
  };
}

/** A listener with one HTTP chain for `vip:port` using RDS `routeName`, with optional RBAC rules. */
export function httpListener(
  name: string,
  vip: string,
  port: number,
  routeName: string,
  rbac?: ProtoObject,
): ProtoObject {
  return hcmListener({
    name,
    chainName: `${vip}_${port}`,
    vip,
    port,
    routeName,
    httpFilters:
      rbac === undefined
        ? []
        : [{ name: 'envoy.filters.http.rbac', typed_config: any(EnvoyType.httpRbac, rbac) }],
  });
}

/** A RouteConfiguration `name` with one virtual host (any domain) sending every path to `cluster`, no timeout. */
export function catchAllRoute(name: string, cluster: string): ProtoObject {
  return {
    name,
    virtual_hosts: [
      {
        name: 'reviews',
        domains: ['*'],
        routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: ms(0) } }],
      },
    ],
  };
}

export function edsCluster(name: string, extra: ProtoObject = {}): ProtoObject {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { service_name: name },
    connect_timeout: ms(1000),
    ...extra,
  };
}

const str = (v: string): ProtoObject => ({ stringValue: v });

export interface TestEndpoint {
  readonly address: string;
  readonly port: number;
  readonly hbone: string;
  /** Omitted: the endpoint may present any identity of the trust domain. */
  readonly identity?: string;
  readonly workload: string;
}

/** The endpoint `reviews-a` (10.1.0.1:8080) served by a loopback HBONE backend. */
export function reviewsEndpoint(backend: {
  readonly port: number;
  readonly identity: { readonly id: string };
}): TestEndpoint {
  return {
    address: '10.1.0.1',
    port: 8080,
    hbone: `127.0.0.1:${backend.port}`,
    identity: backend.identity.id,
    workload: 'reviews-a;default;reviews;v1;Kubernetes',
  };
}

export function assignment(cluster: string, endpoints: readonly TestEndpoint[]): ProtoObject {
  return {
    cluster_name: cluster,
    endpoints: [
      {
        lb_endpoints: endpoints.map(e => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          metadata: {
            filter_metadata: {
              istio: {
                fields: {
                  workload: str(e.workload),
                  ...(e.identity === undefined ? {} : { identity: str(e.identity) }),
                },
              },
              tunnel: { fields: { address: str(e.hbone) } },
            },
          },
        })),
      },
    ],
  };
}

/** `stats.PluginConfig` in a TypedStruct, as istiod's `istio.stats` filter carries it. */
export function statsFilter(metrics: Record<string, unknown>[]): ProtoObject {
  const value = (v: unknown): ProtoObject => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return {
      structValue: {
        fields: Object.fromEntries(
          Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, value(x)]),
        ),
      },
    };
  };
  return {
    name: 'istio.stats',
    typed_config: any(EnvoyType.typedStruct, {
      type_url: 'type.googleapis.com/stats.PluginConfig',
      value: { fields: { metrics: value(metrics) } },
    }),
  };
}
