/**
 * Structured logs on pino, one field set for every app:
 *
 *   time       ISO-8601 timestamp
 *   level      `trace` | `debug` | `info` | `warn` | `error` | `fatal`
 *   component  the part of the app that logged (`xds`, `zds`, `ca`, ...)
 *   msg        the message; any other key is a structured field
 *
 * `json` writes one object per line; `text` writes upstream ztunnel's layout,
 * `time<TAB>level<TAB>component<TAB>msg<TAB>k=v k=v` (time with microseconds, level in lower
 * case, the tab before the fields only when there are fields), which Kiali's log view parses. `Logs` owns the root logger and every logger derived from it, so `setLevel` (an
 * admin endpoint) changes the level of all of them at once.
 */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/** The field that names the part of an app a line comes from. */
export const COMPONENT_FIELD = 'component';

export const LogFormat = { Text: 'text', Json: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** True when `text` names a supported level. */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export interface LogsOptions {
  readonly format: LogFormat;
  readonly level: LogLevel;
  /** The `component` of the root logger (usually the app name). */
  readonly component?: string;
  /** Where lines go; stdout by default. Tests pass a collector. */
  readonly destination?: DestinationStream;
}

const TEXT_SKIP = new Set(['level', 'time', 'msg', COMPONENT_FIELD, 'pid', 'hostname']);

function textValue(value: unknown): string {
  if (typeof value === 'string') return value === '' || /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/** An ISO time as upstream prints it: six fraction digits (`2024-01-01T00:00:00.123000Z`). */
function microTime(iso: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (m === null) return iso;
  return `${m[1] ?? ''}.${(m[2] ?? '').padEnd(6, '0').slice(0, 6)}Z`;
}

/** Renders one pino JSON record as `time<TAB>level<TAB>component<TAB>msg<TAB>k=v ...`. */
export function formatText(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.replace(/\n$/, '');
  }
  const time =
    typeof record.time === 'number'
      ? new Date(record.time).toISOString()
      : typeof record.time === 'string'
        ? record.time
        : '';
  const level = typeof record.level === 'string' ? record.level.toLowerCase() : 'info';
  const component = typeof record[COMPONENT_FIELD] === 'string' ? record[COMPONENT_FIELD] : '-';
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const fields = Object.entries(record)
    .filter(([key]) => !TEXT_SKIP.has(key))
    .map(([key, value]) => `${key}=${textValue(value)}`);
  const tail = fields.length === 0 ? msg : `${msg}\t${fields.join(' ')}`;
  return `${microTime(time)}\t${level}\t${component}\t${tail}`;
}

/** A destination that re-renders pino's JSON lines as text lines into `out`. */
export function textDestination(out: DestinationStream): DestinationStream {
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) {
        if (line !== '') out.write(`${formatText(line)}\n`);
      }
    },
  };
}

/** The root pino logger with the shared field set, not tracked by a `Logs`. */
export function createLogger(options: LogsOptions): Logger {
  const sink = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: options.component === undefined ? null : { [COMPONENT_FIELD]: options.component },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: label => ({ level: label }) },
    },
    options.format === LogFormat.Json ? sink : textDestination(sink),
  );
}

/** A logger that writes nothing, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** One logging scope: the loggers of one `component`, and the level they follow. */
export interface LogScope {
  readonly name: string;
  readonly level: LogLevel;
}

/**
 * The loggers of one process. `for(component)` hands out a child per part of the app; every
 * logger derived from the root (children of children included) follows `setLevel`. Each
 * `component` is also a scope (as upstream istiod's logging scopes): `setScopeLevel` changes the
 * level of that component's loggers only, including ones made later.
 */
export class Logs {
  readonly root: Logger;
  readonly #derived = new Set<WeakRef<Logger>>();
  /** The level of every scope without one of its own (`setLevel`). */
  #base: LogLevel;
  /** Levels set for single scopes (`setScopeLevel`). */
  readonly #scopeLevels = new Map<string, LogLevel>();
  readonly #scopeNames = new Set<string>();

  constructor(options: LogsOptions | { readonly logger: Logger }) {
    this.root = 'logger' in options ? options.logger : createLogger(options);
    this.#base = isLogLevel(this.root.level) ? this.root.level : 'info';
    const rootScope = scopeOf(this.root);
    if (rootScope !== undefined) this.#scopeNames.add(rootScope);
    this.root.onChild = child => {
      this.#derived.add(new WeakRef(child));
      const scope = scopeOf(child);
      if (scope !== undefined) this.#scopeNames.add(scope);
      // Its scope's level, not the parent's (the parent may be in another scope).
      child.level = (scope === undefined ? undefined : this.#scopeLevels.get(scope)) ?? this.#base;
    };
  }

  /** Adopts an existing pino logger (loggers derived from it from now on follow `setLevel`). */
  static wrap(logger: Logger): Logs {
    return new Logs({ logger });
  }

  /** A `Logs` that writes nothing. */
  static silent(): Logs {
    return new Logs({ logger: silentLogger() });
  }

  /** A logger for one part of the app (`component` field), e.g. `xds`, `zds`, `access`. */
  for(component: string): Logger {
    return this.root.child({ [COMPONENT_FIELD]: component });
  }

  /** The level set for the whole process (scopes may differ, see `scopes`). */
  get level(): LogLevel {
    return this.#base;
  }

  /** Every logger, every scope included, at `level`. */
  setLevel(level: LogLevel): void {
    this.#base = level;
    this.#scopeLevels.clear();
    this.root.level = level;
    for (const logger of this.#live()) logger.level = level;
  }

  /** The scopes (components) logged so far, by name, with their levels. */
  scopes(): LogScope[] {
    return [...this.#scopeNames].sort().map(name => ({ name, level: this.scopeLevel(name) }));
  }

  scopeLevel(name: string): LogLevel {
    return this.#scopeLevels.get(name) ?? this.#base;
  }

  /** Sets the level of one scope's loggers, later ones included; false for an unknown scope. */
  setScopeLevel(name: string, level: LogLevel): boolean {
    if (!this.#scopeNames.has(name)) return false;
    this.#scopeLevels.set(name, level);
    if (scopeOf(this.root) === name) this.root.level = level;
    for (const logger of this.#live()) if (scopeOf(logger) === name) logger.level = level;
    return true;
  }

  *#live(): Generator<Logger> {
    for (const ref of this.#derived) {
      const logger = ref.deref();
      if (logger === undefined) this.#derived.delete(ref);
      else yield logger;
    }
  }
}

/** The `component` a logger writes, if any. */
function scopeOf(logger: Logger): string | undefined {
  const value: unknown = logger.bindings()[COMPONENT_FIELD];
  return typeof value === 'string' ? value : undefined;
}
