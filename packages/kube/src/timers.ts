/**
 * The clock and timers the library waits with. Everything that sleeps (informer back-off, status
 * patch retries, readiness polls) takes them as an option, so tests drive time by hand. The
 * implementation is @ambient-mesh/runtime's `systemTimers`; `Timers` is the part of it this
 * library calls, with opaque handles so a test's fake may return any value.
 */
import { systemTimers } from '@ambient-mesh/runtime';

export { systemTimers };

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds, monotonic enough for measuring intervals. */
  now(): number;
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (resolving, not rejecting: callers check
 * the signal themselves).
 */
export function sleep(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>(resolve => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      resolve();
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
