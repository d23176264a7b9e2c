import { describe, expect, it } from 'vitest';
import { isMeshError } from '@ambient-mesh/errors';
import { createContext } from './context.ts';
import { ExitCode } from './errors.ts';
import { createProgress } from './progress.ts';
import { parseDuration, pollUntil } from './wait.ts';

function fakeContext(): { ctx: ReturnType<typeof createContext>; stderr: () => string; slept: number[] } {
  let now = 0;
  let stderr = '';
  const slept: number[] = [];
  const ctx = createContext({
    out: () => undefined,
    err: () => undefined,
    cluster: () => {
      throw new Error('unused');
    },
    progress: createProgress(
      {
        write: t => {
          stderr += t;
        },
      },
      true,
    ),
    now: () => new Date(now),
    sleep: ms => {
      slept.push(ms);
      now += ms;
      return Promise.resolve();
    },
  });
  return { ctx, stderr: () => stderr, slept };
}

describe('pollUntil', () => {
  it('polls until the condition holds, reporting each new status', async () => {
    const { ctx, stderr, slept } = fakeContext();
    let n = 0;
    const status = await pollUntil(
      ctx,
      () => {
        n += 1;
        return Promise.resolve({ done: n === 3, status: `${n}/3` });
      },
      { timeoutMs: 10_000, intervalMs: 500, onTimeout: () => 'unused' },
    );
    expect(status).toBe('3/3');
    expect(slept).toEqual([500, 500]);
    expect(stderr()).toBe('… 1/3\n… 2/3\n✔ 3/3\n');
  });

  it('gives up after the timeout with a CLI_TIMEOUT error (exit 6) carrying the last status', async () => {
    const { ctx, stderr } = fakeContext();
    const err = await pollUntil(ctx, () => Promise.resolve({ done: false, status: '0/1' }), {
      timeoutMs: 2000,
      onTimeout: last => `${last}; check the cni-agent`,
    }).catch((e: unknown) => e);
    expect(isMeshError(err, 'CLI_TIMEOUT')).toBe(true);
    expect((err as { exitCode: number }).exitCode).toBe(ExitCode.Timeout);
    expect((err as Error).message).toBe('0/1; check the cni-agent');
    expect(stderr()).toMatch(/✘ 0\/1\n$/);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m and plain seconds; refuses the rest', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('3')).toBe(3000);
    expect(() => parseDuration('soon')).toThrow(/invalid duration "soon"/);
  });
});
