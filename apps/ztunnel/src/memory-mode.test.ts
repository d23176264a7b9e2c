import { getHeapStatistics } from 'node:v8';
import { FakeTimers } from '@ambient-mesh/runtime/testing';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MEMORY_MODE_SETTINGS,
  INITIAL_MEMORY_MODE,
  MemoryModeController,
  applyV8MemoryMode,
  eventLoopUtilizationSampler,
  loadSampler,
  nextMemoryMode,
} from './memory-mode.ts';
import type { MemoryMode, MemoryModeSample, MemoryModeState } from './memory-mode.ts';

const settings = {
  busyUtilization: 0.05,
  quietIntervals: 3,
  busyIntervals: 2,
  surgeUtilization: 0.5,
  trafficBytes: 1_000,
  trimEveryIntervals: 4,
};

/** An interval with this utilization, or with this many bytes relayed when given as `{ bytes }`. */
type Interval = number | { readonly u?: number; readonly bytes: number };

function sampleOf(interval: Interval): MemoryModeSample {
  return typeof interval === 'number'
    ? { utilization: interval, relayedBytes: 0 }
    : { utilization: interval.u ?? 0, relayedBytes: interval.bytes };
}

function run(intervals: readonly Interval[]): { state: MemoryModeState; switches: MemoryMode[] } {
  let state = INITIAL_MEMORY_MODE;
  const switches: MemoryMode[] = [];
  for (const interval of intervals) {
    const step = nextMemoryMode(state, sampleOf(interval), settings);
    state = step.state;
    if (step.kind === 'switch') switches.push(step.state.mode);
  }
  return { state, switches };
}

describe('nextMemoryMode', () => {
  it('starts in speed mode and stays there while busy', () => {
    expect(INITIAL_MEMORY_MODE.mode).toBe('speed');
    expect(run([0.5, 0.2, 0.9, 0.06])).toEqual({ state: { mode: 'speed', quiet: 0, busy: 2 }, switches: [] });
  });

  it('switches to memory mode after the configured number of quiet intervals in a row', () => {
    expect(run([0.01, 0.01]).switches).toEqual([]);
    expect(run([0.01, 0.01, 0.01]).switches).toEqual(['memory']);
    // A busy interval in between restarts the count.
    expect(run([0.01, 0.01, 0.5, 0.01, 0.01]).switches).toEqual([]);
  });

  it('does not switch again while the mode already holds', () => {
    expect(run([0, 0, 0, 0, 0, 0, 0]).switches).toEqual(['memory']);
  });

  it('returns to speed mode only after consecutive busy intervals, so one spike (the reducer itself) keeps memory mode', () => {
    expect(run([0, 0, 0, 0.3, 0]).switches).toEqual(['memory']);
    expect(run([0, 0, 0, 0.3, 0.3]).switches).toEqual(['memory', 'speed']);
    expect(run([0, 0, 0, 0.3, 0.3, 0, 0, 0]).switches).toEqual(['memory', 'speed', 'memory']);
  });

  it('returns to speed mode after a single interval of heavy load', () => {
    expect(run([0, 0, 0, 0.6]).switches).toEqual(['memory', 'speed']);
  });

  it('returns to speed mode after a single interval that relayed traffic, however light its CPU', () => {
    expect(run([0, 0, 0, { u: 0.01, bytes: 1_000 }]).switches).toEqual(['memory', 'speed']);
    expect(run([0, 0, 0, { bytes: 5_000_000 }]).state).toEqual({ mode: 'speed', quiet: 0, busy: 1 });
  });

  it('counts a trickle of bytes below the threshold as quiet, in either mode', () => {
    expect(run([{ bytes: 999 }, { bytes: 999 }, { bytes: 999 }]).switches).toEqual(['memory']);
    expect(run([0, 0, 0, { bytes: 999 }, { bytes: 999 }]).state.mode).toBe('memory');
  });

  it('does not go to memory mode while traffic flows, even at a low utilization', () => {
    expect(run([{ bytes: 2_000 }, { bytes: 2_000 }, { bytes: 2_000 }, { bytes: 2_000 }]).switches).toEqual(
      [],
    );
  });

  it('defaults to a 2 % busy threshold and 64 KiB of traffic per interval', () => {
    expect(DEFAULT_MEMORY_MODE_SETTINGS.busyUtilization).toBe(0.02);
    expect(DEFAULT_MEMORY_MODE_SETTINGS.trafficBytes).toBe(64 * 1024);
    const quietAt = (utilization: number, relayedBytes: number): number =>
      nextMemoryMode(INITIAL_MEMORY_MODE, { utilization, relayedBytes }).state.quiet;
    expect(quietAt(0.019, 0)).toBe(1);
    expect(quietAt(0.02, 0)).toBe(0);
    expect(quietAt(0, 64 * 1024 - 1)).toBe(1);
    expect(quietAt(0, 64 * 1024)).toBe(0);
  });
});

describe('MemoryModeController', () => {
  it('samples once per interval, applies each switch once, and returns to speed when stopped', () => {
    const timers = new FakeTimers();
    const samples = [0, 0, 0, 0, 0.4, 0.4, 0.4];
    const applied: MemoryMode[] = [];
    const logged: string[] = [];
    const controller = new MemoryModeController({
      timers,
      sample: () => sampleOf(samples.shift() ?? 0),
      apply: mode => applied.push(mode),
      settings,
      intervalMs: 1_000,
      onSwitch: (mode, sample) => logged.push(`${mode}@${sample.utilization}`),
    });
    controller.start();
    timers.advance(2_999);
    expect(applied).toEqual([]);
    timers.advance(1);
    expect(applied).toEqual(['memory']);
    expect(controller.mode).toBe('memory');
    timers.advance(3_000);
    expect(applied).toEqual(['memory', 'speed']);
    expect(logged).toEqual(['memory@0', 'speed@0.4']);
    timers.advance(10_000);
    expect(applied).toEqual(['memory', 'speed', 'memory']);
    controller.stop();
    expect(applied).toEqual(['memory', 'speed', 'memory', 'speed']);
    expect(timers.pending).toBe(0);
  });

  it('trims the C heap every trimEveryIntervals while in memory mode, never in speed mode', () => {
    const timers = new FakeTimers();
    let load = 0;
    let trims = 0;
    const controller = new MemoryModeController({
      timers,
      sample: () => sampleOf(load),
      apply: () => undefined,
      trim: () => {
        trims++;
      },
      settings,
      intervalMs: 1_000,
    });
    controller.start();
    timers.advance(3_000); // memory mode from the third quiet interval
    expect(trims).toBe(0);
    timers.advance(4_000);
    expect(trims).toBe(1);
    timers.advance(8_000);
    expect(trims).toBe(3);
    load = 1;
    timers.advance(20_000);
    expect(controller.mode).toBe('speed');
    expect(trims).toBe(3);
    controller.stop();
  });

  it('stop() in speed mode applies nothing', () => {
    const timers = new FakeTimers();
    const applied: MemoryMode[] = [];
    const controller = new MemoryModeController({
      timers,
      sample: () => sampleOf(1),
      apply: m => applied.push(m),
    });
    controller.start();
    timers.advance(5_000);
    controller.stop();
    expect(applied).toEqual([]);
  });
});

describe('the V8 side', () => {
  it('eventLoopUtilizationSampler reports a fraction between 0 and 1', () => {
    const sample = eventLoopUtilizationSampler();
    const u = sample();
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThanOrEqual(1);
  });

  it('loadSampler reports the bytes relayed since its previous call', () => {
    let total = 5_000;
    const sample = loadSampler(() => total);
    total += 1_234;
    expect(sample().relayedBytes).toBe(1_234);
    expect(sample().relayedBytes).toBe(0);
    total += 10;
    const next = sample();
    expect(next.relayedBytes).toBe(10);
    expect(next.utilization).toBeGreaterThanOrEqual(0);
    expect(next.utilization).toBeLessThanOrEqual(1);
  });

  it('applyV8MemoryMode is accepted by this V8 at run time in both directions', () => {
    expect(() => {
      applyV8MemoryMode('memory');
      applyV8MemoryMode('speed');
    }).not.toThrow();
    expect(getHeapStatistics().total_heap_size).toBeGreaterThan(0);
  });
});
