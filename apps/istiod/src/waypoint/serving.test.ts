import { describe, expect, it } from 'vitest';
import { waypointOfProxy } from './serving.ts';
import { parseDurationMs, regexProblem } from './validate-support.ts';

describe('waypointOfProxy', () => {
  const proxy = (type: string, metadata: Record<string, unknown> = {}) => ({
    type,
    namespace: 'ns1',
    podName: 'my-waypoint-5d9c7b6f4-abcde',
    metadata: metadata as never,
  });

  it('prefers the gateway-name pod label, then WORKLOAD_NAME, then the pod name without its suffixes', () => {
    expect(
      waypointOfProxy(proxy('waypoint', { LABELS: { 'gateway.networking.k8s.io/gateway-name': 'wp' } })),
    ).toBe('ns1/wp');
    expect(waypointOfProxy(proxy('waypoint', { WORKLOAD_NAME: 'from-workload' }))).toBe('ns1/from-workload');
    expect(waypointOfProxy(proxy('router'))).toBe('ns1/my-waypoint');
  });

  it('gives other proxy types no waypoint', () => {
    expect(waypointOfProxy(proxy('ztunnel'))).toBeUndefined();
    expect(waypointOfProxy(proxy('sidecar'))).toBeUndefined();
  });
});

describe('durations and regexes', () => {
  it('parses Gateway API and Istio durations and refuses malformed ones', () => {
    expect(parseDurationMs('10s')).toBe(10_000);
    expect(parseDurationMs('1h2m3s4ms')).toBe(3_723_004);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('10')).toBeUndefined();
    expect(parseDurationMs('soon')).toBeUndefined();
    expect(parseDurationMs('5s junk')).toBeUndefined();
  });

  it('accepts RE2-compatible regexes and explains the others', () => {
    expect(regexProblem('/api/v[0-9]+/.*')).toBeUndefined();
    expect(regexProblem('(a')).toMatch(/invalid regex/);
    expect(regexProblem('(?<=x)y')).toMatch(/RE2/);
    expect(regexProblem('(a)\\1')).toMatch(/RE2/);
  });
});
