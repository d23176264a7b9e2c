/**
 * The admin routes on localhost:15000 (docs/protocols.md#ztunnel-endpoints): `/config_dump`, `/logging`, `/quitquitquit`.
 * Served by the runtime's ops server; every route is loopback-only.
 */
import { loggingRoute, reply } from '@ambient-mesh/runtime';
import type { Logs, Route } from '@ambient-mesh/runtime';
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
  '  POST /logging?level=  set the log level (trace, debug, info, warn, error, off, reset), or <scope>=<level>; &reset first restores the level at start',
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
    loggingRoute(sources.logs),
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
