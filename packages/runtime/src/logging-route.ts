/**
 * The `/logging` admin route (localhost:15000) shared by ztunnel and the waypoint, as upstream
 * ztunnel and Envoy's admin serve it: `GET` (or `POST` with an empty `?level=`) reads the level,
 * `POST /logging?level=<level>` or `<scope>=<level>` (comma-separated; `:` also separates, as
 * istioctl passes it) sets it, `&reset` first restores every scope to the level at start.
 */
import type { Logs } from './logger.ts';
import type { LogLevel } from './logger.ts';
import { isLogLevel } from './logger.ts';
import { reply } from './ops-server.ts';
import type { Route } from './ops-server.ts';

const levelName = (level: LogLevel): string => (level === 'silent' ? 'off' : level);

/**
 * `current log level is <filter>`, as upstream prints its filter: scopes set apart as
 * `<scope>=<level>`, then the process level, with upstream's name `off` for the silent level.
 */
export function currentLevel(logs: Logs): string {
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

/** The `/logging` route over `logs` (loopback only); levels are resolved against the level at start. */
export function loggingRoute(logs: Logs): Route {
  const initialLevel = logs.level;
  return {
    path: '/logging',
    methods: ['GET', 'POST'],
    loopbackOnly: true,
    // As upstream: `?level=` empty (istioctl's `ztunnel-config log` listing) reads the level,
    // `&reset` first returns every scope to the level at start, then the clauses apply.
    handler: (_req, res, url) => {
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
  };
}
