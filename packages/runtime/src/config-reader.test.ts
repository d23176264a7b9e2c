import { describe, expect, it } from 'vitest';
import { ConfigReader } from './config-reader.ts';
import { ConfigError } from './errors.ts';
import { parseFlags } from './flags.ts';

const FLAGS = { port: {}, json: { boolean: true }, kubeconfig: {} };

describe('ConfigReader', () => {
  it('reads typed settings with fallbacks and lets a flag win over its variable', () => {
    const r = new ConfigReader({
      env: {
        PORT: '80',
        DEBUG: 'true',
        TTL: '1h',
        LEVEL: 'DEBUG',
        FORMAT: 'plain',
        META_A: '1',
        META_B: '2',
      },
      argv: ['--port=8080', '--json'],
      flags: FLAGS,
    });
    const config = r.finish({
      port: r.port({ flag: 'port', env: 'PORT' }, 1),
      debug: r.bool('DEBUG', false),
      ttlMs: r.durationMs('TTL', 0),
      missing: r.int('MISSING', 7),
      level: r.logLevel('LEVEL'),
      format: r.logFormat('FORMAT'),
      json: r.bool({ flag: 'json' }, false),
      meta: r.prefixed('META_'),
    });
    expect(config).toEqual({
      port: 8080,
      debug: true,
      ttlMs: 3_600_000,
      missing: 7,
      level: 'debug',
      format: 'text',
      json: true,
      meta: [
        ['A', '1'],
        ['B', '2'],
      ],
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('collects every problem, from variables and flags, into one ConfigError', () => {
    const r = new ConfigReader({
      env: { PORT: 'eighty', DEBUG: 'maybe', TTL: 'forever', ADDR: 'x:1', LOG_FORMAT: 'xml' },
      argv: ['--bogus=1', 'stray', '--kubeconfig'],
      flags: FLAGS,
    });
    r.port('PORT', 1);
    r.bool('DEBUG', false);
    r.durationMs('TTL', 0);
    r.listenAddress('ADDR', { host: '::', port: 1 });
    r.logFormat('LOG_FORMAT');
    r.required('NODE_NAME', 'set it from spec.nodeName');
    r.problem('CUSTOM', 'is wrong');
    let caught: unknown;
    try {
      r.finish({});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.code).toBe('RUNTIME_CONFIG_INVALID');
    expect(err.settings).toEqual([
      '--bogus',
      '--kubeconfig',
      'stray',
      'PORT',
      'DEBUG',
      'TTL',
      'ADDR',
      'LOG_FORMAT',
      'NODE_NAME',
      'CUSTOM',
    ]);
    expect(err.setting).toBe('--bogus');
    expect(err.problems).toContain('NODE_NAME: required (set it from spec.nodeName)');
    expect(err.message).toMatch(
      /^invalid configuration \(10 problems\); check these environment variables and flags: /,
    );
  });

  it('keeps an app code and names the app', () => {
    const r = new ConfigReader({ env: {}, argv: ['discovery'], positionals: 'ignore' });
    r.required('POD_NAME', 'metadata.name');
    expect(() => r.finish({}, { component: 'ztunnel', code: 'ZTUNNEL_CONFIG_INVALID' })).toThrow(
      expect.objectContaining({
        code: 'ZTUNNEL_CONFIG_INVALID',
        message: expect.stringMatching(/^invalid ztunnel configuration \(1 problem\)/) as unknown,
      }),
    );
  });
});

describe('parseFlags', () => {
  it('reads Go flag spellings and keeps positionals', () => {
    const parsed = parseFlags(['discovery', '-domain=a', '--port', '1', '--json', '--', '--x'], {
      domain: {},
      port: {},
      json: { boolean: true },
    });
    expect([...parsed.values]).toEqual([
      ['domain', 'a'],
      ['port', '1'],
      ['json', 'true'],
    ]);
    expect(parsed.positionals).toEqual(['discovery', '--x']);
    expect(parsed.problems).toEqual([]);
  });

  it('reports a flag whose value is missing', () => {
    expect(parseFlags(['--port', '--json'], { port: {}, json: { boolean: true } }).problems).toEqual([
      { setting: '--port', message: 'needs a value' },
    ]);
  });
});
