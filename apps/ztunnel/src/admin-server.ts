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
  '  POST /logging?level=  set the log level (trace, debug, info, warn, error, off, reset), or <scope>=<level>; &reset first restores the level at start',
  '  POST /quitquitquit    graceful shutdown',
  '',
].join('\n');

const levelName = (level: LogLevel): string => (level === 'silent' ? 'off' : level);

/**
 * `current log level is <filter>`, as upstream prints its filter: scopes set apart as
 * `<scope>=<level>`, then the process level, with upstream's name `off` for the silent level.
 */
function currentLevel(logs: Logs): string {
  const apart = logs
    .scopes()
    .filter(s => s.level !== logs.level)
    .map(s => `${s.name}=${levelName(s.level)}`);
  return `current log level is ${[...apart, levelName(logs.level)].join(',')}\n`;
}

/** The level a `?level=` value asks for (`off`, `reset` to the level at start), or undefined. */
export function resolveLevel(text: string, initial: LogLevel): LogLevel | undefined {
  const wanted = text.trim().toLowerCase();
  if (wanted === 'off') return 'silent';
  if (wanted === 'reset') return initial;
  if (!isLogLevel(wanted) || wanted === 'silent' || wanted === 'fatal') return undefined;
  return wanted;
}

/** A parsed `?level=`: upstream's comma-separated clauses, `<level>` or `<scope>=<level>` (or `:`). */
export interface LevelRequest {
  readonly level?: LogLevel;
  readonly scopes: readonly (readonly [string, LogLevel])[];
}

export function parseLevelRequest(
  text: string,
  initial: LogLevel,
  knownScopes: readonly string[],
): { ok: true; value: LevelRequest } | { ok: false; error: string } {
  let level: LogLevel | undefined;
  const scopes: [string, LogLevel][] = [];
  for (const clause of text.split(',')) {
    // Upstream takes `<scope>=<level>`; istioctl's `--level <scope>:<level>` is passed through as
    // written, so `:` is taken too.
    const eq = clause.search(/[=:]/);
    const scope = eq === -1 ? undefined : clause.slice(0, eq).trim();
    const wanted = resolveLevel(eq === -1 ? clause : clause.slice(eq + 1), initial);
    if (wanted === undefined)
      return {
        ok: false,
        error: `invalid level ${JSON.stringify(clause)}; use <level> or <scope>=<level>, levels trace, debug, info, warn, error, off, reset`,
      };
    if (scope === undefined) level = wanted;
    else if (!knownScopes.includes(scope))
      return {
        ok: false,
        error: `unknown scope ${JSON.stringify(scope)}; scopes: ${knownScopes.join(', ')}`,
      };
    else scopes.push([scope, wanted]);
  }
  return { ok: true, value: { ...(level === undefined ? {} : { level }), scopes } };
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
      // As upstream: `?level=` empty (istioctl's `ztunnel-config log` listing) reads the level,
      // `&reset` first returns every scope to the level at start, then the clauses apply.
      handler: (_req, res, url) => {
        const logs = sources.logs;
        const text = url.searchParams.get('level') ?? '';
        const reset = url.searchParams.has('reset');
        if (text === '' && !reset) {
          reply(res, 200, currentLevel(logs));
          return;
        }
        const parsed: ReturnType<typeof parseLevelRequest> =
          text === ''
            ? { ok: true, value: { scopes: [] } }
            : parseLevelRequest(
                text,
                initialLevel,
                logs.scopes().map(s => s.name),
              );
        if (!parsed.ok) {
          reply(res, 400, `${parsed.error}\n`);
          return;
        }
        if (reset) logs.setLevel(initialLevel);
        if (parsed.value.level !== undefined) logs.setLevel(parsed.value.level);
        for (const [scope, level] of parsed.value.scopes) logs.setScopeLevel(scope, level);
        reply(res, 200, currentLevel(logs));
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
