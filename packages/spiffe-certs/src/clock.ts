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

/** The real clock. Globals are looked up at call time, never captured at import. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: handle => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
