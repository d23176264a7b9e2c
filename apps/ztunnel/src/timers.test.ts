import { describe, expect, it } from 'vitest';
import { Backoff } from './timers.ts';

describe('Backoff', () => {
  it('doubles from 10 ms and caps at 15 s, and restarts after reset', () => {
    const backoff = new Backoff();
    const delays = Array.from({ length: 14 }, () => backoff.nextDelayMs());
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 80]);
    expect(delays.at(-1)).toBe(15_000);
    expect(Math.max(...delays)).toBe(15_000);
    backoff.reset();
    expect(backoff.nextDelayMs()).toBe(10);
  });
});
