/**
 * Typed errors of the runtime. Codes are prefixed `RUNTIME_` and are stable: logs, exit paths and
 * tests match on them. Messages say what to check.
 */
import { MeshError, errorMessage } from '@ambient-mesh/errors';
import type { MeshErrorOptions } from '@ambient-mesh/errors';

export const RuntimeErrorCode = {
  ConfigInvalid: 'RUNTIME_CONFIG_INVALID',
  BindFailed: 'RUNTIME_BIND_FAILED',
  DrainTimeout: 'RUNTIME_DRAIN_TIMEOUT',
  StartFailed: 'RUNTIME_START_FAILED',
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

/** One unusable setting: the variable or flag (`--name`) and what is wrong with it. */
export interface ConfigProblem {
  readonly setting: string;
  readonly message: string;
}

export interface ConfigErrorOptions {
  /** The app the configuration belongs to, named in the message (`invalid ztunnel configuration`). */
  readonly component?: string;
  /**
   * The stable code; `RUNTIME_CONFIG_INVALID` by default. Apps that documented their own code
   * before sharing this class (`ZTUNNEL_CONFIG_INVALID`, ...) keep it.
   */
  readonly code?: string;
  readonly cause?: unknown;
}

/**
 * Every unusable environment variable and flag at once, so one restart fixes them all.
 * `problems` are `SETTING: what is wrong` lines; `settings` names the settings in the same order.
 */
export class ConfigError extends MeshError {
  readonly problems: readonly string[];
  readonly settings: readonly string[];
  readonly details: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options: ConfigErrorOptions = {}) {
    const lines = problems.map(p => `${p.setting}: ${p.message}`);
    const what = options.component === undefined ? 'configuration' : `${options.component} configuration`;
    super(
      options.code ?? RuntimeErrorCode.ConfigInvalid,
      `invalid ${what} (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}); ` +
        `check these environment variables and flags: ${lines.join('; ')}`,
      { cause: options.cause },
    );
    this.details = Object.freeze(problems.map(p => Object.freeze({ ...p })));
    this.problems = Object.freeze(lines);
    this.settings = Object.freeze(problems.map(p => p.setting));
  }

  /** The first offending setting. */
  get setting(): string {
    return this.settings[0] ?? '';
  }
}

/** A listener could not bind its address. */
export class BindError extends MeshError {
  readonly listener: string;
  readonly address: string;

  constructor(listener: string, address: string, options?: MeshErrorOptions) {
    super(
      RuntimeErrorCode.BindFailed,
      `cannot bind the ${listener} listener on ${address}; check no other process (or a second copy of this one) holds the port`,
      options,
    );
    this.listener = listener;
    this.address = address;
  }
}

/** A graceful shutdown did not finish within its deadline; the process exits anyway. */
export class DrainTimeoutError extends MeshError {
  constructor(deadlineMs: number) {
    super(
      RuntimeErrorCode.DrainTimeout,
      `graceful shutdown did not finish within ${deadlineMs} ms; connections still open were cut (raise the grace period if this repeats)`,
    );
  }
}

/** `build()` failed; the cause says why. */
export class StartError extends MeshError {
  constructor(component: string, options?: MeshErrorOptions) {
    super(
      RuntimeErrorCode.StartFailed,
      `${component} failed to start${causeText(options?.cause)}; check the log lines above`,
      options,
    );
  }
}

function causeText(cause: unknown): string {
  return cause === undefined ? '' : `: ${errorMessage(cause)}`;
}
