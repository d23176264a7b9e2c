/**
 * istiod's debug views and `/version`, as routes of the runtime's ops server. The `/debug/*` views
 * keep upstream istiod's paths and JSON shapes (`syncz`, `registryz`, `configz`) plus our `wds`;
 * they are loopback-only: they list every proxy and every workload, so a peer that is not the
 * local host is refused even if the listener is misconfigured (see CVE-2026-31838). Port-forwarded
 * requests (istioctl, Kiali) arrive on loopback. `/version` is upstream's plain-text build string.
 */
import { reply, replyJson } from '@ambient-mesh/runtime';
import type { Route } from '@ambient-mesh/runtime';
import { versionString } from '../build-info.ts';
import type { KubeObject, Service } from '../kube/objects.ts';
import { renderForDebug } from '../wds/debug-view.ts';
import { TypeUrls, type WdsTypeUrl } from '../wds/wds-index.ts';
import type { ResourceSource } from '../xds/delta-server.ts';
import type { ConnectionStatus } from '../xds/delta-server.ts';
import { renderConfig, renderRegistryService, type RegistryContext } from './registry-view.ts';
import { renderSyncz } from './syncz-view.ts';

export interface DebugSources {
  readonly syncz: () => ConnectionStatus[];
  readonly resources: ResourceSource;
  /** Services for `registryz`; default none. */
  readonly services?: () => readonly Service[];
  /** Istio config objects for `configz`; default none. */
  readonly configs?: () => readonly KubeObject[];
  /** The active MeshConfig for `/debug/mesh`; default none. */
  readonly meshConfig?: () => unknown;
  readonly registry?: RegistryContext;
}

const DEBUG_VIEWS: readonly (readonly [string, string])[] = [
  ['/debug/syncz', 'Synchronization status of all proxies connected to this istiod'],
  ['/debug/registryz', 'Debug support for registry'],
  ['/debug/configz', 'Debug support for config'],
  ['/debug/mesh', 'Active mesh config'],
  ['/debug/wds', 'Workload API resources: ?type=address|authorization[&name=]'],
  ['/debug/list', 'List all supported debug commands in json'],
];

/** `/version`: upstream's `BuildInfo.String()` (istioctl's `version` reads it). */
export function versionRoute(): Route {
  return {
    path: '/version',
    handler: (_req, res) => {
      reply(res, 200, versionString());
    },
  };
}

export function debugRoutes(sources: DebugSources): Route[] {
  const registry = sources.registry ?? { clusterId: 'Kubernetes', domainSuffix: 'cluster.local' };
  return [
    {
      path: '/debug',
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, `debug views:\n${DEBUG_VIEWS.map(([p, h]) => `${p}: ${h}\n`).join('')}`);
      },
    },
    {
      path: '/debug/list',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(
          res,
          200,
          DEBUG_VIEWS.map(([p]) => p),
        );
      },
    },
    {
      path: '/debug/syncz',
      loopbackOnly: true,
      handler: (_req, res, url) => {
        replyJson(res, 200, renderSyncz(sources.syncz(), url.searchParams.get('namespace') ?? undefined));
      },
    },
    {
      path: '/debug/registryz',
      loopbackOnly: true,
      handler: (_req, res) => {
        const services = sources.services?.() ?? [];
        replyJson(
          res,
          200,
          services.map(s => renderRegistryService(s, registry)),
        );
      },
    },
    {
      path: '/debug/configz',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(res, 200, (sources.configs?.() ?? []).map(renderConfig));
      },
    },
    {
      path: '/debug/mesh',
      loopbackOnly: true,
      handler: (_req, res) => {
        replyJson(res, 200, sources.meshConfig?.() ?? {});
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
