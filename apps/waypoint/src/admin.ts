/**
 * The admin port (localhost:15000): `/config_dump` with the active resources (name and version
 * per type; listeners with their filter chains and each chain's routes or TCP clusters), the last
 * NACK per type and the workload certificate in use, `/logging` (read or set the log level, as
 * ztunnel's), and `/quitquitquit`.
 */
import type { AddressInfo } from 'node:net';
import type { ResponseRecord } from '@ambient-mesh/xds';
import type { CertificateDump } from '@ambient-mesh/spiffe-certs';
import { loggingRoute, replyJson, reply } from '@ambient-mesh/runtime';
import type { Logs, Route } from '@ambient-mesh/runtime';
import type { WaypointStateReader } from './state/waypoint-state.ts';

export function configDump(
  state: WaypointStateReader,
  nacks: ReadonlyMap<string, ResponseRecord>,
  certificates: () => readonly CertificateDump[] = () => [],
  listenerAddresses: () => ReadonlyMap<string, AddressInfo> = () => new Map(),
): unknown {
  const config = state.snapshot();
  const list = (m: ReadonlyMap<string, { readonly name: string; readonly version: string }>): unknown[] =>
    [...m.values()].map(v => ({ name: v.name, version: v.version }));
  const bound = listenerAddresses();
  // Listeners show their filter chains; a gateway's (bound) listeners also their address.
  const listeners = [...config.listeners.values()].map(l => {
    const at = bound.get(l.name);
    return {
      name: l.name,
      version: l.version,
      ...(l.address === undefined
        ? {}
        : { address: { host: l.address.host, port: at?.port ?? l.address.port } }),
      filterChains: [...l.chains, ...(l.defaultChain === undefined ? [] : [l.defaultChain])].map(c => ({
        name: c.name,
        serverNames: c.match.serverNames ?? [],
        ...(c.match.applicationProtocols === undefined
          ? {}
          : { applicationProtocols: c.match.applicationProtocols }),
        tls: c.tls !== undefined,
        ...(c.action.kind === 'http'
          ? { routes: 'rds' in c.action.routes ? c.action.routes.rds : c.action.routes.inline.name }
          : {
              cluster: c.action.cluster,
              ...(c.action.weightedClusters === undefined
                ? {}
                : { weightedClusters: c.action.weightedClusters }),
            }),
      })),
    };
  });
  return {
    listeners,
    routes: list(config.routes),
    clusters: list(config.clusters),
    endpoints: list(config.endpoints),
    rejected: [...nacks.values()].map(r => ({ typeUrl: r.typeUrl, nonce: r.nonce, message: r.nack })),
    certificates: certificates(),
  };
}

export function adminRoutes(options: {
  readonly state: WaypointStateReader;
  readonly nacks: ReadonlyMap<string, ResponseRecord>;
  /** The workload certificate in use (none known: an empty list). */
  readonly certificates?: () => readonly CertificateDump[];
  /** Router mode: the bound address of each listener. */
  readonly listenerAddresses?: () => ReadonlyMap<string, AddressInfo>;
  /** The process's logs, for `/logging`. */
  readonly logs: Logs;
  readonly quit: () => void;
}): Route[] {
  return [
    {
      path: '/config_dump',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(
          res,
          200,
          configDump(options.state, options.nacks, options.certificates, options.listenerAddresses),
        );
      },
    },
    loggingRoute(options.logs),
    {
      path: '/quitquitquit',
      methods: ['POST'],
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, 'OK\n');
        options.quit();
      },
    },
  ];
}
