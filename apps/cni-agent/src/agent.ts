/**
 * The composition root of the node agent: wires config, Kubernetes, rules, ZDS, the plugin
 * channel and the ops endpoints, in the order that keeps snapshots complete:
 *   plugin socket → informers synced → start-up reconcile → ZDS listener → drift timer → ready.
 */
import { mkdirSync } from 'node:fs';
import { errorMessage } from '@ambient-mesh/errors';
import { closeFd } from '@ambient-mesh/netns';
import type { Config } from './config.ts';
import { KubeClient, loadKubeConfig } from './kube-client.ts';
import type { KubeEventHandlers } from './kube-client.ts';
import { createLogger } from './logger.ts';
import type { Logger } from './logger.ts';
import { AgentMetrics } from './metrics.ts';
import { FileNetnsLocator } from './netns-cache.ts';
import { netnsScanner } from './netns-scanner.ts';
import { startOpsServer } from './ops-server.ts';
import type { OpsServer } from './ops-server.ts';
import { startPluginEventServer } from './plugin-event-server.ts';
import { addonNetnsOpener, nftHostProbe, nftPodRules } from './pod-rules.ts';
import { Reconciler } from './reconciler.ts';
import type { HostProbeRules, KubeApi, NetnsOpener, PodRules } from './reconciler.ts';
import { systemTimers } from './timers.ts';
import type { Timers } from './timers.ts';
import { listenZds } from './zds/zds-listener.ts';
import { ZdsServer } from './zds/zds-server.ts';

/** Capabilities an embedding (or a test) may replace. */
export interface AgentOverrides {
  readonly logger?: Logger;
  readonly kube?: KubeApi & {
    start(handlers: KubeEventHandlers): Promise<void>;
    stop(): Promise<void>;
  };
  readonly rules?: PodRules;
  /** `null` turns the host probe SNAT off. */
  readonly hostProbe?: HostProbeRules | null;
  readonly netns?: NetnsOpener;
  readonly timers?: Timers;
}

export interface Agent {
  readonly reconciler: Reconciler;
  readonly zds: ZdsServer;
  readonly metrics: AgentMetrics;
  readonly opsPort: number;
  ready(): boolean;
  stop(): Promise<void>;
}

export async function startAgent(config: Config, overrides: AgentOverrides = {}): Promise<Agent> {
  const logger = overrides.logger ?? createLogger({ format: config.logFormat, level: config.logLevel });
  const timers = overrides.timers ?? systemTimers;
  const metrics = new AgentMetrics({ defaultMetrics: overrides.kube === undefined });
  mkdirSync(config.runDir, { recursive: true });
  const locator = new FileNetnsLocator(`${config.runDir}/pod-netns.json`, logger);
  const kube =
    overrides.kube ?? new KubeClient(loadKubeConfig(config.kubeconfig), config.nodeName, logger, timers);

  let hostProbe: HostProbeRules | null = null;
  if (overrides.hostProbe !== undefined) {
    hostProbe = overrides.hostProbe;
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
    logger: logger.child({ scope: 'zds' }),
    closeFd,
    timers,
  });
  const rec = new Reconciler({
    kube,
    rules: overrides.rules ?? nftPodRules(),
    hostProbe,
    netns: overrides.netns ?? addonNetnsOpener,
    locator,
    zds,
    logger: logger.child({ scope: 'reconcile' }),
    metrics,
    systemNamespace: config.systemNamespace,
    settings: config,
    reconcileOnStartup: config.reconcileOnStartup,
    ...(config.netnsScanDirs.length > 0
      ? {
          scanner: netnsScanner({
            dirs: config.netnsScanDirs,
            logger: logger.child({ scope: 'netns-scan' }),
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
      logger: logger.child({ scope: 'plugin' }),
      metrics,
    });
    stops.push(() => plugin.close());
    const readiness = await startOpsServer({
      port: config.readinessPort,
      ready: () => isReady,
      registry: metrics.registry,
    });
    ops = readiness;
    stops.push(() => readiness.close());
    if (config.monitoringPort !== config.readinessPort) {
      const monitoring = await startOpsServer({
        port: config.monitoringPort,
        ready: () => isReady,
        registry: metrics.registry,
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
    const listener = listenZds(config.ztunnelUdsAddress, zds, logger.child({ scope: 'zds' }));
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
  return {
    reconciler: rec,
    zds,
    metrics,
    opsPort: ops.port,
    ready: () => isReady,
    stop: async () => {
      isReady = false;
      await rec.idle();
      await stop();
    },
  };
}
