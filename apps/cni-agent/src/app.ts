/**
 * The composition root of the node agent, `build(config, deps) -> Bound`: wires config,
 * Kubernetes, rules, ZDS, the plugin channel and the ops endpoints (the runtime's ops server), in
 * the order that keeps snapshots complete:
 *   plugin socket → informers synced → start-up reconcile → ZDS listener → drift timer → ready.
 */
import { mkdirSync } from 'node:fs';
import { errorMessage } from '@ambient-mesh/errors';
import { closeFd } from '@ambient-mesh/netns';
import {
  livenessRoute,
  metricsRoutes,
  readinessRoute,
  startOpsServer,
  systemTimers,
  createPlatform,
  type Platform,
} from '@ambient-mesh/runtime';
import type { Logger, OpsServer, Timers, Logs } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
import { KubeClient, loadKubeConfig } from './kube-client.ts';
import type { KubeEventHandlers } from './kube-client.ts';
import { AgentMetrics } from './metrics.ts';
import { FileNetnsLocator } from './netns-cache.ts';
import { netnsScanner } from './netns-scanner.ts';
import { startPluginEventServer } from './plugin-event-server.ts';
import { addonNetnsOpener, nftHostProbe, nftPodRules } from './pod-rules.ts';
import { Reconciler } from './reconciler.ts';
import type { HostProbeRules, KubeApi, NetnsOpener, PodRules } from './reconciler.ts';
import { clearShutdownVerdict, writeShutdownVerdict } from './shutdown.ts';
import type { ShutdownVerdict } from './shutdown.ts';
import { listenZds } from './zds/zds-listener.ts';
import { ZdsServer } from './zds/zds-server.ts';

/** Capabilities an embedding (or a test) may replace; each has a production default. */
export interface AppDeps {
  /** The process's loggers; default: made from `LOG_FORMAT` / `LOG_LEVEL`. */
  /** Logs and metrics registry from the runtime (`createPlatform`); by default made from config. */
  readonly platform?: Platform;
  readonly logs?: Logs;
  /** An existing pino logger to log through instead (adopted as `logs`). */
  readonly logger?: Logger;
  readonly kube?: KubeApi & {
    start(handlers: KubeEventHandlers): Promise<void>;
    stop(): Promise<void>;
    /** Restart or uninstall (`shutdown.ts`); without it no verdict is written. */
    shutdownVerdict?(namespace: string, podName: string | null): Promise<ShutdownVerdict>;
  };
  readonly rules?: PodRules;
  /** `null` turns the host probe SNAT off. */
  readonly hostProbe?: HostProbeRules | null;
  readonly netns?: NetnsOpener;
  readonly timers?: Timers;
  /** Add the process and Node.js metrics (`process_*`, `nodejs_*`); the executable does. */
  readonly processMetrics?: boolean;
}

export interface Bound {
  readonly logs: Logs;
  readonly reconciler: Reconciler;
  readonly zds: ZdsServer;
  readonly metrics: AgentMetrics;
  readonly opsPort: number;
  ready(): boolean;
  /** Graceful: not ready, let the reconciler go idle, then stop in reverse start order. Idempotent. */
  shutdown(): Promise<void>;
  /** The same as `shutdown()` (the name embedders used first). */
  stop(): Promise<void>;
}

/** Earlier names of the composition root, kept for embedders. */
export type AgentOverrides = AppDeps;
export type Agent = Bound;

/** How long the stopping agent waits for the API to tell a restart from an uninstall. */
const SHUTDOWN_VERDICT_TIMEOUT_MS = 3_000;

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const { logs, registry } =
    deps.platform ??
    createPlatform({
      component: 'cni-agent',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
      ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
      processMetrics: deps.processMetrics ?? false,
    });
  const logger = logs.root;
  const timers = deps.timers ?? systemTimers;
  const metrics = new AgentMetrics({ registry });
  mkdirSync(config.runDir, { recursive: true });
  clearShutdownVerdict(config.runDir);
  const locator = new FileNetnsLocator(`${config.runDir}/pod-netns.json`, logger);
  const kube =
    deps.kube ?? new KubeClient(loadKubeConfig(config.kubeconfig), config.nodeName, logger, timers);

  let hostProbe: HostProbeRules | null = null;
  if (deps.hostProbe !== undefined) {
    hostProbe = deps.hostProbe;
  } else if (config.hostProbeRules) {
    try {
      hostProbe = await nftHostProbe({
        kubelet:
          config.kubeletUid === null ? { kind: 'local-source' } : { kind: 'uid', uid: config.kubeletUid },
        ipv6: config.ipv6,
        probeSnatV4: config.probeSnatV4,
        probeSnatV6: config.probeSnatV6,
      });
    } catch (err) {
      metrics.failure('host_probe');
      logger.error(
        { err: errorMessage(err) },
        'installing the host probe SNAT failed; kubelet probes of enrolled pods may fail',
      );
    }
  }

  // The ZDS server reads the reconciler's registry, and the reconciler sends through the server.
  const late: { reconciler?: Reconciler } = {};
  const zds = new ZdsServer({
    workloads: {
      uids: () => late.reconciler?.workloads.uids() ?? [],
      lookup: uid => late.reconciler?.workloads.lookup(uid),
    },
    logger: logs.for('zds'),
    closeFd,
    timers,
  });
  const rec = new Reconciler({
    kube,
    rules: deps.rules ?? nftPodRules(),
    hostProbe,
    netns: deps.netns ?? addonNetnsOpener,
    locator,
    zds,
    logger: logs.for('reconcile'),
    metrics,
    systemNamespace: config.systemNamespace,
    settings: config,
    reconcileOnStartup: config.reconcileOnStartup,
    ...(config.netnsScanDirs.length > 0
      ? {
          scanner: netnsScanner({
            dirs: config.netnsScanDirs,
            logger: logs.for('netns-scan'),
          }),
        }
      : {}),
  });
  late.reconciler = rec;
  zds.on('snapshot', report => {
    rec.onSnapshot(report);
  });
  const countConnections = (): void => {
    metrics.ztunnelConnections.set(zds.connectionCount);
  };
  zds.on('connected', countConnections);
  zds.on('disconnected', countConnections);

  const stops: (() => Promise<void> | void)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'error during shutdown');
      }
    }
  };
  let isReady = false;
  let ops: OpsServer | undefined;
  try {
    const plugin = await startPluginEventServer({
      path: config.pluginEventSocket,
      handle: event => rec.cniAdd(event),
      logger: logs.for('plugin'),
      metrics,
    });
    stops.push(() => plugin.close());
    const opsRoutes = [
      livenessRoute('/healthz'),
      readinessRoute(() => isReady, { path: '/readyz' }),
      ...metricsRoutes(metrics.registry),
    ];
    const readiness = await startOpsServer({
      name: 'readiness',
      address: { host: '0.0.0.0', port: config.readinessPort },
      routes: opsRoutes,
      logger: logs.for('ops'),
    });
    ops = readiness;
    stops.push(() => readiness.close());
    if (config.monitoringPort !== config.readinessPort) {
      const monitoring = await startOpsServer({
        name: 'monitoring',
        address: { host: '0.0.0.0', port: config.monitoringPort },
        routes: opsRoutes,
        logger: logs.for('ops'),
      });
      stops.push(() => monitoring.close());
    }
    await kube.start({
      podChanged: pod => {
        rec.podChanged(pod);
      },
      podDeleted: pod => {
        rec.podDeleted(pod);
      },
      namespaceChanged: ns => {
        rec.namespaceChanged(ns);
      },
    });
    stops.push(() => kube.stop());
    await rec.start();
    stops.push(() => {
      rec.stop();
    });
    const listener = listenZds(config.ztunnelUdsAddress, zds, logs.for('zds'), {
      allowedUids: config.zdsAllowedUids,
    });
    stops.push(() => {
      zds.close();
      listener.close();
    });
    if (config.driftCheckIntervalMs > 0) {
      let running = false;
      const timer = timers.setInterval(() => {
        if (running) return;
        running = true;
        void rec.checkDrift().finally(() => {
          running = false;
        });
      }, config.driftCheckIntervalMs);
      timer.unref?.();
      stops.push(() => {
        timers.clearInterval(timer);
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  isReady = true;
  logger.info({ node: config.nodeName, enrolled: rec.enrolledCount }, 'cni-agent ready');
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      isReady = false;
      // The verdict goes on disk before anything is stopped: the entry point acts on an uninstall
      // as soon as it reads one, so the chained plugin is removed even when closing the servers
      // outlasts the pod's grace period and the kubelet kills the container.
      await Promise.all([
        shutdownVerdict().then(verdict => {
          if (verdict === undefined) return;
          try {
            writeShutdownVerdict(config.runDir, verdict);
          } catch (err) {
            logger.warn({ err: errorMessage(err) }, 'writing the shutdown verdict failed');
          }
        }),
        rec.idle(),
      ]);
      await stop();
    })());
  /** Asks the API whether this is a restart or an uninstall, bounded by a few seconds. */
  const shutdownVerdict = async (): Promise<ShutdownVerdict | undefined> => {
    const ask = kube.shutdownVerdict?.bind(kube);
    if (ask === undefined) return undefined;
    let timer: ReturnType<Timers['setTimeout']> | undefined;
    const timeout = new Promise<ShutdownVerdict>(resolve => {
      timer = timers.setTimeout(() => {
        resolve({
          uninstall: true,
          reason: `cannot tell a restart from an uninstall: no API answer within ${SHUTDOWN_VERDICT_TIMEOUT_MS} ms`,
        });
      }, SHUTDOWN_VERDICT_TIMEOUT_MS);
    });
    const verdict = await Promise.race([ask(config.systemNamespace, config.podName), timeout]);
    if (timer !== undefined) timers.clearTimeout(timer);
    logger.info(
      { uninstall: verdict.uninstall, reason: verdict.reason },
      verdict.uninstall
        ? 'stopping for an uninstall: the chained CNI plugin is removed'
        : 'stopping for a restart: the chained CNI plugin stays, new pods wait for the next agent',
    );
    return verdict;
  };
  return {
    logs,
    reconciler: rec,
    zds,
    metrics,
    opsPort: ops.port,
    ready: () => isReady,
    shutdown,
    stop: shutdown,
  };
}

/** The earlier name of `build`, kept for embedders. */
export const startAgent = build;
