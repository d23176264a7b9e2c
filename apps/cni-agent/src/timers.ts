/** Injected timers, so tests drive timeouts without waiting. */
export interface TimerHandle {
  unref?(): unknown;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: handle => {
    clearTimeout(handle as NodeJS.Timeout);
  },
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: handle => {
    clearInterval(handle as NodeJS.Timeout);
  },
};
