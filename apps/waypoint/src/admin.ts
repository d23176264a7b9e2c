/**
 * The admin port (localhost:15000): `/config_dump` with the active resources (name and version
 * per type) and the last NACK per type, and `/quitquitquit`.
 */
import type { ResponseRecord } from '@ambient-mesh/xds';
import { replyJson, reply } from '@ambient-mesh/runtime';
import type { Route } from '@ambient-mesh/runtime';
import type { WaypointStateReader } from './state/waypoint-state.ts';

export function configDump(state: WaypointStateReader, nacks: ReadonlyMap<string, ResponseRecord>): unknown {
  const config = state.snapshot();
  const list = (m: ReadonlyMap<string, { readonly name: string; readonly version: string }>): unknown[] =>
    [...m.values()].map(v => ({ name: v.name, version: v.version }));
  return {
    listeners: list(config.listeners),
    routes: list(config.routes),
    clusters: list(config.clusters),
    endpoints: list(config.endpoints),
    rejected: [...nacks.values()].map(r => ({ typeUrl: r.typeUrl, nonce: r.nonce, message: r.nack })),
  };
}

export function adminRoutes(options: {
  readonly state: WaypointStateReader;
  readonly nacks: ReadonlyMap<string, ResponseRecord>;
  readonly quit: () => void;
}): Route[] {
  return [
    {
      path: '/config_dump',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(res, 200, configDump(options.state, options.nacks));
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
