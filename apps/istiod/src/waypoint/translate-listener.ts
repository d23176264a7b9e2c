/**
 * The waypoint's Listeners (pure), laid out as upstream's:
 * - `connect_terminate` on the HBONE port (15008): terminates the CONNECT tunnel (HTTP/2,
 *   `upgrade_configs: CONNECT`) and hands the inner stream to `main_internal`;
 * - `main_internal`, an internal listener with one filter chain per Service VIP and port it
 *   serves (`inbound-vip|<port>|<proto>|<host>`, matched on destination IP and port): an HTTP
 *   connection manager with RDS of the same name and the JWT, RBAC, fault and router filters, or a
 *   TCP proxy for TCP ports (to the port's own cluster, or a TCPRoute's weighted clusters).
 */
import { ADS_CONFIG_SOURCE, EnvoyType, typedConfig } from './envoy-protos.ts';
import { CONNECT_TERMINATE, MAIN_INTERNAL } from './names.ts';
import { FAULT_FILTER } from './translate-route.ts';
import { RBAC_FILTER } from './translate-rbac.ts';
import { JWT_FILTER } from './translate-jwt.ts';
import type { CustomFilter } from './translate-ext-authz.ts';
import { tcpProxyConfig, type TcpClusterWeight } from './translate-tcp-route.ts';

export interface FilterChainInput {
  /** `inbound-vip|<port>|<proto>|<host>`: chain, route configuration and default cluster name. */
  readonly name: string;
  readonly vips: readonly string[];
  readonly port: number;
  readonly tcp: boolean;
  /** A TCP chain's TCPRoute clusters (`translate-tcp-route.ts`); absent: the chain's own cluster. */
  readonly tcpClusters?: readonly TcpClusterWeight[];
  /** The `jwt_authn` config from RequestAuthentications (runs before RBAC, as upstream). */
  readonly jwt?: object | undefined;
  /** RBAC configs in order (DENY, ALLOW). */
  readonly rbac: readonly object[];
  /** Whether some route of this chain carries a fault (adds the fault filter). */
  readonly fault: boolean;
  /** EnvoyFilter HTTP_FILTER patches, applied to the finished filter list (`envoy-filter.ts`). */
  readonly patchHttpFilters?: (filters: readonly object[]) => object[];
  /** CUSTOM policies' filters (shadow RBAC + ext_authz), first in the chain (translate-ext-authz.ts). */
  readonly custom?: readonly CustomFilter[];
  /** The HCM's `tracing` (translate-tracing.ts), when a Telemetry turns it on. */
  readonly tracing?: object | undefined;
  /** The HCM's `access_log` and the `istio.stats` filter (translate-telemetry.ts), when configured. */
  readonly accessLog?: readonly object[] | undefined;
  readonly stats?: object | undefined;
  /**
   * `filter_chain_match.application_protocols` (an HTTP chain of a port whose protocol is
   * undeclared: `http_inspector` found HTTP/1.x or h2c); its TCP twin carries none.
   */
  readonly applicationProtocols?: readonly string[];
}

/** Upstream's plaintext HTTP ALPNs, as `http_inspector` reports them (HTTP/1.0, HTTP/1.1, h2c). */
export const PLAINTEXT_HTTP_ALPNS: readonly string[] = ['http/1.0', 'http/1.1', 'h2c'];

/** The listener filter that sniffs an inner stream's protocol for undeclared ports. */
export const HTTP_INSPECTOR = 'envoy.filters.listener.http_inspector';

/** What an HTTP connection manager needs: the waypoint's filter chains and the ingress listeners. */
export interface HcmInput {
  /** The stat prefix and, unless `routeConfigName` is given, the RDS name. */
  readonly name: string;
  readonly routeConfigName?: string;
  readonly jwt?: object | undefined;
  readonly rbac: readonly object[];
  readonly fault: boolean;
  readonly patchHttpFilters?: (filters: readonly object[]) => object[];
  readonly custom?: readonly CustomFilter[];
  /** True at the edge (an ingress gateway): the client address comes from the connection. */
  readonly useRemoteAddress?: boolean;
  readonly tracing?: object | undefined;
  readonly accessLog?: readonly object[] | undefined;
  readonly stats?: object | undefined;
}

export function httpConnectionManager(chain: HcmInput): object {
  const httpFilters: object[] = (chain.custom ?? []).map(f => ({
    name: f.name,
    typedConfig: typedConfig(f.type === 'rbac' ? EnvoyType.rbac : EnvoyType.extAuthz, f.config),
  }));
  if (chain.jwt !== undefined)
    httpFilters.push({ name: JWT_FILTER, typedConfig: typedConfig(EnvoyType.jwtAuthn, chain.jwt) });
  for (const cfg of chain.rbac)
    httpFilters.push({ name: RBAC_FILTER, typedConfig: typedConfig(EnvoyType.rbac, cfg) });
  if (chain.fault) httpFilters.push({ name: FAULT_FILTER, typedConfig: typedConfig(EnvoyType.fault, {}) });
  if (chain.stats !== undefined) httpFilters.push(chain.stats);
  httpFilters.push({ name: 'envoy.filters.http.router', typedConfig: typedConfig(EnvoyType.router, {}) });
  return {
    statPrefix: chain.name,
    codecType: 'AUTO',
    rds: { routeConfigName: chain.routeConfigName ?? chain.name, configSource: ADS_CONFIG_SOURCE },
    httpFilters: chain.patchHttpFilters?.(httpFilters) ?? httpFilters,
    useRemoteAddress: chain.useRemoteAddress ?? false,
    normalizePath: true,
    mergeSlashes: true,
    pathWithEscapedSlashesAction: 'KEEP_UNCHANGED',
    ...(chain.tracing === undefined ? {} : { tracing: chain.tracing }),
    ...(chain.accessLog === undefined ? {} : { accessLog: chain.accessLog }),
  };
}

function filterChain(chain: FilterChainInput): object {
  const filter = chain.tcp
    ? {
        name: 'envoy.filters.network.tcp_proxy',
        typedConfig: typedConfig(EnvoyType.tcpProxy, tcpProxyConfig(chain.name, chain.tcpClusters)),
      }
    : {
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: typedConfig(EnvoyType.httpConnectionManager, httpConnectionManager(chain)),
      };
  return {
    name: chain.name,
    filterChainMatch: {
      destinationPort: chain.port,
      prefixRanges: chain.vips.map(ip => ({ addressPrefix: ip, prefixLen: ip.includes(':') ? 128 : 32 })),
      ...(chain.applicationProtocols === undefined
        ? {}
        : { applicationProtocols: [...chain.applicationProtocols] }),
    },
    // Upstream puts the `istio.stats` network filter before a tcp_proxy (TCP metrics overrides).
    filters: chain.tcp && chain.stats !== undefined ? [chain.stats, filter] : [filter],
  };
}

export function buildMainInternal(chains: readonly FilterChainInput[]): object {
  const sorted = [...chains].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // `http_inspector` only where some chain matches on its result (an undeclared port); Envoy's
  // default listener filter timeout (15 s) applies, and on timeout the connection continues
  // without an application protocol (the TCP chain), so server-first protocols work.
  const sniff = chains.some(c => c.applicationProtocols !== undefined);
  return {
    name: MAIN_INTERNAL,
    internalListener: {},
    useOriginalDst: true,
    filterChains: sorted.map(filterChain),
    listenerFilters: sniff
      ? [{ name: HTTP_INSPECTOR, typedConfig: typedConfig(EnvoyType.httpInspector, {}) }]
      : [],
    ...(sniff ? { continueOnListenerFiltersTimeout: true } : {}),
  };
}

export function buildConnectTerminate(hbonePort: number): object {
  const hcm = {
    statPrefix: CONNECT_TERMINATE,
    codecType: 'HTTP2',
    http2ProtocolOptions: { allowConnect: true },
    upgradeConfigs: [{ upgradeType: 'CONNECT' }],
    routeConfig: {
      name: CONNECT_TERMINATE,
      virtualHosts: [
        {
          name: CONNECT_TERMINATE,
          domains: ['*'],
          routes: [
            {
              name: CONNECT_TERMINATE,
              match: { connectMatcher: {} },
              route: {
                cluster: MAIN_INTERNAL,
                upgradeConfigs: [{ upgradeType: 'CONNECT', connectConfig: {} }],
              },
            },
          ],
        },
      ],
    },
    httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: typedConfig(EnvoyType.router, {}) }],
  };
  return {
    name: CONNECT_TERMINATE,
    address: { socketAddress: { address: '0.0.0.0', portValue: hbonePort } },
    filterChains: [
      {
        name: CONNECT_TERMINATE,
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: typedConfig(EnvoyType.httpConnectionManager, hcm),
          },
        ],
      },
    ],
  };
}

/** The static cluster that carries `connect_terminate`'s inner streams to `main_internal`. */
export function buildMainInternalCluster(): object {
  return {
    name: MAIN_INTERNAL,
    type: 'STATIC',
    loadAssignment: {
      clusterName: MAIN_INTERNAL,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { envoyInternalAddress: { serverListenerName: MAIN_INTERNAL } } } },
          ],
        },
      ],
    },
  };
}
