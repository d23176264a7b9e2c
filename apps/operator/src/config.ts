// The only module that reads the operator's environment: where the apiserver is, how to log,
// how often every CR is reconciled again (drift correction), and the image map.
import { ConfigReader, LogFormat } from '@ambient-mesh/runtime';
import type { Environment, LogLevel } from '@ambient-mesh/runtime';

export const ENV = {
  kubeconfig: 'KUBECONFIG',
  inCluster: 'OPERATOR_IN_CLUSTER',
  resync: 'OPERATOR_RESYNC_PERIOD',
  images: 'OPERATOR_IMAGES',
  metricsPort: 'OPERATOR_METRICS_PORT',
  podName: 'POD_NAME',
  serviceHost: 'KUBERNETES_SERVICE_HOST',
  servicePort: 'KUBERNETES_SERVICE_PORT',
  logFormat: 'LOG_FORMAT',
  logLevel: 'LOG_LEVEL',
} as const;

export interface Config {
  /** Kubeconfig file; undefined: in-cluster or the default loading rules. */
  readonly kubeconfig: string | undefined;
  readonly inCluster: boolean;
  /** In-cluster: the apiserver's URL from KUBERNETES_SERVICE_HOST/PORT (undefined outside a pod). */
  readonly apiServer: string | undefined;
  /** Every CR is reconciled again this often, reverting manual edits of owned objects. */
  readonly resyncMs: number;
  /** Image overrides by repository (`ambient-mesh/ztunnel=registry/ztunnel:1.2,...`). */
  readonly images: Readonly<Record<string, string>>;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  /** `/metrics`, `/healthz` and `/readyz` on 0.0.0.0; 0 picks a free port (tests). */
  readonly metricsPort: number;
  /** Reported as the Events' reporting instance. */
  readonly podName: string;
}

function apiServer(host: string | undefined, port: number): string | undefined {
  if (host === undefined || host === '') return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function loadConfig(env: Environment = process.env): Config {
  const r = new ConfigReader({ env });
  const images: Record<string, string> = {};
  for (const pair of (r.optional(ENV.images) ?? '').split(',').filter(p => p.trim() !== '')) {
    const [from, to] = pair.split('=').map(s => s.trim());
    if (from === undefined || from === '' || to === undefined || to === '')
      r.problem(ENV.images, `"${pair}" is not repository=image`);
    else images[from] = to;
  }
  return r.finish(
    {
      kubeconfig: r.optional(ENV.kubeconfig),
      inCluster: r.bool(ENV.inCluster, false),
      apiServer: apiServer(r.optional(ENV.serviceHost), r.port(ENV.servicePort, 443)),
      resyncMs: r.durationMs(ENV.resync, 60_000),
      images,
      logFormat: r.logFormat(ENV.logFormat, LogFormat.Json),
      logLevel: r.logLevel(ENV.logLevel, 'info'),
      metricsPort: r.int(ENV.metricsPort, 8080, { min: 0, max: 65_535 }),
      podName: r.string(ENV.podName, 'ambient-mesh-operator'),
    },
    { component: 'operator' },
  );
}
