/**
 * The admin routes on localhost:15000 (§6.1): `/config_dump`, `/logging`, `/quitquitquit`.
 * Served by the runtime's ops server; every route is loopback-only.
 */
import { isLogLevel, reply } from '@ambient-mesh/runtime';
import type { Logs, Route } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
import type { CertificateDump } from './identity/cert-manager.ts';
import { ISTIO_COMPAT_VERSION } from './metrics.ts';
import type { ProxyStateReader } from './state/proxy-state.ts';
import type { WorkloadStateEntry } from './zds/state-manager.ts';

export interface AdminSources {
  readonly config: Config;
  readonly state: ProxyStateReader;
  readonly logs: Logs;
  readonly certificates: () => readonly CertificateDump[];
  readonly workloadState: () => Readonly<Record<string, WorkloadStateEntry>>;
  /** Starts a graceful shutdown (`POST /quitquitquit`). */
  readonly quit: () => void;
}

export function configDump(sources: AdminSources): Record<string, unknown> {
  const snapshot = sources.state.snapshot();
  return {
    workloads: snapshot.workloads,
    services: snapshot.services,
    policies: snapshot.policies,
    stagedServices: {},
    staticConfig: { workloads: [], services: [], policies: [] },
    version: {
      component: 'ztunnel',
      istioVersion: ISTIO_COMPAT_VERSION,
      generation: sources.state.generation,
    },
    config: sources.config,
    certificates: sources.certificates(),
    workloadState: sources.workloadState(),
  };
}

const INDEX = [
  'ztunnel admin',
  '  GET  /config_dump     workloads, services, policies, certificates and workloadState as JSON',
  '  GET  /logging         the current log level',
  '  POST /logging?level=  set the log level (trace, debug, info, warn, error)',
  '  POST /quitquitquit    graceful shutdown',
  '',
].join('\n');

export function adminRoutes(sources: AdminSources): Route[] {
  return [
    {
      path: '/',
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, INDEX);
      },
    },
    {
      path: '/config_dump',
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, `${JSON.stringify(configDump(sources), null, 2)}\n`, 'application/json');
      },
    },
    {
      path: '/logging',
      methods: ['GET', 'POST'],
      loopbackOnly: true,
      handler: (req, res, url) => {
        const level = url.searchParams.get('level');
        if (req.method === 'GET' && level === null) {
          reply(res, 200, `current log level is ${sources.logs.level}\n`);
          return;
        }
        const wanted = (level ?? '').toLowerCase();
        if (!isLogLevel(wanted) || wanted === 'silent' || wanted === 'fatal') {
          reply(
            res,
            400,
            `invalid level ${JSON.stringify(level)}; use one of trace, debug, info, warn, error\n`,
          );
          return;
        }
        sources.logs.setLevel(wanted);
        reply(res, 200, `current log level is ${sources.logs.level}\n`);
      },
    },
    {
      path: '/quitquitquit',
      methods: ['POST'],
      loopbackOnly: true,
      handler: (_req, res) => {
        reply(res, 200, 'OK\n');
        sources.quit();
      },
    },
  ];
}
