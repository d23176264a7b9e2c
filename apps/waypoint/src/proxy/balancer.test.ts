import { describe, expect, it } from 'vitest';
import type { ClusterConfig, Endpoint, OutlierDetection } from '../config/types.ts';
import { DEFAULT_CIRCUIT_BREAKERS } from '../config/types.ts';
import { ClusterBalancer, countResult, endpointKey, mayEject } from './balancer.ts';

const endpoint = (n: number): Endpoint => ({
  address: `10.1.0.${n}`,
  port: 8080,
  hboneAddress: `10.1.0.${n}`,
  hbonePort: 15008,
  weight: 1,
  healthy: true,
  identity: undefined,
  workload: undefined,
});

const OD: OutlierDetection = {
  consecutive5xx: 3,
  consecutiveGatewayFailure: 0,
  intervalMs: 1_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 50,
};

const cluster = (od: OutlierDetection | undefined = OD): ClusterConfig => ({
  name: 'c',
  version: '1',
  edsName: 'c',
  lbPolicy: 'round-robin',
  connectTimeoutMs: 1000,
  circuitBreakers: DEFAULT_CIRCUIT_BREAKERS,
  outlierDetection: od,
  serviceHost: undefined,
  staticEndpoints: undefined,
  discovery: { kind: 'eds' },
  upstreamProtocol: 'http1',
});

const fail = { kind: 'response', status: 500 } as const;
const ok = { kind: 'response', status: 200 } as const;

/** Picks `n` times at `now` and returns the picked endpoints' last address byte. */
function picks(b: ClusterBalancer, eps: readonly Endpoint[], n: number, now: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const e = b.pick(cluster(), eps, { hash: undefined, exclude: new Set(), random: () => 0, now });
    out.push(Number(e?.address.split('.')[3]));
  }
  return out;
}

describe('outlier detection (consecutive errors)', () => {
  it('counts consecutive 5xx and gateway errors, local failures as both, a success resets', () => {
    const od = { ...OD, consecutiveGatewayFailure: 2 };
    expect(countResult({ consecutive5xx: 2, consecutiveGateway: 0 }, fail, od)).toEqual({
      consecutive5xx: 3,
      consecutiveGateway: 0,
      eject: true,
    });
    expect(countResult({ consecutive5xx: 0, consecutiveGateway: 1 }, { kind: 'local-failure' }, od)).toEqual({
      consecutive5xx: 1,
      consecutiveGateway: 2,
      eject: true,
    });
    expect(countResult({ consecutive5xx: 2, consecutiveGateway: 1 }, ok, od)).toEqual({
      consecutive5xx: 0,
      consecutiveGateway: 0,
      eject: false,
    });
    // 404 is no server error.
    expect(
      countResult({ consecutive5xx: 2, consecutiveGateway: 0 }, { kind: 'response', status: 404 }, od).eject,
    ).toBe(false);
  });

  it("allows an ejection only while the ejected share is below the maximum (Envoy's check)", () => {
    expect(mayEject(0, 3, 50)).toBe(true);
    expect(mayEject(1, 3, 50)).toBe(true);
    expect(mayEject(2, 3, 50)).toBe(false);
    expect(mayEject(1, 3, 30)).toBe(false);
    expect(mayEject(0, 3, 0)).toBe(false);
  });

  it('ejects a host after 3 consecutive 5xx and leaves it out of the picks until the ejection time passes', () => {
    const b = new ClusterBalancer('c');
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const bad = eps[2]!;
    expect(b.record(bad, fail, OD, eps, 0)).toBe(false);
    expect(b.record(bad, fail, OD, eps, 10)).toBe(false);
    expect(b.record(bad, fail, OD, eps, 20)).toBe(true);
    expect(b.isEjected(bad, 21)).toBe(true);
    expect(b.ejections).toEqual({ enforced: 1, overflow: 0 });
    expect(new Set(picks(b, eps, 10, 1_000))).toEqual(new Set([1, 2]));
    // Back after the base ejection time; the second ejection lasts twice as long.
    expect(b.isEjected(bad, 30_020)).toBe(false);
    expect(picks(b, eps, 3, 30_020)).toContain(3);
    for (const t of [30_100, 30_200, 30_300]) b.record(bad, fail, OD, eps, t);
    expect(b.isEjected(bad, 30_300 + 59_999)).toBe(true);
    expect(b.isEjected(bad, 30_300 + 60_000)).toBe(false);
  });

  it('does not count results that arrive while the host is ejected', () => {
    const b = new ClusterBalancer('c');
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    for (const t of [0, 1, 2]) b.record(eps[0]!, fail, OD, eps, t);
    for (const t of [3, 4, 5, 6]) expect(b.record(eps[0]!, fail, OD, eps, t)).toBe(false);
    expect(b.ejections.enforced).toBe(1);
  });

  it('stops at the maximum ejection percentage', () => {
    const b = new ClusterBalancer('c');
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const od = { ...OD, maxEjectionPercent: 30 };
    for (const t of [0, 1, 2]) b.record(eps[1]!, fail, od, eps, t);
    for (const t of [3, 4, 5]) b.record(eps[2]!, fail, od, eps, t);
    expect(b.isEjected(eps[1]!, 10)).toBe(true);
    expect(b.isEjected(eps[2]!, 10)).toBe(false);
    expect(b.ejections).toEqual({ enforced: 1, overflow: 1 });
  });

  it('uses every host again when all are ejected (panic), and does nothing without outlier detection', () => {
    const b = new ClusterBalancer('c');
    const eps = [endpoint(1)];
    const od = { ...OD, maxEjectionPercent: 100 };
    for (const t of [0, 1, 2]) b.record(eps[0]!, fail, od, eps, t);
    expect(b.isEjected(eps[0]!, 3)).toBe(true);
    expect(picks(b, eps, 2, 3)).toEqual([1, 1]);
    const plain = new ClusterBalancer('p');
    for (let t = 0; t < 10; t++) expect(plain.record(eps[0]!, fail, undefined, eps, t)).toBe(false);
    expect(plain.isEjected(eps[0]!, 10)).toBe(false);
    expect(endpointKey(eps[0]!)).toBe('10.1.0.1:8080');
  });
});
