import { describe, expect, it } from 'vitest';
import {
  isLoopbackAddress,
  parseBool,
  parseDuration,
  parseGoDurationMs,
  parseHttpUrl,
  parseInteger,
  parseIp,
  parseListenAddress,
  parsePort,
  splitList,
} from './parsers.ts';

describe('parseGoDurationMs', () => {
  it('parses Go durations', () => {
    expect(parseGoDurationMs('100ms')).toBe(100);
    expect(parseGoDurationMs('1h30m')).toBe(5_400_000);
    expect(parseGoDurationMs('24h0m0s')).toBe(86_400_000);
    expect(parseGoDurationMs('1.5s')).toBe(1500);
    expect(parseGoDurationMs('500us')).toBe(0.5);
    expect(parseGoDurationMs('0')).toBe(0);
  });

  it('rejects malformed text and, unless allowed, bare numbers', () => {
    expect(parseGoDurationMs('')).toBeUndefined();
    expect(parseGoDurationMs('10')).toBeUndefined();
    expect(parseGoDurationMs('5d')).toBeUndefined();
    expect(parseGoDurationMs('1x')).toBeUndefined();
    expect(parseGoDurationMs('-1s')).toBeUndefined();
    expect(parseGoDurationMs('30', { bareUnit: 's' })).toBe(30_000);
    expect(parseGoDurationMs('30', { bareUnit: 'ms' })).toBe(30);
  });

  it('says what it expected', () => {
    expect(parseDuration('forever')).toEqual({
      ok: false,
      message: '"forever" is not a duration (expected e.g. 100ms, 10s, 1h30m)',
    });
    expect(parseDuration('2s')).toEqual({ ok: true, value: 2000 });
  });
});

describe('scalar parsers', () => {
  it('reads booleans as Go does', () => {
    expect(parseBool('TRUE')).toEqual({ ok: true, value: true });
    expect(parseBool('0')).toEqual({ ok: true, value: false });
    expect(parseBool('maybe').ok).toBe(false);
  });

  it('reads integers within bounds and ports', () => {
    expect(parseInteger('42', { max: 100 })).toEqual({ ok: true, value: 42 });
    expect(parseInteger('101', { max: 100 })).toEqual({ ok: false, message: '101 is outside 0..100' });
    expect(parseInteger('-1').ok).toBe(false);
    expect(parseInteger('-1', { min: -5 })).toEqual({ ok: true, value: -1 });
    expect(parsePort('15000')).toEqual({ ok: true, value: 15000 });
    expect(parsePort('70000').ok).toBe(false);
  });

  it('reads IP addresses of a family', () => {
    expect(parseIp('10.0.0.1', 4)).toEqual({ ok: true, value: '10.0.0.1' });
    expect(parseIp('fd00::1', 4)).toEqual({ ok: false, message: '"fd00::1" is not an IPv4 address' });
    expect(parseIp('x').ok).toBe(false);
  });

  it('reads listen addresses as Go writes them', () => {
    expect(parseListenAddress(':8080')).toEqual({ ok: true, value: { host: '::', port: 8080 } });
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ ok: true, value: { host: '127.0.0.1', port: 0 } });
    expect(parseListenAddress('[::1]:9876')).toEqual({ ok: true, value: { host: '::1', port: 9876 } });
    expect(parseListenAddress(':99999').ok).toBe(false);
    expect(parseListenAddress('example.com:80').ok).toBe(false);
  });

  it('recognises loopback peers, URLs and lists', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('10.0.0.1')).toBe(false);
    expect(isLoopbackAddress(undefined)).toBe(false);
    expect(parseHttpUrl('https://istiod:15012').ok).toBe(true);
    expect(parseHttpUrl('grpc://x').ok).toBe(false);
    expect(parseHttpUrl('not a url').ok).toBe(false);
    expect(splitList(' a, ,b ')).toEqual(['a', 'b']);
  });
});
