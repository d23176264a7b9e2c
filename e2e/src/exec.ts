import { spawn } from 'node:child_process';
import { ClusterError, ClusterErrorCode } from './errors.ts';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Resolve with the result instead of rejecting when the command exits non-zero. */
  readonly allowFailure?: boolean;
  /** Kill the command after this many ms (default 60 s). */
  readonly timeoutMs?: number;
}

/** Runs a command to completion; the capability that tests replace with a recorder. */
export type CommandRunner = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Runs `argv` without a shell, collecting output. Rejects with CLUSTER_COMMAND_FAILED on a non-zero exit. */
export const runCommand: CommandRunner = (argv, options = {}) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new ClusterError(ClusterErrorCode.CommandFailed, 'runCommand needs a non-empty argv'));
      return;
    }
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', e => {
      reject(
        new ClusterError(
          ClusterErrorCode.CommandFailed,
          `could not run ${file}: ${e.message}; is it installed?`,
          {
            cause: e,
          },
        ),
      );
    });
    child.on('close', (code, signal) => {
      const result = {
        code: code ?? (signal === null ? 1 : 128),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code !== 0 && options.allowFailure !== true) {
        reject(
          new ClusterError(
            ClusterErrorCode.CommandFailed,
            `${argv.join(' ')} exited ${signal ?? result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
          ),
        );
        return;
      }
      resolve(result);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });

/** Polls `check` until it returns a value other than undefined, or throws CLUSTER_TIMEOUT at the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number; fatal?: (err: unknown) => boolean } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const intervalMs = options.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (e) {
      if (options.fatal?.(e) === true) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new ClusterError(
        ClusterErrorCode.Timeout,
        `timed out after ${timeoutMs} ms waiting for ${what}${detail}`,
        {
          cause: lastError,
        },
      );
    }
    await new Promise(r => setTimeout(r, intervalMs));
  }
}

export interface BuildScriptOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Lines of the script's stderr that start with this prefix are passed to `onProgress`. */
  readonly progressPrefix: string;
  readonly onProgress: (line: string) => void;
  /** What the failure message says the build needs, e.g. "Go and the Go module proxy". */
  readonly what: string;
  readonly needs: string;
}

/**
 * Runs a build script of `tools/` that prints the directory it built into as its last stdout line,
 * and resolves with that directory. A failure rejects with a `BinaryMissing` error that names the
 * script, its exit code, what it needs, and the tail of its stderr.
 */
export function runBuildScript(script: string, options: BuildScriptOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script], {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let errTail = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      const text = b.toString();
      errTail = (errTail + text).slice(-3000);
      for (const line of text.split('\n'))
        if (line.startsWith(options.progressPrefix)) options.onProgress(line);
    });
    child.on('error', e => {
      reject(
        new ClusterError(ClusterErrorCode.BinaryMissing, `could not run ${script}: ${e.message}`, {
          cause: e,
        }),
      );
    });
    child.on('close', code => {
      if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else
        reject(
          new ClusterError(
            ClusterErrorCode.BinaryMissing,
            `building ${options.what} failed (${script} exit ${String(code)}); it needs ${options.needs}. Last output:\n${errTail}`,
          ),
        );
    });
  });
}
