import { describe, expect, it } from 'vitest';
import type { FaultConfig, HttpChain, Route } from '../config/types.ts';
import { seeded } from '../testing/harness.ts';
import { NO_FAULT, decideFault, faultFor } from './fault.ts';

const chain = (fault: FaultConfig | undefined): HttpChain => ({
  kind: 'http',
  statPrefix: 's',
  routes: { rds: 'r' },
  jwt: [],
  rbac: [],
  fault,
  pathNormalization: 'BASE',
});
const route = (fault: FaultConfig | undefined): Route => ({ name: 'r', fault }) as unknown as Route;

const ABORT_10: FaultConfig = { delay: undefined, abort: { httpStatus: 503, perMillion: 100_000 } };

describe('the fault filter decision', () => {
  it("takes the route's config, else the filter's, and nothing without the filter in the chain", () => {
    const own: FaultConfig = { delay: { fixedDelayMs: 5, perMillion: 1_000_000 }, abort: undefined };
    expect(faultFor(chain(own), route(ABORT_10))).toBe(ABORT_10);
    expect(faultFor(chain(own), route(undefined))).toBe(own);
    expect(faultFor(chain(own), undefined)).toBe(own);
    expect(faultFor(chain(undefined), route(ABORT_10))).toBeUndefined();
    expect(decideFault(undefined, Math.random)).toBe(NO_FAULT);
  });

  it('aborts about 10 % of 10,000 requests at 10 %, and every one at 100 %', () => {
    const random = seeded(20);
    let aborted = 0;
    for (let i = 0; i < 10_000; i++) if (decideFault(ABORT_10, random).abortStatus === 503) aborted++;
    expect(aborted / 10_000).toBeGreaterThan(0.09);
    expect(aborted / 10_000).toBeLessThan(0.11);
    const all: FaultConfig = { delay: undefined, abort: { httpStatus: 418, perMillion: 1_000_000 } };
    expect(decideFault(all, () => 0.999999)).toEqual({ delayMs: 0, abortStatus: 418 });
    const none: FaultConfig = { delay: undefined, abort: { httpStatus: 503, perMillion: 0 } };
    expect(decideFault(none, () => 0)).toEqual(NO_FAULT);
  });

  it('draws the delay and the abort independently', () => {
    const both: FaultConfig = {
      delay: { fixedDelayMs: 250, perMillion: 500_000 },
      abort: { httpStatus: 503, perMillion: 500_000 },
    };
    const draws = [0.1, 0.9];
    let i = 0;
    expect(decideFault(both, () => draws[i++]!)).toEqual({ delayMs: 250, abortStatus: undefined });
    i = 0;
    draws.reverse();
    expect(decideFault(both, () => draws[i++]!)).toEqual({ delayMs: 0, abortStatus: 503 });
  });
});
