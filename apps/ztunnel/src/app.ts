/**
 * The composition root of ztunnel (upstream's `app.rs`): builds every component from a `Config`
 * and injected capabilities, binds the admin, stats and readiness ports, and returns a `Bound`
 * with the bound addresses and a graceful `shutdown()`. Tests build the same app with fakes.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import { trimNativeHeap } from '@ambient-mesh/netns';
import type { CertificateFetcher } from '@ambient-mesh/spiffe-certs';
import { toStruct } from '@ambient-mesh/xds-types';
import type { JsonObject } from '@ambient-mesh/xds-types';
import {
  ConfigError,
  Readiness,
  metricsRoutes,
  readinessRoute,
  startOpsServer,
  systemTimers,
  createPlatform,
  type Platform,
} from '@ambient-mesh/runtime';
import type {
  BindErrorFactory,
  ListenAddress,
  Logger,
  OpsServer,
  Route,
  TimerHandle,
  Timers,
  Logs,
} from '@ambient-mesh/runtime';
import { AccessLog } from './access-log.ts';
import { adminRoutes } from './admin-server.ts';
import { xdsNodeId, xdsNodeMetadata } from './config.ts';
import type { Config } from './config.ts';
import { BindError, ZtunnelErrorCode } from './errors.ts';
import { CaClient } from './identity/ca-client.ts';
import { CertManager } from './identity/cert-manager.ts';
import { ZTUNNEL_VERSION, ZtunnelMetrics } from './metrics.ts';
import { MemoryModeController, applyV8MemoryMode } from './memory-mode.ts';
import type { MemoryMode } from './memory-mode.ts';
import type { ProxyInputs } from './proxy/proxy-inputs.ts';
import { createProxyState } from './state/proxy-state.ts';
import type { ProxyStateReader } from './state/proxy-state.ts';
import {
  ControlPlaneChannel,
  DEFAULT_CHANNEL_SETTINGS,
  XdsClient as DeltaXdsClient,
  controlPlaneDeltaStreams,
} from '@ambient-mesh/xds';
import type { ChannelSettings, DeltaStreamFactory } from '@ambient-mesh/xds';
import { addressHandler, authorizationHandler } from './xds/handlers.ts';
import { tokenUnreadable } from './xds/token.ts';
import { WorkloadStateManager } from './zds/state-manager.ts';
import type { WorkloadProxyFactory } from './zds/state-manager.ts';
import { ZdsClient } from './zds/zds-client.ts';
import type { ZdsConnector } from './zds/zds-client.ts';

/** How long after the drain deadline the app stops waiting for the proxies to close. */
const SHUTDOWN_SAFETY_MARGIN_MS = 1_000;

/** Capabilities the app uses; each has a production default. */
export interface AppDeps {
  /** Logs and metrics registry from the runtime (`createPlatform`); by default made from config. */
  readonly platform?: Platform;
  readonly logs?: Logs;
  readonly timers?: Timers;
  /** Opens delta ADS streams; default: gRPC to `XDS_ADDRESS`. */
  readonly xdsConnect?: DeltaStreamFactory;
  /** Fetches workload certificates; default: CreateCertificate at `CA_ADDRESS`. */
  readonly caFetch?: CertificateFetcher;
  /** The ZDS transport; default: none (ZDS disabled, the workload manager task is not registered). */
  readonly zdsConnector?: ZdsConnector;
  /** Starts the proxy of one enrolled pod. */
  readonly proxyFactory?: (inputs: ProxyInputs) => WorkloadProxyFactory;
  /** How often pending proxies are retried; default 5 s. */
  readonly pendingRetryMs?: number;
  /** Register the process metrics (`process_open_fds`, ...) on `/metrics`; default true. */
  readonly processMetrics?: boolean;
  /**
   * Applies V8's memory mode as load comes and goes (`memory-mode.ts`); default: V8's
   * `--optimize-for-size` switched at run time. `false` leaves V8 as started.
   */
  readonly memoryMode?: false | ((mode: MemoryMode) => void);
}

export interface Bound {
  readonly adminAddress: AddressInfo;
  readonly statsAddress: AddressInfo;
  readonly readinessAddress: AddressInfo;
  readonly readiness: Readiness;
  readonly state: ProxyStateReader;
  readonly metrics: ZtunnelMetrics;
  readonly logs: Logs;
  /** Graceful: stop accepting, drain proxies within the grace period, then close. Idempotent. */
  shutdown(): Promise<void>;
  /** Settles when a shutdown (SIGTERM, `/quitquitquit`) has completed. */
  readonly terminated: Promise<void>;
}

export const ReadinessTask = {
  Xds: 'xds',
  WorkloadManager: 'workload-manager',
  Proxy: 'proxy',
  /** Every identity this node needs has a usable certificate (or is still being fetched). */
  Certificates: 'certificates',
} as const;

/** Fails every start: used until a real per-pod proxy factory is supplied. */
function unavailableProxyFactory(): WorkloadProxyFactory {
  return {
    start: () => Promise.reject(new Error('the per-pod proxy is not available in this build')),
  };
}

function readRoot(path: string, variable: string, address: string): Buffer | undefined {
  if (!address.startsWith('https:')) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      [{ setting: variable, message: `cannot read the root certificate at ${path} (${errorMessage(err)})` }],
      { component: 'ztunnel', code: ZtunnelErrorCode.ConfigInvalid },
    );
  }
}

/** A taken port is reported as `ZTUNNEL_BIND_FAILED`, naming the listener. */
const bindError: BindErrorFactory = (listener, address, cause) => new BindError(listener, address, { cause });

function serve(name: string, address: ListenAddress, routes: Route[], logger: Logger): Promise<OpsServer> {
  return startOpsServer({ name, address, routes, logger, bindError });
}

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const { logs, registry } =
    deps.platform ??
    createPlatform({
      component: 'ztunnel',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
      processMetrics: deps.processMetrics ?? true,
    });
  const log = logs.for('ztunnel');
  const timers = deps.timers ?? systemTimers;
  const metrics = new ZtunnelMetrics({ registry });
  const readiness = new Readiness();
  readiness.register(ReadinessTask.Xds);
  readiness.register(ReadinessTask.Proxy);
  const { state, mutator } = createProxyState();
  const grpcClients: ControlPlaneChannel[] = [];
  const channelSettings: ChannelSettings = {
    ...DEFAULT_CHANNEL_SETTINGS,
    connectTimeoutMs: config.controlPlaneConnectTimeoutMs,
    keepaliveTimeMs: config.controlPlaneKeepaliveIntervalMs,
    keepaliveTimeoutMs: config.controlPlaneKeepaliveTimeoutMs,
  };

  // Control plane: certificates.
  let caFetch = deps.caFetch;
  if (caFetch === undefined) {
    const channel = new ControlPlaneChannel({
      target: {
        address: config.caAddress,
        rootCaPem: readRoot(config.caRootCaPath, 'CA_ROOT_CA', config.caAddress),
        // Re-read after a failed connection: roots rotated in place need no ztunnel restart.
        rootCaPath: config.caRootCaPath,
        altHostname: config.altCaHostname,
      },
      settings: channelSettings,
      logger: logs.for('cert'),
    });
    grpcClients.push(channel);
    const ca = new CaClient({
      client: () => channel.client,
      identity: { tokenPath: config.tokenPath, clusterId: config.clusterId, headers: config.caHeaders },
      ttlSeconds: config.secretTtlSeconds,
      impersonate: true,
    });
    caFetch = (identity, signal) => ca.fetch(identity, signal);
  }
  // A CA that cannot be reached leaves the certificates held in use (retried with backoff); only
  // an identity with no usable certificate makes ztunnel unready.
  readiness.register(ReadinessTask.Certificates);
  readiness.set(ReadinessTask.Certificates, true);
  metrics.certificatesFailing(0, 0);
  const certificates = new CertManager({
    fetch: caFetch,
    state,
    nodeName: config.nodeName,
    logger: logs.for('cert'),
    observer: {
      fetched: result => {
        metrics.certificateFetched(result);
      },
      health: health => {
        metrics.certificatesFailing(health.failingWithCertificate, health.failingWithoutCertificate);
        readiness.set(ReadinessTask.Certificates, health.failingWithoutCertificate === 0);
      },
    },
  });

  // Control plane: WDS.
  let xdsConnect = deps.xdsConnect;
  if (xdsConnect === undefined) {
    const channel = new ControlPlaneChannel({
      target: {
        address: config.xdsAddress,
        rootCaPem: readRoot(config.xdsRootCaPath, 'XDS_ROOT_CA', config.xdsAddress),
        // Re-read after a failed connection: roots rotated in place need no ztunnel restart.
        rootCaPath: config.xdsRootCaPath,
        altHostname: config.altXdsHostname,
      },
      settings: channelSettings,
      logger: logs.for('xds'),
    });
    grpcClients.push(channel);
    xdsConnect = controlPlaneDeltaStreams(channel, {
      tokenError: tokenUnreadable,
      tokenPath: config.tokenPath,
      clusterId: config.clusterId,
      headers: config.xdsHeaders,
    });
  }
  const xds = new DeltaXdsClient({
    connect: xdsConnect,
    // ISTIO_VERSION: what istioctl proxy-status and Kiali show as the proxy's version.
    node: {
      id: xdsNodeId(config),
      metadata: toStruct({ ISTIO_VERSION: ZTUNNEL_VERSION, ...(xdsNodeMetadata(config) as JsonObject) }),
    },
    handlers: [addressHandler(mutator), authorizationHandler(mutator)],
    logger: logs.for('xds'),
    timers,
    observer: {
      message: (typeUrl, bytes) => {
        metrics.xdsMessage(typeUrl, bytes);
      },
      terminated: reason => {
        metrics.xdsTerminated(reason);
      },
      synced: () => {
        readiness.set(ReadinessTask.Xds, true);
      },
    },
  });

  // Data plane: enrolled pods.
  const accessLog = new AccessLog(logs.for('access'));
  const proxyFactory = (deps.proxyFactory ?? unavailableProxyFactory)({
    config,
    state,
    certificates,
    metrics,
    accessLog,
    logger: logs.for('proxy'),
    timers,
  });
  const manager = new WorkloadStateManager(proxyFactory, {
    proxyStarted: () => {
      metrics.proxyStarted();
    },
    proxyStopped: () => {
      metrics.proxyStopped();
    },
    readinessChanged: ready => {
      readiness.set(ReadinessTask.WorkloadManager, ready);
    },
  });
  metrics.observeWorkloadManager(manager);
  let zds: ZdsClient | undefined;
  if (deps.zdsConnector !== undefined) {
    readiness.register(ReadinessTask.WorkloadManager);
    zds = new ZdsClient({
      path: config.inpodUds,
      connector: deps.zdsConnector,
      manager,
      logger: logs.for('zds'),
      timers,
    });
  }

  // Ports.
  let resolveTerminated: () => void = () => undefined;
  const terminated = new Promise<void>(resolve => {
    resolveTerminated = resolve;
  });
  const memoryMode =
    deps.memoryMode === false
      ? undefined
      : new MemoryModeController({
          timers,
          apply: deps.memoryMode ?? applyV8MemoryMode,
          trim: () => {
            trimNativeHeap();
          },
          onSwitch: (mode, { utilization, relayedBytes }) => {
            log.debug(
              { mode, eventLoopUtilization: Number(utilization.toFixed(3)), relayedBytes },
              'V8 memory mode',
            );
          },
        });
  let shuttingDown: Promise<void> | undefined;
  const servers: OpsServer[] = [];
  let retryTimer: TimerHandle | undefined;

  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      log.info(
        {
          gracePeriodMs: config.terminationGracePeriodMs,
          drainDeadlineMs: config.connectionTerminationDeadlineMs,
        },
        'shutting down: draining proxies',
      );
      readiness.register('shutdown');
      timers.clearTimeout(retryTimer);
      memoryMode?.stop();
      zds?.stop();
      xds.stop();
      // Each proxy lets its connections run until the drain deadline, then closes what is left and
      // resolves; the app's own timer is only a safety net should closing itself hang.
      let graceTimer: TimerHandle | undefined;
      const graceExpired = new Promise<'timeout'>(resolve => {
        graceTimer = timers.setTimeout(() => {
          resolve('timeout');
        }, config.connectionTerminationDeadlineMs + SHUTDOWN_SAFETY_MARGIN_MS);
      });
      const outcome = await Promise.race([manager.drainAll().then(() => 'drained' as const), graceExpired]);
      timers.clearTimeout(graceTimer);
      if (outcome === 'timeout')
        log.warn('the proxies did not finish closing after the drain deadline; exiting anyway');
      certificates.close();
      for (const client of grpcClients) client.close();
      await Promise.all(servers.map(s => s.close()));
      log.info('shutdown complete');
      resolveTerminated();
    })();
    return shuttingDown;
  };

  try {
    const opsLog = logs.for('ops');
    servers.push(
      await serve(
        'readiness',
        config.readinessAddress,
        [readinessRoute(readiness, { path: '/healthz/ready', notReadyStatus: 500 })],
        opsLog,
      ),
    );
    servers.push(
      await serve(
        'stats',
        config.statsAddress,
        metricsRoutes(metrics.registry, ['/metrics', '/stats/prometheus']),
        opsLog,
      ),
    );
    servers.push(
      await serve(
        'admin',
        config.adminAddress,
        adminRoutes({
          config,
          state,
          logs,
          certificates: () => certificates.dump(),
          workloadState: () => manager.workloadState(),
          connections: uid => manager.connections(uid),
          quit: () => {
            void shutdown();
          },
        }),
        opsLog,
      ),
    );
  } catch (err) {
    await Promise.all(servers.map(s => s.close()));
    certificates.close();
    for (const client of grpcClients) client.close();
    throw err;
  }
  const [readinessServer, statsServer, adminServer] = servers as [OpsServer, OpsServer, OpsServer];

  xds.start();
  zds?.start();
  readiness.set(ReadinessTask.Proxy, true);
  memoryMode?.start();
  const retryEvery = deps.pendingRetryMs ?? 5_000;
  const scheduleRetry = (): void => {
    if (shuttingDown !== undefined) return;
    retryTimer = timers.setTimeout(() => {
      void manager.retryPending().finally(scheduleRetry);
    }, retryEvery);
    retryTimer.unref?.();
  };
  scheduleRetry();
  log.info(
    {
      admin: `${adminServer.address.address}:${adminServer.address.port}`,
      stats: `${statsServer.address.address}:${statsServer.address.port}`,
      readiness: `${readinessServer.address.address}:${readinessServer.address.port}`,
      xds: config.xdsAddress,
      zds: zds === undefined ? 'disabled' : config.inpodUds,
    },
    'ztunnel started',
  );

  return {
    adminAddress: adminServer.address,
    statsAddress: statsServer.address,
    readinessAddress: readinessServer.address,
    readiness,
    state,
    metrics,
    logs,
    shutdown,
    terminated,
  };
}
