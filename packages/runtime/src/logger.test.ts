import { describe, expect, it } from 'vitest';
import { Logs, createLogger, formatText, isLogLevel } from './logger.ts';
import type { LogFormat } from './logger.ts';

function collect(format: LogFormat, component?: string): { logs: Logs; lines: string[] } {
  const lines: string[] = [];
  const logs = new Logs({
    format,
    level: 'info',
    ...(component !== undefined ? { component } : {}),
    destination: { write: (line: string) => lines.push(line) },
  });
  return { logs, lines };
}

describe('Logs', () => {
  it('writes one JSON object per line with the shared field set', () => {
    const { logs, lines } = collect('json');
    logs.for('xds').info({ typeUrl: 'x' }, 'hello');
    const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(record).toMatchObject({ level: 'info', component: 'xds', typeUrl: 'x', msg: 'hello' });
    expect(record.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Object.keys(record).sort()).toEqual(['component', 'level', 'msg', 'time', 'typeUrl']);
  });

  it("renders text lines in upstream ztunnel's layout: time, level, component, message, fields", () => {
    const { logs, lines } = collect('text');
    logs.for('zds').warn({ uid: 'a b', n: 2 }, 'nack');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\twarn\tzds\tnack\tuid="a b" n=2\n$/);
    logs.for('app').info('up');
    expect(lines[1]).toMatch(/^\S+\tinfo\tapp\tup\n$/);
    // Kiali splits on tabs: time, level, target, message, fields.
    expect(lines[0]?.trimEnd().split('\t')).toHaveLength(5);
  });

  it('names the root component on lines of the root logger', () => {
    const { logs, lines } = collect('json', 'istiod');
    logs.root.info('up');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ component: 'istiod', msg: 'up' });
  });

  it('changes the level of every derived logger, grandchildren included', () => {
    const { logs, lines } = collect('json');
    const child = logs.for('proxy');
    const grandchild = child.child({ pod: 'p' });
    child.debug('hidden');
    grandchild.debug('hidden too');
    logs.setLevel('debug');
    child.debug('shown');
    grandchild.debug('shown too');
    expect(logs.level).toBe('debug');
    expect(lines.map(l => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown', 'shown too']);
  });

  it('sets one scope (component) apart, its later loggers included, until setLevel resets all', () => {
    const { logs, lines } = collect('json', 'istiod');
    const xds = logs.for('xds');
    const ca = logs.for('ca');
    expect(logs.scopes()).toEqual([
      { name: 'ca', level: 'info' },
      { name: 'istiod', level: 'info' },
      { name: 'xds', level: 'info' },
    ]);
    expect(logs.setScopeLevel('xds', 'debug')).toBe(true);
    expect(logs.setScopeLevel('nope', 'debug')).toBe(false);
    xds.debug('xds shown');
    xds.child({ conn: 1 }).debug('xds child shown');
    logs.for('xds').debug('later xds shown');
    ca.debug('ca hidden');
    logs.root.debug('root hidden');
    expect(logs.scopeLevel('xds')).toBe('debug');
    expect(logs.level).toBe('info');
    // The root's own scope: the root and its scope's loggers, not the others.
    logs.setScopeLevel('istiod', 'error');
    logs.root.info('root hidden');
    logs.for('mesh').info('mesh shown');
    expect(logs.scopes().find(s => s.name === 'istiod')?.level).toBe('error');
    logs.setLevel('warn');
    xds.info('xds hidden again');
    expect(logs.scopes().every(s => s.level === 'warn')).toBe(true);
    expect(lines.map(l => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'xds shown',
      'xds child shown',
      'later xds shown',
      'mesh shown',
    ]);
  });

  it('adopts an existing logger', () => {
    const lines: string[] = [];
    const logger = createLogger({
      format: 'json',
      level: 'warn',
      destination: { write: l => lines.push(l) },
    });
    const logs = Logs.wrap(logger);
    const child = logs.for('ca');
    child.info('hidden');
    logs.setLevel('info');
    child.info('shown');
    expect(lines).toHaveLength(1);
    expect(Logs.silent().level).toBe('silent');
  });
});

describe('formatText', () => {
  it('passes non-JSON through and quotes empty values', () => {
    expect(formatText('not json\n')).toBe('not json');
    expect(formatText('{"time":0,"level":"error","msg":"m","k":""}')).toBe(
      '1970-01-01T00:00:00.000000Z\terror\t-\tm\tk=""',
    );
  });

  it('knows the level names', () => {
    expect(isLogLevel('debug')).toBe(true);
    expect(isLogLevel('loud')).toBe(false);
  });
});
