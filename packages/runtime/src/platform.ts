/**
 * The platform an app runs on: its logs and its metrics registry, made here and nowhere else.
 * An app's composition root receives a `Platform` (the process entry point makes one with
 * `createPlatform`; tests and embedders make their own) and hands `logs` and `registry` down;
 * apps never construct a logger or a registry themselves (a house rule checks it).
 */
import type { Registry } from 'prom-client';
import { Logs, type LogFormat, type LogLevel, type Logger } from './logger.ts';
import { createRegistry } from './metrics-registry.ts';

export interface Platform {
  readonly logs: Logs;
  /** The app's own registry: every metric it serves on `/metrics` registers here. */
  readonly registry: Registry;
}

export interface PlatformOptions {
  /** The root logger's `component` (the app's name). */
  readonly component: string;
  readonly logFormat?: LogFormat;
  readonly logLevel?: LogLevel;
  /** Use these logs (an embedder's or a test's) instead of new ones. */
  readonly logs?: Logs;
  /** Log through this logger instead of a new one (an embedder's or a test's). */
  readonly logger?: Logger;
  /** Add the `process_*` and `nodejs_*` metrics (the executable does; tests and embedders don't). */
  readonly processMetrics?: boolean;
}

export function createPlatform(options: PlatformOptions): Platform {
  const logs =
    options.logs ??
    (options.logger !== undefined
      ? Logs.wrap(options.logger)
      : new Logs({
          format: options.logFormat ?? 'text',
          level: options.logLevel ?? 'info',
          component: options.component,
        }));
  return { logs, registry: createRegistry({ defaultMetrics: options.processMetrics === true }) };
}
