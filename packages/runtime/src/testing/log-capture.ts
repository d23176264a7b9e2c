/** A JSON `Logs` whose records are kept in memory for assertions. */
import { Logs } from '../logger.ts';
import type { LogLevel } from '../logger.ts';

export function captureLogs(level: LogLevel = 'debug'): { logs: Logs; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logs = new Logs({
    format: 'json',
    level,
    destination: {
      write(line: string) {
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  return { logs, records };
}
