import { describe, expect, it } from 'vitest';
import { Logs } from './logging.ts';

function collect(format: 'json' | 'plain'): { logs: Logs; lines: string[] } {
  const lines: string[] = [];
  const logs = new Logs({
    format,
    level: 'info',
    destination: { write: (line: string) => lines.push(line) },
  });
  return { logs, lines };
}

describe('Logs', () => {
  it('writes one JSON object per line with level names and the target', () => {
    const { logs, lines } = collect('json');
    logs.for('xds').info({ typeUrl: 'x' }, 'hello');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'info',
      target: 'xds',
      typeUrl: 'x',
      msg: 'hello',
    });
  });

  it('renders plain text lines for people', () => {
    const { logs, lines } = collect('plain');
    logs.for('zds').warn({ uid: 'a b' }, 'nack');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT.*\tWARN \tzds\tnack uid="a b"\n$/);
  });

  it('changes the level of every component logger at once', () => {
    const { logs, lines } = collect('json');
    const child = logs.for('proxy');
    child.debug('hidden');
    logs.setLevel('debug');
    child.debug('shown');
    expect(logs.level).toBe('debug');
    expect(lines.map(l => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown']);
  });
});
