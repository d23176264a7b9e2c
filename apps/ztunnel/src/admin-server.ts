/**
 * The admin routes on localhost:15000 (docs/protocols.md#ztunnel-endpoints): `/config_dump`, `/logging`, `/quitquitquit`.
 * Served by the runtime's ops server; every route is loopback-only.
 */
import { isLogLevel, reply } from '@ambient-mesh/runtime';
import type { LogLevel, Logs, Route } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
import {
  dumpCertificate,
  dumpConfig,
  dumpPolicy,
  dumpService,
  dumpWorkload,
  dumpWorkloadState,
  type DumpConnections,
} from './config-dump.ts';
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
  /** Live connections of a node-local pod (by uid), for `workloadState[uid].connections`. */
  readonly connections?: (uid: string) => DumpConnections | undefined;
  /** Starts a graceful shutdown (`POST /quitquitquit`). */
  readonly quit: () => void;
}

export function configDump(sources: AdminSources): Record<string, unknown> {
  const snapshot = sources.state.snapshot();
  return {
    workloads: snapshot.workloads.map(dumpWorkload),
    services: snapshot.services.map(s => dumpService(s, sources.state)),
    policies: snapshot.policies.map(dumpPolicy),
    stagedServices: {},
    staticConfig: { workloads: [], services: [], policies: [] },
    version: {
      component: 'ztunnel',
      istioVersion: ISTIO_COMPAT_VERSION,
      generation: sources.state.generation,
    },
    config: dumpConfig(sources.config),
    certificates: sources.certificates().map(dumpCertificate),
    workloadState: dumpWorkloadState(sources.workloadState(), sources.connections ?? (() => undefined)),
  };
}

const INDEX = [
  'ztunnel admin',
  '  GET  /config_dump     workloads, services, policies, certificates and workloadState as JSON',
  '  GET  /logging         the current log level',
  '  POST /logging?level=  set the log level (trace, debug, info, warn, error, off, reset)',
  '  POST /quitquitquit    graceful shutdown',
  '',
].join('\n');

/** `current log level is <level>` with upstream's name `off` for the silent level. */
function currentLevel(level: LogLevel): string {
  return `current log level is ${level === 'silent' ? 'off' : level}\n`;
}

/** The level a `?level=` value asks for (`off`, `reset` to the level at start), or undefined. */
export function resolveLevel(text: string, initial: LogLevel): LogLevel | undefined {
  const wanted = text.trim().toLowerCase();
  if (wanted === 'off') return 'silent';
  if (wanted === 'reset') return initial;
  if (!isLogLevel(wanted) || wanted === 'silent' || wanted === 'fatal') return undefined;
  return wanted;
}

export function adminRoutes(sources: AdminSources): Route[] {
  const initialLevel = sources.logs.level;
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
      handler: (_req, res, url) => {
        const level = url.searchParams.get('level');
        if (level === null) {
          reply(res, 200, currentLevel(sources.logs.level));
          return;
        }
        const wanted = resolveLevel(level, initialLevel);
        if (wanted === undefined) {
          reply(
            res,
            400,
            `invalid level ${JSON.stringify(level)}; use one of trace, debug, info, warn, error, off, reset\n`,
          );
          return;
        }
        sources.logs.setLevel(wanted);
        reply(res, 200, currentLevel(sources.logs.level));
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
