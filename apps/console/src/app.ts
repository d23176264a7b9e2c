// The console's composition root, `build(config, deps) -> Bound`: informers over the cluster
// (kube-source.ts), a Prometheus client, and one HTTP server for the API and the web files.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import { KubeClient, PortForwarder, loadKubeConfig, type KubeConfigHandle } from '@ambient-mesh/kube';
import { Port } from '@ambient-mesh/mesh-api';
import { BindError, createPlatform, requestUrl, type Logs, type Platform } from '@ambient-mesh/runtime';
import { apiRoutes, consoleHandler } from './api.ts';
import type { Config } from './config.ts';
import { kubeSource, type KubeSource } from './kube-source.ts';
import type { PodLogReader } from './logs.ts';
import { httpPrometheus, type PrometheusClient } from './prometheus.ts';
import type { SyncReader } from './sync-state.ts';
import { httpTracing, type TracingClient } from './traces.ts';
import type { ZtunnelDumpReader } from './ztunnel-config.ts';

export interface AppDeps {
  readonly platform?: Platform;
  /** The cluster view (tests hand in a fixed snapshot); default: informers through a KubeClient. */
  readonly source?: KubeSource;
  readonly prometheus?: PrometheusClient;
  /** Pod logs (tests hand in recorded ones); default: the apiserver's `pods/<pod>/log`. */
  readonly readLog?: PodLogReader;
  /** ztunnel config dumps (tests hand in recorded ones); default: a pod port-forward to port 15000. */
  readonly readZtunnelDump?: ZtunnelDumpReader;
  /** The tracing backend (tests hand in recorded answers); default: Jaeger's API at TRACING_URL, if set. */
  readonly tracing?: TracingClient;
  /** istiod's `/debug/syncz` (tests hand in recorded ones); default: a pod port-forward to port 15014. */
  readonly readSyncz?: SyncReader;
  /** Unix milliseconds now (tests fix the metrics range). */
  readonly now?: () => number;
}

/** Pod logs through the apiserver, with the kubelet's timestamps. */
export function apiserverLogs(client: KubeClient): PodLogReader {
  return async (namespace, pod, options) => {
    const text = await client.get<unknown>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`,
      { timestamps: 'true', sinceSeconds: options.sinceSeconds, tailLines: options.tailLines },
    );
    return typeof text === 'string' ? text : JSON.stringify(text);
  };
}

/** One config dump read through a port-forward gives up after this long. */
export const ZTUNNEL_DUMP_TIMEOUT_MS = 10_000;

export interface Bound {
  readonly logs: Logs;
  /** The bound port (the configured one, or the one the OS picked for port 0). */
  readonly port: number;
  readonly url: string;
  shutdown(): Promise<void>;
}

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const { logs } =
    deps.platform ??
    createPlatform({ component: 'console', logFormat: config.logFormat, logLevel: config.logLevel });
  const log = logs.for('console');
  let client: KubeClient | undefined;
  let kubeConfig: KubeConfigHandle | undefined;
  const loaded = (): KubeConfigHandle =>
    (kubeConfig ??= loadKubeConfig({
      inCluster: config.inCluster,
      ...(config.kubeconfig === undefined ? {} : { file: config.kubeconfig }),
    }));
  const kube = (): KubeClient => (client ??= new KubeClient(loaded()));
  let forwarder: PortForwarder | undefined;
  // ztunnel's admin port listens on the pod's localhost only: the apiserver's pod port-forward
  // (`create` on `pods/portforward`) reaches it, as Kiali does; the pod proxy cannot.
  const readDump: ZtunnelDumpReader = (namespace, pod) =>
    (forwarder ??= new PortForwarder(loaded(), { timeoutMs: ZTUNNEL_DUMP_TIMEOUT_MS })).get(
      { namespace, name: pod },
      Port.admin,
      '/config_dump',
    );
  // istiod's monitoring port listens on its localhost too (as `ambientctl proxy-status` reads it).
  const readSyncz: SyncReader = (namespace, pod) =>
    (forwarder ??= new PortForwarder(loaded(), { timeoutMs: ZTUNNEL_DUMP_TIMEOUT_MS })).get(
      { namespace, name: pod },
      Port.istiodMonitoring,
      '/debug/syncz',
    );
  const source =
    deps.source ??
    kubeSource(kube(), {
      onError: (collection, err) => {
        log.warn({ collection, err: errorMessage(err) }, 'cannot list or watch; retrying');
      },
    });
  source.ready.then(
    () => {
      log.info({}, 'cluster listed');
    },
    (err: unknown) => {
      log.warn({ err: errorMessage(err) }, 'stopped before the cluster was listed');
    },
  );
  const prometheus =
    deps.prometheus ?? httpPrometheus({ url: config.prometheusUrl, timeoutMs: config.prometheusTimeoutMs });
  const routes = apiRoutes({
    snapshot: () => source.snapshot(),
    synced: () => source.synced(),
    prometheus,
    systemNamespace: config.systemNamespace,
    logger: log,
    readLog: deps.readLog ?? ((ns, pod, o) => apiserverLogs(kube())(ns, pod, o)),
    readZtunnelDump: deps.readZtunnelDump ?? readDump,
    readSyncz: deps.readSyncz ?? readSyncz,
    tracing:
      deps.tracing ??
      (config.tracingUrl === undefined
        ? undefined
        : httpTracing({ url: config.tracingUrl, timeoutMs: config.prometheusTimeoutMs })),
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });
  const handle = consoleHandler(routes, config.webRoot, log);
  const server = createServer((req, res) => {
    handle(req, res, requestUrl(req.url)).catch((err: unknown) => {
      log.error({ err: errorMessage(err), path: req.url }, 'request failed');
      if (!res.headersSent) res.writeHead(500).end('internal error\n');
    });
  });
  const where = `${config.listen.host}:${config.listen.port}`;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listen.port, config.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await source.stop();
    throw new BindError('console', where, { cause: err });
  }
  const port = (server.address() as AddressInfo).port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}/`;
  log.info({ url, prometheus: config.prometheusUrl }, 'console listening');
  let stopping: Promise<void> | undefined;
  return {
    logs,
    port,
    url,
    shutdown: () =>
      (stopping ??= (async () => {
        await new Promise<void>(resolve => {
          server.close(() => {
            resolve();
          });
          server.closeAllConnections();
        });
        await source.stop();
      })()),
  };
}
