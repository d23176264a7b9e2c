/**
 * A CommandContext for tests: captured stdout/stderr, a cluster factory that fails unless the
 * test provides one, silent progress and an immediate sleep; and the program offline, to read
 * its command tree.
 */
import type { Command } from 'commander';
import type { Cluster, ClusterFlags } from './cluster.ts';
import { createContext, type CommandContext } from './context.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { silentProgress } from './progress.ts';
import { buildProgram, run } from './program.ts';

export interface CapturedRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly flags: ClusterFlags[];
}

export interface TestContextOptions {
  readonly cluster?: (flags: ClusterFlags) => Cluster;
  readonly now?: Date;
  readonly stdin?: string;
  /** Plays the browser: called with each URL `dashboard` opens (default: no browser here). */
  readonly openUrl?: (url: string) => Promise<boolean>;
}

export async function runCli(
  argv: readonly string[],
  options: TestContextOptions = {},
): Promise<CapturedRun> {
  let stdout = '';
  let stderr = '';
  const flags: ClusterFlags[] = [];
  // A virtual clock that only sleeps move: waits run instantly and still reach their deadline.
  let slept = 0;
  const start = (options.now ?? new Date('2026-12-05T10:00:00Z')).getTime();
  const ctx: CommandContext = createContext({
    out: t => (stdout += t),
    err: t => (stderr += t),
    cluster: f => {
      flags.push(f);
      if (options.cluster === undefined) {
        throw new CliError(CliErrorCode.ClusterUnreachable, 'no cluster in this test');
      }
      return options.cluster(f);
    },
    progress: silentProgress,
    now: () => new Date(start + slept),
    sleep: ms => {
      slept += ms;
      return Promise.resolve();
    },
    readStdin: () => Promise.resolve(options.stdin ?? ''),
    ...(options.openUrl === undefined ? {} : { openUrl: options.openUrl }),
  });
  const code = await run(argv, ctx);
  return { code, stdout, stderr, flags };
}

/** The program, to read its command tree: no output, and no cluster (asking for one throws). */
export function offlineProgram(): Command {
  return buildProgram(
    createContext({
      out: () => undefined,
      err: () => undefined,
      cluster: () => {
        throw new Error('unused');
      },
      progress: silentProgress,
    }),
  );
}
