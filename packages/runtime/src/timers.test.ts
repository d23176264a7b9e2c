import { describe, expect, it } from 'vitest';
import { FakeTimers } from './testing/fake-timers.ts';
import { delay, systemTimers, unrefTimers } from './timers.ts';

describe('FakeTimers', () => {
  it('fires timeouts and intervals only as time is advanced, in order', () => {
    const timers = new FakeTimers(1_000);
    const fired: string[] = [];
    timers.setTimeout(() => fired.push(`b@${timers.now()}`), 20);
    timers.setTimeout(() => fired.push(`a@${timers.now()}`), 10);
    const cancelled = timers.setTimeout(() => fired.push('never'), 15);
    const every = timers.setInterval(() => fired.push(`i@${timers.now()}`), 8);
    timers.clearTimeout(cancelled);
    expect(fired).toEqual([]);
    timers.advance(20);
    expect(fired).toEqual(['i@1008', 'a@1010', 'i@1016', 'b@1020']);
    timers.clearInterval(every);
    expect(timers.pending).toBe(0);
    expect(timers.now()).toBe(1_020);
  });

  it('runs everything left', () => {
    const timers = new FakeTimers();
    let count = 0;
    timers.setTimeout(() => {
      count += 1;
      timers.setTimeout(() => (count += 1), 5);
    }, 5);
    timers.runAll();
    expect(count).toBe(2);
    expect(timers.now()).toBe(10);
  });
});

describe('delay', () => {
  it('resolves after the time passes and rejects when aborted', async () => {
    const timers = new FakeTimers();
    const done = delay(timers, 50);
    timers.advance(50);
    await expect(done).resolves.toBeUndefined();

    const controller = new AbortController();
    const aborted = delay(timers, 50, controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(timers.pending).toBe(0);
    await expect(delay(timers, 1, controller.signal)).rejects.toThrow('stop');
  });

  it('uses the real clock by default', async () => {
    const before = systemTimers.now();
    await delay(systemTimers, 1);
    expect(systemTimers.now()).toBeGreaterThanOrEqual(before);
    systemTimers.clearTimeout(undefined);
    const every = systemTimers.setInterval(() => undefined, 1_000);
    systemTimers.clearInterval(every);
  });

  it('unrefTimers fires like systemTimers but holds no process open', async () => {
    const timeout = unrefTimers.setTimeout(() => undefined, 60_000) as NodeJS.Timeout;
    const interval = unrefTimers.setInterval(() => undefined, 60_000) as NodeJS.Timeout;
    expect(timeout.hasRef()).toBe(false);
    expect(interval.hasRef()).toBe(false);
    unrefTimers.clearTimeout(timeout);
    unrefTimers.clearInterval(interval);
    await delay(unrefTimers, 1);
  });
});
