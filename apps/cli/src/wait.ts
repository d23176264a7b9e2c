/**
 * Polling a condition until it holds or a deadline passes, reporting progress each round. The
 * clock and sleep come from the context, so tests drive waits without real time.
 */
import type { CommandContext } from './context.ts';
import { CliError, CliErrorCode } from './errors.ts';

export interface PollResult {
  readonly done: boolean;
  /** One line for the progress output (`2/3 pods redirected`). */
  readonly status: string;
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** The message of the timeout error: what was awaited, and what to check. */
  readonly onTimeout: (lastStatus: string) => string;
}

export async function pollUntil(
  ctx: CommandContext,
  check: () => Promise<PollResult>,
  options: PollOptions,
): Promise<string> {
  const start = ctx.now().getTime();
  for (;;) {
    const r = await check();
    if (r.done) {
      ctx.progress.done(r.status);
      return r.status;
    }
    ctx.progress.step(r.status);
    if (ctx.now().getTime() - start >= options.timeoutMs) {
      ctx.progress.done(r.status, false);
      throw new CliError(CliErrorCode.Timeout, options.onTimeout(r.status));
    }
    await ctx.sleep(options.intervalMs ?? 1000);
  }
}

/** Parses durations like `90s`, `2m`, `500ms` or plain seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (m === null) {
    throw new CliError(CliErrorCode.Usage, `invalid duration "${value}"; use e.g. 90s, 2m or 500ms`);
  }
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}
