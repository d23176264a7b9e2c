/**
 * Polling until a condition holds, with a deadline and a progress line now and then so a long
 * wait (pulling images, a slow node) is visible. Timers are injected.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { sleep, systemTimers, type Timers } from '@ambient-mesh/kube';
import { InstallError, InstallErrorCode } from './errors.ts';

export interface WaitOptions {
  readonly timeoutMs: number;
  /** Between checks (default 1 s). */
  readonly intervalMs?: number;
  readonly timers?: Timers;
  /** Called about every `progressEveryMs` while waiting, with how long it has waited and why not yet. */
  readonly onProgress?: (line: string) => void;
  /** Default 10 s. */
  readonly progressEveryMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Calls `check` until it answers something other than undefined; answers that. A throwing check
 * counts as "not yet" (the apiserver may be briefly unavailable) and its error ends up in the
 * timeout's message. `describe` says why it is not ready yet, for progress lines and the error.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: WaitOptions,
  describe?: () => Promise<string>,
): Promise<T> {
  const timers = options.timers ?? systemTimers;
  const start = timers.now();
  let lastProgress = start;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    const waited = timers.now() - start;
    if (waited >= options.timeoutMs || options.signal?.aborted === true) {
      const why = describe === undefined ? '' : await describe().catch(() => '');
      const err = lastError === undefined ? '' : `; last error: ${errorMessage(lastError)}`;
      throw new InstallError(
        InstallErrorCode.Timeout,
        `${what}: not done after ${Math.round(waited / 1000)} s${why === '' ? '' : `; ${why}`}${err}`,
        lastError === undefined ? {} : { cause: lastError },
      );
    }
    if (
      options.onProgress !== undefined &&
      timers.now() - lastProgress >= (options.progressEveryMs ?? 10_000)
    ) {
      lastProgress = timers.now();
      const why = describe === undefined ? '' : await describe().catch(() => '');
      options.onProgress(
        `still waiting for ${what} (${Math.round(waited / 1000)} s)${why === '' ? '' : `: ${why}`}`,
      );
    }
    await sleep(timers, options.intervalMs ?? 1_000, options.signal);
  }
}
