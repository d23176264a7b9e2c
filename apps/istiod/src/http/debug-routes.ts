/**
 * istiod's debug views (`/debug/syncz`, `/debug/wds`), as loopback-only routes of the runtime's
 * ops server: they list every proxy and every workload, so a peer that is not the local host is
 * refused even if the listener is misconfigured (see CVE-2026-31838).
 */
import { reply, replyJson } from '@ambient-mesh/runtime';
import type { Route } from '@ambient-mesh/runtime';
import { renderForDebug } from '../wds/debug-view.ts';
import { TypeUrls, type WdsTypeUrl } from '../wds/wds-index.ts';
import type { ResourceSource } from '../xds/delta-stream.ts';
import type { ConnectionStatus } from '../xds/delta-server.ts';

export interface DebugSources {
  readonly syncz: () => ConnectionStatus[];
  readonly resources: ResourceSource;
}

export function debugRoutes(sources: DebugSources): Route[] {
  return [
    {
      path: '/debug',
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, 'debug views: /debug/syncz, /debug/wds?type=address|authorization[&name=]\n');
      },
    },
    {
      path: '/debug/syncz',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(res, 200, sources.syncz());
      },
    },
    {
      path: '/debug/wds',
      loopbackOnly: true,
      handler: (_req, res, url) => {
        const t = url.searchParams.get('type') ?? 'address';
        const typeUrl: WdsTypeUrl | undefined =
          t === 'address' ? TypeUrls.ADDRESS : t === 'authorization' ? TypeUrls.AUTHORIZATION : undefined;
        if (typeUrl === undefined) {
          reply(res, 400, 'type must be "address" or "authorization"\n');
          return;
        }
        const name = url.searchParams.get('name');
        const all = [...sources.resources.resources(typeUrl).values()];
        const picked = name === null ? all : all.filter(r => r.name === name);
        replyJson(
          res,
          200,
          picked.map(r => ({ name: r.name, version: r.version, value: renderForDebug(r.value) })),
        );
      },
    },
  ];
}
