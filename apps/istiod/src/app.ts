/**
 * The composition root of istiod, `build(config, deps) -> Bound`: wires config, the CA, the WDS
 * index, the xDS and CA gRPC services, the informers and the ops endpoints (runtime's ops server).
 * Kubernetes access comes in through narrow injected capabilities, so tests run the whole of
 * istiod in process with fakes.
 */
import { errorMessage } from '@ambient-mesh/errors';
import {
  metricsRoutes,
  readinessRoute,
  startOpsServer,
  systemTimers,
  createPlatform,
  type Platform,
} from '@ambient-mesh/runtime';
import type { Logger, OpsServer, TimerHandle, Timers, Logs } from '@ambient-mesh/runtime';
import type { CaKeyAlgorithm } from '@ambient-mesh/spiffe-certs';
import type { TokenReviewer } from './auth/token-review.ts';
import { loadMeshCa, type MeshCa, type SecretStore } from './ca/ca-bootstrap.ts';
import { servingDnsNames } from './ca/ca-material.ts';
import { CaService } from './ca/ca-service.ts';
import { RootCertPublisher, type ConfigMapStore } from './ca/root-cert-publisher.ts';
import type { Config } from './config.ts';
import { debugRoutes, versionRoute, type DebugSources } from './http/debug-routes.ts';
import {
  KubeWatcher,
  MESH_CONFIG_KIND,
  type InformerFactory,
  type WatchedKind,
  type WatchedKindName,
} from './kube/informers.ts';
import { DiscoveryFilter } from './mesh/discovery-filter.ts';
import {
  MESH_CONFIG_KEY,
  MESH_CONFIG_MAP,
  defaultMeshConfig,
  parseMeshConfig,
  type MeshConfig,
  type MeshConfigDefaults,
} from './mesh/mesh-config.ts';
import { MeshConfigWatch } from './mesh/mesh-config-watch.ts';
import type { KubeObject } from './kube/objects.ts';
import { objectKey } from './kube/objects.ts';
import { PolicyStatusWriter, type StatusPatcher } from './kube/policy-status.ts';
import { sourceStatusHandlers, type SourceStatusPatcher } from './kube/source-status.ts';
import { createMetrics, type IstiodMetrics } from './metrics.ts';
import { compileAuthorizationPolicyObject } from './wds/policies.ts';
import { ObjectKinds, WdsIndex, type ObjectKind } from './wds/wds-index.ts';
import { XdsServer } from './xds/delta-server.ts';
import { startGrpcServer, type RunningGrpcServer } from './xds/grpc-server.ts';
import { PushQueue } from './xds/push-queue.ts';

/** Capabilities istiod uses; Kubernetes access has no default (see `kube/kube-dependencies.ts`). */
export interface AppDeps {
  /** The process's loggers; default: made from `LOG_FORMAT` / `LOG_LEVEL`. */
  /** Logs and metrics registry from the runtime (`createPlatform`); by default made from config. */
  readonly platform?: Platform;
  readonly logs?: Logs;
  /** An existing pino logger to log through instead (adopted as `logs`). */
  readonly logger?: Logger;
  readonly reviewer: TokenReviewer;
  readonly secrets: SecretStore;
  readonly configMaps: ConfigMapStore;
  readonly informerFactory: InformerFactory;
  readonly kinds: readonly WatchedKind[];
  /** Writes AuthorizationPolicy status; without it verdicts are only logged. */
  readonly statusPatcher?: StatusPatcher;
  /** Writes ServiceEntry/WorkloadEntry status (issues, allocated VIPs); without it they are only logged. */
  readonly sourceStatusPatcher?: SourceStatusPatcher;
  readonly timers?: Timers;
  /** Root key algorithm for a new self-signed CA; upstream uses RSA 2048 (tests pick ECDSA for speed). */
  readonly rootKeyAlgorithm?: CaKeyAlgorithm;
  /** Add the process and Node.js metrics (`process_*`, `nodejs_*`); the executable does. */
  readonly processMetrics?: boolean;
}

export interface Bound {
  readonly logs: Logs;
  readonly index: WdsIndex;
  readonly xds: XdsServer;
  readonly metrics: IstiodMetrics;
  readonly meshCa: MeshCa;
  readonly ports: {
    readonly grpc: number;
    readonly http: number;
    readonly monitoring: number;
    readonly debug: number;
  };
  ready(): boolean;
  /** Graceful: stop the informers and pushes, close streams and listeners. Idempotent. */
  shutdown(): Promise<void>;
  /** The same as `shutdown()` (the name embedders used first). */
  stop(): Promise<void>;
}

/** Earlier names of the composition root, kept for embedders (e2e). */
export type IstiodDeps = AppDeps;
export type RunningIstiod = Bound;

const SERVING_CERT_TTL_SECONDS = 24 * 60 * 60;

export async function build(config: Config, deps: AppDeps): Promise<Bound> {
  const { logs, registry } =
    deps.platform ??
    createPlatform({
      component: 'istiod',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
      ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
      processMetrics: deps.processMetrics ?? false,
    });
  const logger = logs.root;
  const timers: Timers = deps.timers ?? systemTimers;
  const metrics = createMetrics({ registry });
  // The `istio` ConfigMap is the one source of meshConfig; TRUST_DOMAIN only fills a missing field.
  const meshDefaults = { rootNamespace: config.podNamespace, trustDomain: config.trustDomain };
  const mesh = await readMeshConfig(deps.configMaps, config.podNamespace, meshDefaults, logger);
  const statusWriter =
    deps.statusPatcher === undefined
      ? undefined
      : new PolicyStatusWriter({
          patch: deps.statusPatcher,
          logger,
          timers,
          onGiveUp: () => {
            metrics.policyStatusWriteFailures.inc();
          },
        });
  const sources = sourceStatusHandlers({
    patch: deps.sourceStatusPatcher,
    logger: logs.for('sources'),
    timers,
  });
  const index = new WdsIndex({
    ...sources.handlers,
    clusterId: config.clusterId,
    trustDomain: mesh.trustDomain,
    domain: config.domain,
    rootNamespace: mesh.rootNamespace,
    compilePolicy: compileAuthorizationPolicyObject,
    onPolicyCompiled: (policy, result) => {
      const name = objectKey(policy);
      if (result.errors.length > 0) {
        metrics.policyErrors.inc();
        logger.warn(
          { policy: name, errors: result.errors.map(e => `${e.path}: ${e.message}`) },
          'AuthorizationPolicy is invalid and was not applied',
        );
      }
      for (const c of result.conditions) {
        if (c.status === 'False' || c.reason !== 'Accepted') {
          logger.info({ policy: name, reason: c.reason }, c.message);
        }
      }
      statusWriter?.enqueue(policy, result);
    },
    onPeerAuthenticationInvalid: (pa, errors) => {
      metrics.policyErrors.inc();
      logger.warn(
        { policy: objectKey(pa), errors: errors.map(e => `${e.path}: ${e.message}`) },
        'PeerAuthentication is invalid and was ignored',
      );
    },
  });

  const meshCa = await loadMeshCa({
    namespace: config.podNamespace,
    rootCaDir: config.rootCaDir,
    trustDomain: mesh.trustDomain,
    selfSignedTtlSeconds: config.selfSignedCaTtlSeconds,
    defaultTtlSeconds: config.defaultCertTtlSeconds,
    maxTtlSeconds: config.maxCertTtlSeconds,
    secrets: deps.secrets,
    logger,
    ...(deps.rootKeyAlgorithm !== undefined ? { keyAlgorithm: deps.rootKeyAlgorithm } : {}),
  });
  const dnsNames = servingDnsNames(config.podNamespace, config.domain, config.customHosts);
  const issueServing = async (): Promise<{ certPem: string; keyPem: string }> => {
    const serving = await meshCa.ca.signServingCertificate({
      dnsNames,
      ttlSeconds: SERVING_CERT_TTL_SECONDS,
    });
    return { certPem: serving.certChainPem, keyPem: serving.keyPem };
  };

  const xds = new XdsServer({
    source: index,
    reviewer: deps.reviewer,
    audiences: config.tokenAudiences,
    requireAuth: config.xdsAuth,
    enableAmbient: config.enableAmbient,
    metrics,
    logger: logs.for('xds'),
    timers,
  });
  const caService = new CaService({
    signer: meshCa.ca,
    reviewer: deps.reviewer,
    audiences: config.tokenAudiences,
    trustedNodeAccounts: config.trustedNodeAccounts,
    pods: index,
    trustDomain: mesh.trustDomain,
    maxTtlSeconds: config.maxCertTtlSeconds,
    metrics,
    logger: logs.for('ca'),
  });
  const queue = new PushQueue({
    debounceAfterMs: config.debounceAfterMs,
    debounceMaxMs: config.debounceMaxMs,
    timers,
    flush: batch => {
      xds.push(batch);
    },
  });
  const offChange = index.onChange(changes => {
    metrics.services.set(index.services().length);
    queue.enqueue(changes);
  });

  const grpc: RunningGrpcServer = await startGrpcServer({
    address: config.secureGrpcAddr,
    credentials: await issueServing(),
    register: server => {
      xds.register(server);
      caService.register(server);
    },
  });
  // Renew the serving certificate at half its lifetime.
  let rotation: TimerHandle | undefined;
  const scheduleRotation = (): void => {
    rotation = timers.setTimeout(
      () => {
        issueServing().then(
          creds => {
            grpc.credentials.rotate(creds);
            logger.info('rotated the istiod serving certificate');
            scheduleRotation();
          },
          (err: unknown) => {
            logger.error({ err: errorMessage(err) }, 'serving certificate rotation failed; retrying');
            scheduleRotation();
          },
        );
      },
      (SERVING_CERT_TTL_SECONDS * 1000) / 2,
    );
  };
  scheduleRotation();

  const publisher = new RootCertPublisher(deps.configMaps, meshCa.rootCertPem, logs.for('ca'));
  const published = new Set<string>();
  const sink = {
    upsert(kind: ObjectKind, obj: KubeObject): void {
      index.upsert(kind, obj);
      const ns = obj.metadata?.name ?? '';
      if (kind === ObjectKinds.NAMESPACE && ns !== '' && !published.has(ns)) {
        published.add(ns);
        void publisher.publish(ns).then(outcome => {
          if (outcome === 'failed') published.delete(ns);
        });
      }
    },
    delete(kind: ObjectKind, obj: KubeObject): void {
      index.delete(kind, obj);
      if (kind === ObjectKinds.NAMESPACE) published.delete(obj.metadata?.name ?? '');
    },
  };
  const discovery = new DiscoveryFilter(sink, mesh.discoverySelectors);
  const meshWatch = new MeshConfigWatch({
    initial: mesh,
    defaults: meshDefaults,
    filter: discovery,
    logger: logs.for('mesh'),
  });
  const watcher = new KubeWatcher({
    kinds: deps.kinds,
    sink: {
      upsert(kind: WatchedKindName, obj: KubeObject): void {
        if (kind === MESH_CONFIG_KIND) meshWatch.upsert(obj);
        else discovery.upsert(kind, obj);
      },
      delete(kind: WatchedKindName, obj: KubeObject): void {
        if (kind === MESH_CONFIG_KIND) meshWatch.delete(obj);
        else discovery.delete(kind, obj);
      },
    },
    informerFactory: deps.informerFactory,
    logger: logs.for('kube'),
    timers,
  });
  const watching = watcher.start().catch((err: unknown) => {
    logger.error({ err: errorMessage(err) }, 'informers failed to start');
  });

  const ready = (): boolean => watcher.synced;
  // Upstream serves /debug/* on the monitoring port (15014); ours are also on the loopback debug port.
  const debugSources: DebugSources = {
    syncz: () => xds.syncz(),
    resources: index,
    services: () => index.services(),
    configs: () => index.configs(),
    meshConfig: () => meshWatch.current.raw,
    registry: { clusterId: config.clusterId, domainSuffix: 'cluster.local' },
  };
  const opsLog = logs.for('ops');
  const servers: OpsServer[] = [];
  try {
    servers.push(
      await startOpsServer({
        name: 'http',
        address: config.httpAddr,
        routes: [
          readinessRoute(ready, {
            path: '/ready',
            notReadyBody: 'not ready: waiting for the Kubernetes informers to sync\n',
          }),
        ],
        logger: opsLog,
      }),
    );
    servers.push(
      await startOpsServer({
        name: 'monitoring',
        address: config.monitoringAddr,
        routes: [
          ...metricsRoutes(metrics.registry, ['/metrics', '/stats/prometheus']),
          versionRoute(),
          ...debugRoutes(debugSources),
        ],
        logger: opsLog,
      }),
    );
    servers.push(
      await startOpsServer({
        name: 'debug',
        address: config.debugAddr,
        routes: debugRoutes(debugSources),
        logger: opsLog,
      }),
    );
  } catch (err) {
    await Promise.all(servers.map(s => s.close()));
    timers.clearTimeout(rotation);
    offChange();
    queue.close();
    statusWriter?.close();
    sources.close();
    await watcher.stop();
    await watching;
    await grpc.close();
    throw err;
  }
  const [http, monitoring, debug] = servers as [OpsServer, OpsServer, OpsServer];
  logger.info(
    { grpc: grpc.port, http: http.port, monitoring: monitoring.port, caSource: meshCa.source },
    'istiod started',
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      timers.clearTimeout(rotation);
      offChange();
      queue.close();
      statusWriter?.close();
      sources.close();
      await watcher.stop();
      await watching;
      xds.closeAll();
      await grpc.close();
      await Promise.all(servers.map(s => s.close()));
    })());

  return {
    logs,
    index,
    xds,
    metrics,
    meshCa,
    ports: { grpc: grpc.port, http: http.port, monitoring: monitoring.port, debug: debug.port },
    ready,
    shutdown,
    stop: shutdown,
  };
}

/** The earlier name of `build`, kept for embedders (e2e). */
export const startIstiod = build;

/** The mesh config at startup; an unreadable or invalid ConfigMap is logged and the defaults used. */
async function readMeshConfig(
  store: ConfigMapStore,
  namespace: string,
  defaults: MeshConfigDefaults,
  logger: Logger,
): Promise<MeshConfig> {
  let text: string | undefined;
  try {
    text = (await store.read(namespace, MESH_CONFIG_MAP))?.[MESH_CONFIG_KEY];
  } catch (err) {
    logger.warn(
      { err: errorMessage(err) },
      'could not read the mesh config ConfigMap; using defaults until it is seen',
    );
  }
  const parsed = parseMeshConfig(text, defaults);
  if (parsed.ok) return parsed.value;
  logger.error({ err: parsed.error.message, code: parsed.error.code }, 'invalid mesh config; using defaults');
  return defaultMeshConfig(defaults);
}
