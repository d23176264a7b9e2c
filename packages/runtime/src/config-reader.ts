/**
 * Reads an app's settings from the environment and flags, collecting EVERY problem.
 *
 * An app's `config.ts` makes one `ConfigReader`, asks it for each setting with a typed fallback,
 * and calls `finish()` last: it returns the frozen config, or throws one `ConfigError` naming
 * every unusable variable and flag. A flag wins over its environment variable.
 */
import { ConfigError } from './errors.ts';
import type { ConfigProblem } from './errors.ts';
import { parseFlags } from './flags.ts';
import type { FlagSpecs } from './flags.ts';
import { LOG_LEVELS, LogFormat, isLogLevel } from './logger.ts';
import type { LogLevel } from './logger.ts';
import { parseBool, parseDuration, parseInteger, parseIp, parseListenAddress, parsePort } from './parsers.ts';
import type { DurationOptions, IntegerOptions, ListenAddress, Parsed } from './parsers.ts';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Where a setting comes from: an environment variable name, or a flag and/or variable. */
export type Source = string | { readonly flag?: string; readonly env?: string };

export interface ConfigReaderOptions {
  readonly env: Environment;
  readonly argv?: readonly string[];
  /** The flags the app accepts; anything else is a problem. */
  readonly flags?: FlagSpecs;
  /** What to do with arguments that are not flags; default `reject`. */
  readonly positionals?: 'reject' | 'ignore';
}

export interface FinishOptions {
  /** Named in the error message. */
  readonly component?: string;
  /** The stable error code; `RUNTIME_CONFIG_INVALID` by default. */
  readonly code?: string;
}

export class ConfigReader {
  readonly #env: Environment;
  readonly #flags: ReadonlyMap<string, string>;
  readonly #problems: ConfigProblem[] = [];

  constructor(options: ConfigReaderOptions) {
    this.#env = options.env;
    const parsed = parseFlags(options.argv ?? [], options.flags ?? {});
    this.#flags = parsed.values;
    this.#problems.push(...parsed.problems);
    if ((options.positionals ?? 'reject') === 'reject') {
      for (const arg of parsed.positionals) {
        this.#problems.push({ setting: arg, message: 'positional arguments are not accepted' });
      }
    }
  }

  /** Problems found so far. */
  get problems(): readonly ConfigProblem[] {
    return this.#problems;
  }

  /** Records a problem the app found itself (a cross-field check, a required value). */
  problem(setting: string, message: string): void {
    this.#problems.push({ setting, message });
  }

  /** The trimmed value of an environment variable; `undefined` when unset or blank. */
  env(name: string): string | undefined {
    const v = this.#env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** The raw value of an environment variable (not trimmed; may be empty). */
  envRaw(name: string): string | undefined {
    return this.#env[name];
  }

  /** The value given to `--name`, if any. */
  flag(name: string): string | undefined {
    return this.#flags.get(name);
  }

  hasFlag(name: string): boolean {
    return this.#flags.has(name);
  }

  /** The raw value and the setting name it came from (the flag wins). */
  lookup(source: Source): { readonly setting: string; readonly raw: string | undefined } {
    if (typeof source === 'string') return { setting: source, raw: this.env(source) };
    if (source.flag !== undefined && this.#flags.has(source.flag)) {
      return { setting: `--${source.flag}`, raw: this.#flags.get(source.flag) };
    }
    if (source.env !== undefined) return { setting: source.env, raw: this.env(source.env) };
    return { setting: `--${source.flag ?? '?'}`, raw: undefined };
  }

  /** Applies `parse` when the setting is given; records the problem and falls back otherwise. */
  parse<T>(source: Source, parse: (raw: string) => Parsed<T>, fallback: T): T {
    const { setting, raw } = this.lookup(source);
    if (raw === undefined) return fallback;
    const parsed = parse(raw);
    if (parsed.ok) return parsed.value;
    this.problem(setting, parsed.message);
    return fallback;
  }

  string(source: Source, fallback: string): string {
    return this.lookup(source).raw ?? fallback;
  }

  optional(source: Source): string | undefined {
    return this.lookup(source).raw;
  }

  /** A value that must be set; `hint` tells the user where it usually comes from. */
  required(source: Source, hint: string): string {
    const { setting, raw } = this.lookup(source);
    if (raw === undefined) this.problem(setting, `required (${hint})`);
    return raw ?? '';
  }

  bool(source: Source, fallback: boolean): boolean {
    return this.parse(source, parseBool, fallback);
  }

  int(source: Source, fallback: number, options: IntegerOptions = {}): number {
    return this.parse(source, raw => parseInteger(raw, options), fallback);
  }

  port(source: Source, fallback: number): number {
    return this.parse(source, parsePort, fallback);
  }

  ip(source: Source, fallback: string, family?: 4 | 6): string {
    return this.parse(source, raw => parseIp(raw, family), fallback);
  }

  listenAddress(source: Source, fallback: ListenAddress): ListenAddress {
    return this.parse(source, parseListenAddress, fallback);
  }

  /** A Go duration, in milliseconds. */
  durationMs(source: Source, fallbackMs: number, options: DurationOptions = {}): number {
    return this.parse(source, raw => parseDuration(raw, options), fallbackMs);
  }

  /** `json` or `text` (`plain`, upstream ztunnel's name, is read as `text`). */
  logFormat(source: Source, fallback: LogFormat = LogFormat.Text): LogFormat {
    return this.parse(
      source,
      (raw): Parsed<LogFormat> => {
        const v = raw.toLowerCase();
        if (v === 'json') return { ok: true, value: LogFormat.Json };
        if (v === 'text' || v === 'plain') return { ok: true, value: LogFormat.Text };
        return {
          ok: false,
          message: `${JSON.stringify(raw)} is not a log format (expected "json" or "text")`,
        };
      },
      fallback,
    );
  }

  logLevel(source: Source, fallback: LogLevel = 'info'): LogLevel {
    return this.parse(
      source,
      (raw): Parsed<LogLevel> => {
        const v = raw.toLowerCase();
        if (isLogLevel(v)) return { ok: true, value: v };
        return {
          ok: false,
          message: `${JSON.stringify(raw)} is not a log level (expected one of ${LOG_LEVELS.join(', ')})`,
        };
      },
      fallback,
    );
  }

  /** `<prefix><KEY>` variables as `[KEY, value]`, sorted by key. */
  prefixed(prefix: string): [string, string][] {
    const out: [string, string][] = [];
    for (const [key, value] of Object.entries(this.#env)) {
      if (key.startsWith(prefix) && key.length > prefix.length && value !== undefined) {
        out.push([key.slice(prefix.length), value]);
      }
    }
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Throws one `ConfigError` listing every problem, or returns `config` frozen. */
  finish<T extends object>(config: T, options: FinishOptions = {}): Readonly<T> {
    if (this.#problems.length > 0) throw new ConfigError(this.#problems, options);
    return Object.freeze(config);
  }
}
