import { Logs } from '../logging.ts';

/** A JSON `Logs` whose records are kept in memory for assertions. */
export function captureLogs(): { logs: Logs; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logs = new Logs({
    format: 'json',
    level: 'debug',
    destination: {
      write(line: string) {
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  return { logs, records };
}
