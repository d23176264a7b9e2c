/**
 * Injected time. Components take a `Timers` (or just a `Clock`) so tests can drive time with
 * `FakeTimers` (from `@ambient-mesh/runtime/testing`) or vitest's fake timers: `systemTimers`
 * looks the globals up at call time, never at import.
 */

/** What `setTimeout` returns; `unref` lets a timer not keep the process alive. */
export interface TimerHandle {
  unref?(): unknown;
}

/** Wall-clock time in milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

export interface Timers extends Clock {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
};

export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: handle => {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: handle => {
    if (handle !== undefined) clearInterval(handle as ReturnType<typeof setInterval>);
  },
};

/**
 * `systemTimers` whose timers never keep the process alive on their own (each is unref'd):
 * for housekeeping (idle and keepalive timers) that must not hold a process that is done.
 */
export const unrefTimers: Timers = {
  ...systemTimers,
  setTimeout: (callback, ms) => {
    const handle = systemTimers.setTimeout(callback, ms);
    handle.unref?.();
    return handle;
  },
  setInterval: (callback, ms) => {
    const handle = systemTimers.setInterval(callback, ms);
    handle.unref?.();
    return handle;
  },
};

/**
 * Resolves after `ms`, or rejects with the signal's reason when aborted first. The timer is
 * cleared either way.
 */
export function delay(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
