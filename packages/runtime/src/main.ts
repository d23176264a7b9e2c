/**
 * The process lifecycle every app shares: parse the config, `build(config, deps)`, then run until
 * SIGTERM/SIGINT (or the app's own `terminated`, e.g. an admin `/quitquitquit`), drain within a
 * deadline and exit with a code that says how it ended. A configuration error prints one clear
 * block naming every bad setting. A second signal during the drain exits at once.
 *
 * The process is a capability (`ProcessPort`) so all of this is tested without a real process.
 */
import { errorMessage, isMeshError } from '@ambient-mesh/errors';
import { ConfigError, DrainTimeoutError } from './errors.ts';
import type { Logger } from './logger.ts';
import { systemTimers } from './timers.ts';
import type { TimerHandle, Timers } from './timers.ts';

export const ExitCode = {
  /** Started and shut down cleanly. */
  Ok: 0,
  /** Start-up or shutdown failed. */
  Failed: 1,
  /** The configuration is unusable; nothing was started. */
  ConfigInvalid: 2,
  /** The drain did not finish within its deadline. */
  DrainTimeout: 3,
  /** A second signal arrived while draining. */
  Forced: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** What `main` needs from an app's `Bound`. */
export interface Runnable {
  /** Graceful: stop accepting, drain, release. Idempotent. */
  shutdown(): Promise<void>;
  /** Settles when the app shut itself down (optional). */
  readonly terminated?: Promise<void>;
}

export type Signal = 'SIGTERM' | 'SIGINT';

/** The slice of `process` that `main` uses. */
export interface ProcessPort {
  once(signal: Signal, listener: () => void): unknown;
  off(signal: Signal, listener: () => void): unknown;
  writeError(text: string): void;
  /** Records the exit code; the process ends when nothing else keeps it alive. */
  setExitCode(code: number): void;
  /** Ends the process now. */
  exit(code: number): void;
}

export const nodeProcess: ProcessPort = {
  once: (signal, listener) => process.once(signal, listener),
  off: (signal, listener) => process.off(signal, listener),
  writeError: text => {
    process.stderr.write(text);
  },
  setExitCode: code => {
    process.exitCode = code;
  },
  exit: code => {
    process.exit(code);
  },
};

export interface MainOptions<C, D, B extends Runnable> {
  /** The app's name, prefixed to the lines `main` prints. */
  readonly name: string;
  /** Reads the configuration; throws `ConfigError` when unusable. */
  readonly loadConfig: () => C;
  /** The production capabilities, made from the config. */
  readonly deps: (config: C) => D | Promise<D>;
  readonly build: (config: C, deps: D) => Promise<B>;
  /** How long the drain may take after a signal; default 30 s. */
  readonly drainDeadlineMs?: number | ((config: C) => number);
  /** Where `main` logs once the app is up; default plain lines on stderr. */
  readonly logger?: (bound: B) => Logger | undefined;
  readonly process?: ProcessPort;
  readonly timers?: Timers;
  /**
   * After the exit code is set, how long lingering handles may keep the process alive before it
   * is ended; default 5 s (the timer does not itself keep the process alive).
   */
  readonly lingerMs?: number;
}

/** Formats a configuration error as one block: the code, then one line per bad setting. */
export function describeConfigError(name: string, err: ConfigError): string {
  const lines = err.problems.map(p => `  - ${p}\n`).join('');
  return (
    `${name}: invalid configuration [${err.code}]; nothing was started. ` +
    `Fix these environment variables / flags and restart:\n${lines}`
  );
}

/**
 * Runs the app and resolves with its exit code (also recorded on the process). Never rejects.
 */
export async function main<C, D, B extends Runnable>(options: MainOptions<C, D, B>): Promise<ExitCode> {
  const proc = options.process ?? nodeProcess;
  const timers = options.timers ?? systemTimers;
  const finish = (code: ExitCode): ExitCode => {
    proc.setExitCode(code);
    const linger = timers.setTimeout(() => {
      proc.exit(code);
    }, options.lingerMs ?? 5_000);
    linger.unref?.();
    return code;
  };

  let config: C;
  try {
    config = options.loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      proc.writeError(describeConfigError(options.name, err));
      return finish(ExitCode.ConfigInvalid);
    }
    proc.writeError(`${options.name}: cannot read the configuration: ${errorMessage(err)}\n`);
    return finish(ExitCode.Failed);
  }

  let bound: B;
  try {
    bound = await options.build(config, await options.deps(config));
  } catch (err) {
    if (err instanceof ConfigError) {
      proc.writeError(describeConfigError(options.name, err));
      return finish(ExitCode.ConfigInvalid);
    }
    const code = isMeshError(err) ? ` [${err.code}]` : '';
    proc.writeError(`${options.name}: failed to start${code}: ${errorMessage(err)}\n`);
    return finish(ExitCode.Failed);
  }

  const logger = options.logger?.(bound);
  const info = (fields: Record<string, unknown>, msg: string): void => {
    if (logger !== undefined) logger.info(fields, msg);
    else proc.writeError(`${options.name}: ${msg} ${JSON.stringify(fields)}\n`);
  };
  const error = (fields: Record<string, unknown>, msg: string): void => {
    if (logger !== undefined) logger.error(fields, msg);
    else proc.writeError(`${options.name}: ${msg} ${JSON.stringify(fields)}\n`);
  };
  const deadlineMs =
    typeof options.drainDeadlineMs === 'function'
      ? options.drainDeadlineMs(config)
      : (options.drainDeadlineMs ?? 30_000);

  const listening: [Signal, () => void][] = [];
  const listen = (signal: Signal, listener: () => void): void => {
    listening.push([signal, listener]);
    proc.once(signal, listener);
  };
  const code = await new Promise<ExitCode>(resolve => {
    let draining = false;
    const drain = (reason: string): void => {
      if (draining) return;
      draining = true;
      info({ reason, deadlineMs }, 'shutting down');
      let deadline: TimerHandle | undefined;
      const expired = new Promise<'timeout'>(done => {
        deadline = timers.setTimeout(() => {
          done('timeout');
        }, deadlineMs);
      });
      Promise.race([bound.shutdown().then(() => 'done' as const), expired]).then(
        outcome => {
          timers.clearTimeout(deadline);
          if (outcome === 'timeout') {
            error(
              { code: new DrainTimeoutError(deadlineMs).code },
              new DrainTimeoutError(deadlineMs).message,
            );
            resolve(ExitCode.DrainTimeout);
          } else {
            info({}, 'shutdown complete');
            resolve(ExitCode.Ok);
          }
        },
        (err: unknown) => {
          timers.clearTimeout(deadline);
          error({ err: errorMessage(err) }, 'shutdown failed');
          resolve(ExitCode.Failed);
        },
      );
    };
    // While draining, a repeated SIGINT (a user pressing Ctrl-C again) exits at once; a repeated
    // SIGTERM is ignored, as upstream Istio's binaries ignore it: an entry point that forwards
    // SIGTERM and a runtime that signals the whole process group both deliver it, and the
    // kubelet's SIGKILL after the grace period already bounds the drain.
    const onSignal = (signal: Signal) => (): void => {
      if (draining && signal === 'SIGINT') {
        proc.writeError(`${options.name}: ${signal} again while draining; exiting now\n`);
        proc.exit(ExitCode.Forced);
        resolve(ExitCode.Forced);
        return;
      }
      // Listen again, so a repeated signal is handled here instead of killing the process.
      listen(signal, onSignal(signal));
      drain(signal);
    };
    listen('SIGTERM', onSignal('SIGTERM'));
    listen('SIGINT', onSignal('SIGINT'));
    bound.terminated?.then(
      () => {
        drain('terminated');
      },
      () => {
        drain('terminated');
      },
    );
  });
  for (const [signal, listener] of listening) proc.off(signal, listener);
  return finish(code);
}
