import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

describe('Backoff', () => {
  it('doubles from 10 ms and caps at 15 s, and restarts after reset', () => {
    const backoff = new Backoff();
    const delays = Array.from({ length: 14 }, () => backoff.nextDelayMs());
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 80]);
    expect(delays.at(-1)).toBe(15_000);
    expect(Math.max(...delays)).toBe(15_000);
    expect(backoff.attempts).toBe(14);
    backoff.reset();
    expect(backoff.nextDelayMs()).toBe(10);
    expect(backoff.attempts).toBe(1);
  });

  it('spreads delays below the exponential curve with injected randomness', () => {
    const draws = [0, 0.5, 0.999];
    const backoff = new Backoff({
      initialMs: 100,
      maxMs: 1_000,
      jitter: 0.5,
      random: () => draws.shift() ?? 0,
    });
    expect([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()]).toEqual([100, 150, 200]);
  });

  it('never exceeds the cap with a custom multiplier', () => {
    const backoff = new Backoff({ initialMs: 300, maxMs: 1_000, multiplier: 3 });
    expect([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()]).toEqual([300, 900, 1_000]);
  });
});
