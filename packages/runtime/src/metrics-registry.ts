/**
 * One prom-client registry per app instance (tests build several in one process), with the
 * default process metrics (`process_*`, `nodejs_*`) where the app is a real process.
 */
import { readFileSync } from 'node:fs';
import { Registry, collectDefaultMetrics } from 'prom-client';

export interface RegistryOptions {
  /** Register prom-client's process and Node.js metrics; default false (tests, embedding). */
  readonly defaultMetrics?: boolean;
  /** Prefix of the default metrics' names. */
  readonly prefix?: string;
  /** Labels added to every series of this registry. */
  readonly labels?: Readonly<Record<string, string>>;
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.labels !== undefined) registry.setDefaultLabels({ ...options.labels });
  if (options.defaultMetrics === true) {
    collectDefaultMetrics({
      register: registry,
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    });
  }
  return registry;
}

/**
 * The `version` of the package.json at `packageJsonUrl` (an app passes
 * `new URL('../package.json', import.meta.url)`, which holds from `src/` and `dist/` alike): the
 * version an app reports in `istio_build` and `/version`, never a constant. `unknown` when the
 * file has none.
 */
export function packageVersion(packageJsonUrl: URL): string {
  const pkg = JSON.parse(readFileSync(packageJsonUrl, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
