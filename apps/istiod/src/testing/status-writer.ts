// Helpers of the status-writer tests (policy-status, source-status): a patch error the way the
// Kubernetes client reports it, and a way to let the writers' promise continuations run while
// vitest's fake timers hold the clock (they leave microtasks alone). Timers: `systemTimers`, which
// looks the globals up at call time, so the fake timers apply.

/** An error like the Kubernetes client's for an HTTP status `code`. */
export const httpError = (code: number): Error =>
  Object.assign(new Error(`HTTP-Code: ${String(code)}`), { code });

/** Lets pending promise continuations run (a bounded number of microtask turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
