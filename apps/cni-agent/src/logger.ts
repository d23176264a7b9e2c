/**
 * Structured logs with pino. `LOG_FORMAT=json` (or `--log_as_json`) writes one JSON object per
 * line; the text format writes `time<TAB>level<TAB>msg<TAB>key=value ...` for people reading a
 * terminal. Both carry the same fields.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { LogFormat } from './config.ts';

export type { Logger };

export interface LoggerOptions {
  readonly format: LogFormat;
  readonly level: string;
  /** Where lines go; stdout by default. Tests pass a collecting stream. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { component: 'cni-agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: label => ({ level: label }) },
    },
    options.format === 'json' ? out : humanReadable(out),
  );
}

/** A logger that writes nothing (tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

function humanReadable(out: DestinationStream): DestinationStream {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') out.write(`${textLine(line)}\n`);
      }
      done();
    },
  });
}

/** One pino JSON record as a text line. */
export function textLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, component: _component, ...fields } = record;
  const rest = Object.entries(fields).map(
    ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  const text = typeof msg === 'string' ? msg : JSON.stringify(msg ?? '');
  return [String(time), String(level), text, ...rest].join('\t');
}
