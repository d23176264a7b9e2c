/**
 * V8's memory mode, following ztunnel's load (docs/performance.md, issue 27, third pass).
 *
 * V8's memory reducer gives a grown heap back to the operating system once the mutator goes from
 * a high to a low allocation rate, but it judges that rate from samples taken at garbage
 * collections: a process that goes quiet after a burst (connections closed, nothing allocating)
 * takes no further samples, the reducer keeps reading "high allocation" and the pages stay
 * resident indefinitely. Browsers solve this by telling V8 a tab went to the background, after
 * which the reducer optimizes for memory. Node exposes no such call; the same switch is V8's
 * `--optimize-for-size`, which is read at run time. So ztunnel runs in `speed` mode while it
 * is busy and in `memory` mode after a few quiet intervals (event-loop utilization below a
 * threshold and next to no bytes relayed); V8's reducer then collects and returns the pages on its
 * own schedule. Traffic (bytes relayed) ends `memory` mode within one interval, and the reducer's
 * own collections, which relay nothing, never do. Nothing here forces a collection. What the
 * collected connections freed in the C heap (glibc keeps it) is given back by a periodic trim
 * while in `memory` mode.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { relayedBytes } from '@ambient-mesh/hbone';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';

export type MemoryMode = 'speed' | 'memory';

export interface MemoryModeSettings {
  /** Event-loop utilization (0–1) at or above which an interval counts as busy. */
  readonly busyUtilization: number;
  /** Consecutive quiet intervals before switching to `memory`. */
  readonly quietIntervals: number;
  /**
   * Consecutive busy intervals before switching back to `speed`: more than one, so that the
   * reducer's own collection (tens of milliseconds on the main thread) does not end `memory` mode.
   */
  readonly busyIntervals: number;
  /** Utilization that switches back to `speed` after a single interval (work, not a collection). */
  readonly surgeUtilization: number;
  /**
   * Bytes relayed in one interval that make it busy and switch back to `speed` at once: traffic,
   * which a collection never is. Below it (a health check, a trickle) the process stays quiet.
   */
  readonly trafficBytes: number;
  /** While in `memory` mode, the C heap is trimmed every this many intervals. */
  readonly trimEveryIntervals: number;
}

export const DEFAULT_MEMORY_MODE_SETTINGS: MemoryModeSettings = {
  busyUtilization: 0.02,
  // 10 s: a lull between bursts of requests is not a quiet process, and the first requests after
  // a switch run in the memory-saving mode; the memory still comes back well within a minute.
  quietIntervals: 20,
  busyIntervals: 2,
  surgeUtilization: 0.3,
  trafficBytes: 64 * 1024,
  trimEveryIntervals: 4,
};

/** One interval's load. */
export interface MemoryModeSample {
  /** Event-loop utilization (0–1) over the interval. */
  readonly utilization: number;
  /** Payload bytes relayed over the interval, both directions of every connection. */
  readonly relayedBytes: number;
}

/** How often the load is sampled: quiet for 10 s means `memory` mode. */
export const MEMORY_MODE_INTERVAL_MS = 500;

export interface MemoryModeState {
  readonly mode: MemoryMode;
  /** Consecutive quiet intervals seen so far. */
  readonly quiet: number;
  /** Consecutive busy intervals seen so far. */
  readonly busy: number;
}

export const INITIAL_MEMORY_MODE: MemoryModeState = { mode: 'speed', quiet: 0, busy: 0 };

export type MemoryModeStep =
  | { readonly kind: 'stay'; readonly state: MemoryModeState }
  | { readonly kind: 'switch'; readonly state: MemoryModeState };

/**
 * The next state after one interval: `memory` after `quietIntervals` quiet intervals in a row,
 * `speed` again after `busyIntervals` busy ones in a row, or at once on a surge of work or on
 * traffic.
 */
export function nextMemoryMode(
  state: MemoryModeState,
  sample: MemoryModeSample,
  settings: MemoryModeSettings = DEFAULT_MEMORY_MODE_SETTINGS,
): MemoryModeStep {
  const traffic = sample.relayedBytes >= settings.trafficBytes;
  if (traffic || sample.utilization >= settings.busyUtilization) {
    const busy = Math.min(state.busy + 1, settings.busyIntervals);
    if (
      state.mode === 'memory' &&
      (traffic || busy >= settings.busyIntervals || sample.utilization >= settings.surgeUtilization)
    ) {
      return { kind: 'switch', state: { mode: 'speed', quiet: 0, busy } };
    }
    return { kind: 'stay', state: { mode: state.mode, quiet: 0, busy } };
  }
  const quiet = Math.min(state.quiet + 1, settings.quietIntervals);
  if (state.mode === 'speed' && quiet >= settings.quietIntervals) {
    return { kind: 'switch', state: { mode: 'memory', quiet, busy: 0 } };
  }
  return { kind: 'stay', state: { mode: state.mode, quiet, busy: 0 } };
}

/** Applies a mode to this process's V8. */
export function applyV8MemoryMode(mode: MemoryMode): void {
  setFlagsFromString(mode === 'memory' ? '--optimize-for-size' : '--no-optimize-for-size');
}

/** The event loop's utilization since the previous call (Node's `eventLoopUtilization`). */
export function eventLoopUtilizationSampler(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

/**
 * The load since the previous call: event-loop utilization, and the bytes `relayed()` counted
 * (default: every relay of `@ambient-mesh/hbone` in this process).
 */
export function loadSampler(relayed: () => number = relayedBytes): () => MemoryModeSample {
  const utilization = eventLoopUtilizationSampler();
  let lastRelayed = relayed();
  return () => {
    const total = relayed();
    const sample = { utilization: utilization(), relayedBytes: total - lastRelayed };
    lastRelayed = total;
    return sample;
  };
}

export interface MemoryModeControllerOptions {
  readonly timers: Timers;
  readonly sample?: () => MemoryModeSample;
  readonly apply?: (mode: MemoryMode) => void;
  /**
   * Returns the C heap's free pages to the kernel; called every `trimEveryIntervals` in `memory`
   * mode, since V8's reducer frees the connections' native memory (sockets, HTTP/2 streams,
   * buffers) into a heap that glibc otherwise keeps resident. Default: none.
   */
  readonly trim?: () => void;
  readonly settings?: MemoryModeSettings;
  readonly intervalMs?: number;
  readonly onSwitch?: (mode: MemoryMode, sample: MemoryModeSample) => void;
}

/** Samples the load every interval and applies mode switches; `stop()` returns to `speed`. */
export class MemoryModeController {
  readonly #o: Required<Omit<MemoryModeControllerOptions, 'onSwitch'>> &
    Pick<MemoryModeControllerOptions, 'onSwitch'>;
  #state: MemoryModeState = INITIAL_MEMORY_MODE;
  /** Intervals spent in `memory` mode since the last switch. */
  #memoryIntervals = 0;
  #timer: TimerHandle | undefined;

  constructor(options: MemoryModeControllerOptions) {
    this.#o = {
      sample: loadSampler(),
      apply: applyV8MemoryMode,
      settings: DEFAULT_MEMORY_MODE_SETTINGS,
      intervalMs: MEMORY_MODE_INTERVAL_MS,
      trim: () => undefined,
      ...options,
    };
  }

  get mode(): MemoryMode {
    return this.#state.mode;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.timers.setInterval(() => {
      this.tick();
    }, this.#o.intervalMs);
    this.#timer.unref?.();
  }

  /** One interval's decision (the timer's callback; tests call it directly). */
  tick(): void {
    const sample = this.#o.sample();
    const step = nextMemoryMode(this.#state, sample, this.#o.settings);
    this.#state = step.state;
    if (step.kind === 'switch') {
      this.#memoryIntervals = 0;
      this.#o.apply(step.state.mode);
      this.#o.onSwitch?.(step.state.mode, sample);
    } else if (step.state.mode === 'memory') {
      this.#memoryIntervals += 1;
      if (this.#memoryIntervals % this.#o.settings.trimEveryIntervals === 0) this.#o.trim();
    }
  }

  stop(): void {
    this.#o.timers.clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#state.mode !== 'speed') this.#o.apply('speed');
    this.#state = INITIAL_MEMORY_MODE;
    this.#memoryIntervals = 0;
  }
}
