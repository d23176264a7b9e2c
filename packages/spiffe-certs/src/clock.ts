import { systemTimers, type TimerHandle as RuntimeTimerHandle } from '@ambient-mesh/runtime';

/** An opaque timer handle, whatever the clock's `setTimeout` returns. */
export type TimerHandle = object | number;

/**
 * Time and timers, injected so tests can drive them (vitest fake timers patch the globals that
 * {@link systemClock} reads on every call, so they work with the default too).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: @ambient-mesh/runtime's `systemTimers` (globals looked up at call time), seen
 * through this package's `Clock`, whose handles are opaque.
 */
export const systemClock: Clock = {
  now: () => systemTimers.now(),
  setTimeout: (callback, delayMs) => systemTimers.setTimeout(callback, delayMs),
  clearTimeout: handle => {
    systemTimers.clearTimeout(handle as RuntimeTimerHandle);
  },
};
