/**
 * Structured logs with pino. `LOG_FORMAT=json` writes one JSON object per line; the default
 * `plain` format writes `time LEVEL target message key=value ...` for people.
 *
 * Every component logs through a child made by `Logs.for(target)`. Pino children keep the level
 * they were created with, so `Logs` remembers them and `setLevel` (the admin `/logging` endpoint)
 * updates all at once.
 */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { LOG_LEVELS } from './config.ts';
import type { LogFormat, LogLevel } from './config.ts';

export type { Logger } from 'pino';

export interface LogsOptions {
  readonly format: LogFormat;
  readonly level: LogLevel;
  /** Where lines go; stdout by default. Tests pass a collector. */
  readonly destination?: DestinationStream;
}

const PLAIN_SKIP = new Set(['level', 'time', 'msg', 'target', 'pid', 'hostname']);

function plainValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/** Re-renders pino's JSON lines as `time LEVEL target message k=v` text. */
export function plainDestination(out: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = typeof record.time === 'number' ? new Date(record.time).toISOString() : '';
      const level = typeof record.level === 'string' ? record.level.toUpperCase() : 'INFO';
      const target = typeof record.target === 'string' ? record.target : 'ztunnel';
      const fields = Object.entries(record)
        .filter(([key]) => !PLAIN_SKIP.has(key))
        .map(([key, value]) => `${key}=${plainValue(value)}`);
      const msg = typeof record.msg === 'string' ? record.msg : '';
      out.write(`${time}\t${level.padEnd(5)}\t${target}\t${[msg, ...fields].join(' ')}\n`);
    },
  };
}

export class Logs {
  readonly root: Logger;
  readonly #children: Logger[] = [];

  constructor(options: LogsOptions) {
    const sink = options.destination ?? pino.destination({ fd: 1, sync: false });
    this.root = pino(
      {
        level: options.level,
        base: null,
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.epochTime,
        formatters: { level: label => ({ level: label }) },
      },
      options.format === 'json' ? sink : plainDestination(sink),
    );
  }

  /** A logger for one component (`target` field), e.g. `xds`, `zds`, `access`. */
  for(target: string): Logger {
    const child = this.root.child({ target });
    this.#children.push(child);
    return child;
  }

  get level(): LogLevel {
    const current = LOG_LEVELS.find(level => level === this.root.level);
    return current ?? 'info';
  }

  setLevel(level: LogLevel): void {
    this.root.level = level;
    for (const child of this.#children) child.level = level;
  }
}

/** True when `text` names a supported level. */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}
