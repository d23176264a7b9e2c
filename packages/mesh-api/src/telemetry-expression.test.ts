import { describe, expect, it } from 'vitest';
import {
  evaluateTelemetryCondition,
  evaluateTelemetryValue,
  parseTelemetryCondition,
  parseTelemetryValue,
} from './telemetry-expression.ts';
import type { AttributeLookup } from './telemetry-expression.ts';

const attrs: AttributeLookup = (name, key) => {
  if (name === 'response.code') return 503;
  if (name === 'request.method') return 'POST';
  if (name === 'request.headers') return key === 'x-user' ? 'alice' : undefined;
  return undefined;
};

describe('telemetry expressions', () => {
  it('parses and evaluates literals and attributes', () => {
    const v = (text: string) => {
      const p = parseTelemetryValue(text);
      if (!p.ok) throw new Error(p.error);
      return evaluateTelemetryValue(p.value, attrs);
    };
    expect(v("'fixed'")).toBe('fixed');
    expect(v('"fixed"')).toBe('fixed');
    expect(v("request.headers['X-User']")).toBe('alice');
    expect(v('request.method')).toBe('POST');
    expect(v('response.code')).toBe(503);
    expect(v("request.headers['missing']")).toBeUndefined();
  });

  it('evaluates comparisons joined with && and ||', () => {
    const c = (text: string) => {
      const p = parseTelemetryCondition(text);
      if (!p.ok) throw new Error(p.error);
      return evaluateTelemetryCondition(p.value, attrs);
    };
    expect(c('response.code >= 400')).toBe(true);
    expect(c('response.code < 400')).toBe(false);
    expect(c("response.code >= 500 && request.method == 'GET'")).toBe(false);
    expect(c("response.code == 200 || request.headers['x-user'] == 'alice'")).toBe(true);
    expect(c("request.headers['x-user'] != 'bob'")).toBe(true);
    expect(c('true')).toBe(true);
  });

  it('says what is not supported', () => {
    const bad = parseTelemetryValue('request.size + 1');
    expect(bad.ok).toBe(false);
    expect(bad.ok ? '' : bad.error).toContain('is not supported');
    expect(parseTelemetryCondition("has(request.headers['x'])").ok).toBe(false);
    expect(parseTelemetryCondition('response.code').ok).toBe(false);
    expect(parseTelemetryCondition('upstream.port == 1').ok).toBe(false);
  });
});
