// The only module of the console that reads the environment: where it listens (loopback unless
// configured), where the apiserver, Prometheus and the tracing backend are, and where its web files lie.
import { fileURLToPath } from 'node:url';
import { ConfigReader, LogFormat, parseHttpUrl } from '@ambient-mesh/runtime';
import type { Environment, ListenAddress, LogLevel } from '@ambient-mesh/runtime';
import { WellKnown } from '@ambient-mesh/mesh-api';

export const ENV = {
  listen: 'CONSOLE_LISTEN_ADDRESS',
  webRoot: 'CONSOLE_WEB_ROOT',
  prometheusUrl: 'PROMETHEUS_URL',
  prometheusTimeout: 'PROMETHEUS_TIMEOUT',
  tracingUrl: 'TRACING_URL',
  kubeconfig: 'KUBECONFIG',
  inCluster: 'CONSOLE_IN_CLUSTER',
  systemNamespace: 'ISTIO_SYSTEM_NAMESPACE',
  logFormat: 'LOG_FORMAT',
  logLevel: 'LOG_LEVEL',
} as const;

/** Kiali's port. */
export const DEFAULT_PORT = 20001;
export const DEFAULT_PROMETHEUS_URL = `http://prometheus.${WellKnown.systemNamespace}:9090`;
/** The built frontend, beside the compiled server (`dist/web`). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../dist/web', import.meta.url));

export interface Config {
  /** Loopback by default: the console has no login, so exposing it is a deliberate choice. */
  readonly listen: ListenAddress;
  readonly webRoot: string;
  readonly prometheusUrl: string;
  readonly prometheusTimeoutMs: number;
  /** A Jaeger query API (the spans of waypoints); undefined: the Traces tab says it is not configured. */
  readonly tracingUrl: string | undefined;
  readonly kubeconfig: string | undefined;
  readonly inCluster: boolean;
  readonly systemNamespace: string;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
}

export function loadConfig(env: Environment = process.env): Config {
  const r = new ConfigReader({ env });
  const prometheusUrl = r.string(ENV.prometheusUrl, DEFAULT_PROMETHEUS_URL);
  const url = parseHttpUrl(prometheusUrl);
  if (!url.ok) r.problem(ENV.prometheusUrl, `${url.message} (expected e.g. ${DEFAULT_PROMETHEUS_URL})`);
  const prometheusTimeoutMs = r.durationMs(ENV.prometheusTimeout, 5_000);
  if (prometheusTimeoutMs <= 0) r.problem(ENV.prometheusTimeout, 'must be a positive duration (e.g. 5s)');
  const tracingUrl = r.optional(ENV.tracingUrl);
  if (tracingUrl !== undefined) {
    const t = parseHttpUrl(tracingUrl);
    if (!t.ok)
      r.problem(ENV.tracingUrl, `${t.message} (expected e.g. http://tracing.istio-system:80/jaeger)`);
  }
  return r.finish(
    {
      listen: r.listenAddress(ENV.listen, { host: '127.0.0.1', port: DEFAULT_PORT }),
      webRoot: r.string(ENV.webRoot, DEFAULT_WEB_ROOT),
      prometheusUrl,
      prometheusTimeoutMs,
      tracingUrl,
      kubeconfig: r.optional(ENV.kubeconfig),
      inCluster: r.bool(ENV.inCluster, false),
      systemNamespace: r.string(ENV.systemNamespace, WellKnown.systemNamespace),
      logFormat: r.logFormat(ENV.logFormat, LogFormat.Json),
      logLevel: r.logLevel(ENV.logLevel, 'info'),
    },
    { component: 'console' },
  );
}
