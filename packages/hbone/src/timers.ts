/**
 * The timer capability the pool and the client use, injectable so tests can drive time.
 * The default calls the global functions at call time (so vitest fake timers apply too) and
 * unrefs every timer: HBONE housekeeping never keeps a process alive on its own.
 */
export interface TimerHandle {
  readonly __timerHandle?: never;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle as TimerHandle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
