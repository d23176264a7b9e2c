/**
 * The admin endpoint on localhost:15000 (§6.1): `/config_dump`, `/logging`, `/quitquitquit`.
 */
import type { Config } from './config.ts';
import type { Handler } from './http-server.ts';
import { reply } from './http-server.ts';
import type { CertificateDump } from './identity/cert-manager.ts';
import { isLogLevel } from './logging.ts';
import type { Logs } from './logging.ts';
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

export function adminHandler(sources: AdminSources): Handler {
  return (req, res, url) => {
    switch (url.pathname) {
      case '/':
        reply(res, 200, INDEX);
        return;
      case '/config_dump':
        if (req.method !== 'GET') {
          reply(res, 405, 'method not allowed\n');
          return;
        }
        reply(res, 200, `${JSON.stringify(configDump(sources), null, 2)}\n`, 'application/json');
        return;
      case '/logging': {
        const level = url.searchParams.get('level');
        if (req.method === 'GET' && level === null) {
          reply(res, 200, `current log level is ${sources.logs.level}\n`);
          return;
        }
        if (req.method !== 'POST' && req.method !== 'GET') {
          reply(res, 405, 'method not allowed\n');
          return;
        }
        const wanted = (level ?? '').toLowerCase();
        if (!isLogLevel(wanted)) {
          reply(
            res,
            400,
            `invalid level ${JSON.stringify(level)}; use one of trace, debug, info, warn, error\n`,
          );
          return;
        }
        sources.logs.setLevel(wanted);
        reply(res, 200, `current log level is ${sources.logs.level}\n`);
        return;
      }
      case '/quitquitquit':
        if (req.method !== 'POST') {
          reply(res, 405, 'method not allowed\n');
          return;
        }
        reply(res, 200, 'OK\n');
        sources.quit();
        return;
      default:
        reply(res, 404, 'not found\n');
    }
  };
}
