/**
 * Structured logging with pino. `LOG_FORMAT=json` writes one JSON object per line; the default
 * text format writes `time level scope msg key=value…` lines for humans. Both carry the same fields.
 */
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './config.ts';

export type { Logger };

export interface LoggerOptions {
  readonly format: LogFormat;
  readonly level: string;
  /** Where lines go; stdout by default. Tests pass a collecting stream. */
  readonly destination?: DestinationStream;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? pino.destination({ dest: 1, sync: false });
  const dest = options.format === 'json' ? out : textStream(out);
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: label => ({ level: label }) },
    },
    dest,
  );
}

/** A logger that drops everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

function textStream(out: DestinationStream): DestinationStream {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        out.write(`${formatText(line)}\n`);
      }
      done();
    },
  });
}

/** Renders one pino JSON line as `time level scope msg k=v…`. */
export function formatText(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, scope, msg, ...rest } = rec;
  const lvl = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : String(level);
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  const head = [text(time), lvl, text(scope), text(msg)].filter(s => s !== '').join('\t');
  return fields === '' ? head : `${head}\t${fields}`;
}
