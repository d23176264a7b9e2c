/**
 * The admin port (localhost:15000): `/config_dump` with the active resources (name and version
 * per type), the last NACK per type and the workload certificate in use, and `/quitquitquit`.
 */
import type { ResponseRecord } from '@ambient-mesh/xds';
import type { CertificateDump } from '@ambient-mesh/spiffe-certs';
import { replyJson, reply } from '@ambient-mesh/runtime';
import type { Route } from '@ambient-mesh/runtime';
import type { WaypointStateReader } from './state/waypoint-state.ts';

export function configDump(
  state: WaypointStateReader,
  nacks: ReadonlyMap<string, ResponseRecord>,
  certificates: () => readonly CertificateDump[] = () => [],
): unknown {
  const config = state.snapshot();
  const list = (m: ReadonlyMap<string, { readonly name: string; readonly version: string }>): unknown[] =>
    [...m.values()].map(v => ({ name: v.name, version: v.version }));
  return {
    listeners: list(config.listeners),
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
  readonly quit: () => void;
}): Route[] {
  return [
    {
      path: '/config_dump',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(res, 200, configDump(options.state, options.nacks, options.certificates));
      },
    },
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
