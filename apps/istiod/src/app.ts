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
import type { Logger, OpsServer, Timers, Logs } from '@ambient-mesh/runtime';
import type { CaKeyAlgorithm } from '@ambient-mesh/spiffe-certs';
import type { TokenReviewer } from './auth/token-review.ts';
import { loadMeshCa, type MeshCa, type SecretStore } from './ca/ca-bootstrap.ts';
import { servingDnsNames } from './ca/ca-material.ts';
import { CaRuntime } from './ca/ca-runtime.ts';
import { CaService, type CertificateSigner } from './ca/ca-service.ts';
import { RootCertPublisher, type ConfigMapStore } from './ca/root-cert-publisher.ts';
import type { Config } from './config.ts';
import { controlzScopeRoutes } from './http/controlz.ts';
import { debugRoutes, versionRoute, type DebugSources } from './http/debug-routes.ts';
import {
  ISTIOD_SECRETS_KIND,
  KubeWatcher,
  MESH_CONFIG_KIND,
  istiodSecretsKind,
  type InformerFactory,
  type WatchedKind,
  type WatchedKindName,
} from './kube/informers.ts';
import { DiscoveryFilter } from './mesh/discovery-filter.ts';
import {
  MESH_CONFIG_KEY,
  meshConfigMapName,
  defaultMeshConfig,
  parseMeshConfig,
  type MeshConfig,
  type MeshConfigDefaults,
} from './mesh/mesh-config.ts';
import { MeshConfigWatch } from './mesh/mesh-config-watch.ts';
import type { AuthorizationPolicy, KubeObject } from './kube/objects.ts';
import { objectKey } from './kube/objects.ts';
import { PolicyStatusWriter, type StatusPatcher, type WaypointVerdict } from './kube/policy-status.ts';
import { sourceStatusHandlers, type SourceStatusPatcher } from './kube/source-status.ts';
import { createGatewaySide, type GatewayDeps } from './gateway/gateway-side.ts';
import type { WaypointBindings } from './gateway/waypoint-bindings.ts';
import { NodeUntainter, type NodeTaintPatcher } from './kube/node-untaint.ts';
import { LeaseName, staticElection, type Elect, type Election } from './kube/leader-election.ts';
import type { Leadership } from '@ambient-mesh/kube';
import { createMetrics, type IstiodMetrics } from './metrics.ts';
import { compileAuthorizationPolicyObject, type CompiledPolicy } from './wds/policies.ts';
import { ObjectKinds, WdsIndex, type ObjectKind } from './wds/wds-index.ts';
import { buildInfo } from './build-info.ts';
import { XdsServer } from './xds/delta-server.ts';
import { WaypointIndex, isWaypointKind } from './waypoint/waypoint-index.ts';
import { WaypointPushQueue } from './waypoint/serving.ts';
import { JwksResolver } from './waypoint/jwks-resolver.ts';
import { waypointPolicyCondition, withPolicyProblem } from './waypoint/policy-binding.ts';
import { bindingSourceFrom } from './waypoint/binding.ts';
import { customPolicyProblem, parseExtAuthzProviders } from './waypoint/translate-ext-authz.ts';
import { controlPlaneIdentifier } from './xds/debug-types.ts';
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
  /**
   * Removes the `cni.istio.io/not-ready` taint from nodes; used when
   * `PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS` is on (without it the controller only logs).
   */
  readonly nodeTaintPatcher?: NodeTaintPatcher;
  /**
   * Leader election per lock (`LeaseName`); status writers and controllers gate on it, while
   * every replica serves xDS and the CA. Default: always the leader (one replica, no Kubernetes).
   */
  readonly elect?: Elect;
  readonly timers?: Timers;
  /** Root key algorithm for a new self-signed CA; upstream uses RSA 2048 (tests pick ECDSA for speed). */
  readonly rootKeyAlgorithm?: CaKeyAlgorithm;
  /** Add the process and Node.js metrics (`process_*`, `nodejs_*`); the executable does. */
  readonly processMetrics?: boolean;
  /** The Gateway controller's Kubernetes capabilities; without them no Gateway is deployed. */
  readonly gateway?: GatewayDeps;
  /** Leader gating seam for istiod's writers (default: always the leader). */
  readonly isLeader?: () => boolean;
  /** `EXTERNAL_CA`: makes a signer other than the mesh CA (the Kubernetes CSR path) and gives its roots. */
  readonly externalSigner?: (logger: Logger) => {
    readonly signer: CertificateSigner;
    readonly rootsPem: string;
  };
}

export interface Bound {
  readonly logs: Logs;
  readonly index: WdsIndex;
  /** Every waypoint's Envoy resources (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment). */
  readonly waypoints: WaypointIndex;
  readonly xds: XdsServer;
  readonly metrics: IstiodMetrics;
  /** The mesh CA in use now (a valid new `cacerts` replaces it). */
  readonly meshCa: MeshCa;
  /** Which Services and pods each waypoint serves (for the waypoint's xDS). */
  readonly waypointBindings: WaypointBindings;
  readonly ports: {
    readonly grpc: number;
    readonly http: number;
    readonly monitoring: number;
    readonly debug: number;
  };
  ready(): boolean;
  /**
   * The leadership of one lock (`LeaseName.*`), campaigned for from its first use until shutdown,
   * when a leader releases it. What only one replica may do checks `isLeader()` and `onChange`.
   */
  leadership(lock: string): Leadership;
  /** Graceful: stop the informers and pushes, close streams and listeners. Idempotent. */
  shutdown(): Promise<void>;
  /** The same as `shutdown()` (the name embedders used first). */
  stop(): Promise<void>;
}

/** Earlier names of the composition root, kept for embedders (e2e). */
export type IstiodDeps = AppDeps;
export type RunningIstiod = Bound;

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
  const meshConfigMap = meshConfigMapName(config.revision);
  const mesh = await readMeshConfig(
    deps.configMaps,
    config.podNamespace,
    meshConfigMap,
    meshDefaults,
    logger,
  );
  const elections = new Map<string, Election>();
  const leadership = (lock: string): Leadership => {
    let election = elections.get(lock);
    if (election === undefined) {
      election = deps.elect?.(lock, logs.for('leader')) ?? staticElection;
      elections.set(lock, election);
      election.start();
    }
    return election;
  };
  const stopElections = (): Promise<unknown> => Promise.all([...elections.values()].map(e => e.stop()));
  // Status is written by the leader only; every replica keeps its latest verdicts, so a new
  // leader writes them at once.
  const statusLeader = leadership(LeaseName.status);
  const verdicts = new Map<string, { policy: AuthorizationPolicy; result: CompiledPolicy }>();
  // `WaypointAccepted` of policies with targetRefs: recomputed when a Service, ServiceEntry,
  // Gateway or binding changes (coalesced), written when it changed.
  const waypointVerdicts = new Map<string, string>();
  const splitKey = (key: string): { namespace: string; name: string } => {
    const i = key.indexOf('/');
    return { namespace: key.slice(0, i), name: key.slice(i + 1) };
  };
  // meshConfig as it is now (the watch is built further down; until then, the initial one).
  let meshNow = (): Readonly<Record<string, unknown>> => mesh.raw;
  const waypointVerdict = (policy: AuthorizationPolicy): WaypointVerdict | undefined =>
    withPolicyProblem(
      waypointPolicyCondition(policy, {
        rootNamespace: mesh.rootNamespace,
        gatewayClassOf: key => waypoints.gateway(splitKey(key))?.spec.gatewayClassName,
        service: key =>
          waypoints.service(splitKey(key)) === undefined
            ? undefined
            : { waypoint: gatewaySide.bindings.waypointOf('service', key) },
        serviceEntry: key => index.serviceEntryWaypoint(key),
      }),
      // A CUSTOM policy whose provider is unknown or invalid denies what it matches: said here.
      customPolicyProblem(policy, parseExtAuthzProviders(meshNow())),
    );
  let waypointStatusQueued = false;
  const refreshWaypointStatus = (): void => {
    if (waypointStatusQueued) return;
    waypointStatusQueued = true;
    queueMicrotask(() => {
      waypointStatusQueued = false;
      for (const [name, { policy, result }] of verdicts) {
        const waypoint = waypointVerdict(policy);
        const text = JSON.stringify(waypoint ?? null);
        if (waypointVerdicts.get(name) === text) continue;
        waypointVerdicts.set(name, text);
        if (statusLeader.isLeader()) statusWriter?.enqueue(policy, result, waypoint);
      }
    });
  };
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
    isLeader: () => statusLeader.isLeader(),
  });
  const gatewayLeader = leadership(LeaseName.gatewayDeployment(config.revision));
  const gatewaySide = createGatewaySide({
    deps: deps.gateway,
    image: config.waypointImage,
    ...(config.waypointCaAddress === '' ? {} : { caAddress: config.waypointCaAddress }),
    podNamespace: config.podNamespace,
    domain: config.domain,
    clusterId: config.clusterId,
    trustDomain: mesh.trustDomain,
    revision: config.revision,
    logs,
    timers,
    isLeader: deps.isLeader ?? (() => gatewayLeader.isLeader()),
  });
  // A replica that becomes the deployment controller's leader catches up on every Gateway.
  const offGatewayLeader = gatewayLeader.onChange(leader => {
    if (leader) gatewaySide.resync();
  });
  // The node untaint controller (opt-in, as upstream): the leader of its Lease removes the
  // not-ready taint from a node once the CNI agent pod there is Ready.
  const untainter = config.enableNodeUntaintControllers
    ? (() => {
        const untaintLeader = leadership(LeaseName.nodeUntaint);
        const untaintLog = logs.for('untaint');
        const patch: NodeTaintPatcher =
          deps.nodeTaintPatcher ??
          ((node: string) => {
            untaintLog.warn({ node }, 'no Kubernetes access to remove the not-ready taint');
            return Promise.resolve();
          });
        const u = new NodeUntainter({
          cniNamespace: config.cniNamespace,
          patch,
          isLeader: () => untaintLeader.isLeader(),
          logger: untaintLog,
          timers,
        });
        const off = untaintLeader.onChange(leader => {
          untaintLog.info(
            { lock: LeaseName.nodeUntaint, leader },
            leader ? 'untainting nodes as the leader' : 'no longer the node untaint leader',
          );
          if (leader) u.resync();
        });
        return {
          u,
          close: () => {
            off();
            u.close();
          },
        };
      })()
    : undefined;
  const index = new WdsIndex({
    ...sources.handlers,
    onWaypointBinding: (target, binding) => {
      gatewaySide.onWaypointBinding(target, binding);
    },
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
      verdicts.set(name, { policy, result });
      const waypoint = waypointVerdict(policy);
      waypointVerdicts.set(name, JSON.stringify(waypoint ?? null));
      if (statusLeader.isLeader()) statusWriter?.enqueue(policy, result, waypoint);
    },
    onPeerAuthenticationInvalid: (pa, errors) => {
      metrics.policyErrors.inc();
      logger.warn(
        { policy: objectKey(pa), errors: errors.map(e => `${e.path}: ${e.message}`) },
        'PeerAuthentication is invalid and was ignored',
      );
    },
  });

  const caOptions = {
    defaultTtlSeconds: config.defaultCertTtlSeconds,
    maxTtlSeconds: config.maxCertTtlSeconds,
  };
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
  const tlsSecret =
    config.istiodTlsSecret === ''
      ? undefined
      : await deps.secrets.read(config.podNamespace, config.istiodTlsSecret).catch((err: unknown) => {
          logger.warn({ err: errorMessage(err) }, 'cannot read the serving certificate Secret');
          return undefined;
        });
  const caRuntime = new CaRuntime({
    meshCa,
    namespace: config.podNamespace,
    caServer: config.enableCaServer,
    servingDnsNames: servingDnsNames(config.podNamespace, config.domain, config.customHosts, config.revision),
    tlsSecretName: config.istiodTlsSecret,
    ...(tlsSecret === undefined ? {} : { initialTlsSecret: tlsSecret }),
    ...(deps.externalSigner === undefined ? {} : { externalSigner: deps.externalSigner(logs.for('ra')) }),
    caOptions,
    timers,
    logger: logs.for('ca'),
    onCacertsOutcome: outcome => {
      metrics.cacertsUpdates.inc({ result: outcome.kind });
    },
  });

  const waypointLog = logs.for('waypoint');
  // istiod fetches each `jwksUri` and inlines it (upstream's default); a changed key set
  // recomputes the waypoints whose RequestAuthentications use it.
  let onJwksChange: (uri: string) => void = () => undefined;
  const jwks: JwksResolver | undefined =
    config.jwksFetchMode === 'istiod'
      ? new JwksResolver({
          timers,
          logger: logs.for('jwks'),
          refreshIntervalMs: config.jwksRefreshIntervalMs,
          onChange: uri => {
            onJwksChange(uri);
          },
          inUse: (): ReadonlySet<string> => waypoints.jwksUris(),
          onFetch: outcome => {
            (outcome === 'success' ? metrics.jwksFetchSuccess : metrics.jwksFetchFailure).inc();
          },
        })
      : undefined;
  // meshConfig as the watch last read it (the watch starts below); CUSTOM policies' providers.
  let currentMesh = (): Readonly<Record<string, unknown>> => mesh.raw;
  const waypoints: WaypointIndex = new WaypointIndex({
    extAuthzProviders: () => parseExtAuthzProviders(currentMesh()),
    onExtAuthzIssues: (waypoint, issues) => {
      waypointLog.warn(
        { waypoint, errors: issues },
        'CUSTOM authorization policies deny the requests they match',
      );
    },
    ...(jwks === undefined
      ? {}
      : { jwksFor: (uri: string, timeoutMs: number) => jwks.keysFor(uri, timeoutMs) }),
    // One binding computation: the WDS index's, recorded by the Gateway side.
    bindings: bindingSourceFrom(gatewaySide.bindings),
    onRouteStatus: (kind, key, parents) => {
      gatewaySide.onRouteStatus(kind, key, parents);
    },
    onRouteDeleted: (kind, key) => {
      gatewaySide.onRouteDeleted(kind, key);
    },
    domain: config.domain,
    clusterId: config.clusterId,
    trustDomain: mesh.trustDomain,
    rootNamespace: mesh.rootNamespace,
    meshConfig: mesh.raw,
    onTelemetryProblem: (waypoint, message) => {
      waypointLog.warn({ waypoint, err: message }, 'waypoint telemetry provider left out');
    },
    onTracingProblem: (waypoint, message) => {
      waypointLog.warn({ waypoint, err: message }, 'waypoint tracing is not configured');
    },
    onTlsIssues: (waypoint, issues) => {
      if (issues.length === 0) waypointLog.info({ waypoint }, 'DestinationRule TLS origination programmed');
      else
        waypointLog.warn(
          { waypoint, errors: issues },
          'DestinationRule TLS settings cannot be honoured: those clusters are not programmed',
        );
    },
    onIssues: (kind, key, errors) => {
      if (errors.length === 0)
        waypointLog.info({ kind, object: key }, 'object is valid again and programmed');
      else
        waypointLog.warn(
          { kind, object: key, errors: errors.map(e => `${e.path}: ${e.message}`) },
          'object is invalid and was not programmed into waypoints',
        );
    },
    onPatchSkipped: (waypoint, skipped) => {
      waypointLog.warn(
        { waypoint, envoyFilter: skipped.source, chain: skipped.chain, reason: skipped.reason },
        'EnvoyFilter patch not applied',
      );
    },
    onEncodeError: (waypoint, name, message) => {
      waypointLog.error(
        { waypoint, resource: name, err: message },
        'could not encode a waypoint resource; kept the previous one',
      );
    },
  });
  const xds = new XdsServer({
    source: index,
    waypoints,
    reviewer: deps.reviewer,
    audiences: config.tokenAudiences,
    requireAuth: config.xdsAuth,
    enableAmbient: config.enableAmbient,
    metrics,
    logger: logs.for('xds'),
    timers,
    debug: {
      systemNamespace: config.podNamespace,
      controlPlane: controlPlaneIdentifier(config.podName, buildInfo),
    },
  });
  const caService = new CaService({
    signer: caRuntime.signer,
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
  const offStatusLeader = statusLeader.onChange(leader => {
    logger.info(
      { lock: LeaseName.status, leader },
      leader ? 'writing status as the leader' : 'no longer the status leader',
    );
    if (!leader) {
      statusWriter?.clear();
      return;
    }
    for (const { policy, result } of verdicts.values())
      statusWriter?.enqueue(policy, result, waypointVerdict(policy));
    sources.replay();
  });
  const offChange = index.onChange(changes => {
    metrics.services.set(index.services().length);
    queue.enqueue(changes);
  });
  const waypointQueue = new WaypointPushQueue({
    debounceAfterMs: config.debounceAfterMs,
    debounceMaxMs: config.debounceMaxMs,
    timers,
    flush: batch => {
      xds.pushWaypoints(batch);
    },
  });
  const offWaypointChange = waypoints.onChange(change => {
    waypointQueue.enqueue(change);
  });
  const offWaypointBindings = gatewaySide.bindings.onChange(changed => {
    waypoints.bindingsChanged(changed);
    refreshWaypointStatus();
  });
  onJwksChange = uri => {
    waypoints.jwksChanged(uri);
  };

  const grpc: RunningGrpcServer = await startGrpcServer({
    address: config.secureGrpcAddr,
    credentials: await caRuntime.initialCredentials(),
    maxReceiveMessageBytes: config.grpcMaxRecvMsgSize,
    register: server => {
      xds.register(server);
      // ENABLE_CA_SERVER=false: workloads get certificates from an external CA (CA_ADDRESS).
      if (config.enableCaServer) caService.register(server);
    },
  });
  caRuntime.onCredentials(creds => {
    grpc.credentials.rotate(creds);
  });

  const publisher = new RootCertPublisher(deps.configMaps, caRuntime.rootsPem, logs.for('ca'));
  const published = new Set<string>();
  const wdsKinds: ReadonlySet<string> = new Set(Object.values(ObjectKinds));
  const policyTargetKinds: ReadonlySet<string> = new Set([
    ObjectKinds.SERVICE,
    ObjectKinds.SERVICE_ENTRY,
    ObjectKinds.GATEWAY,
  ]);
  caRuntime.onRoots(pem => {
    if (!publisher.setRoots(pem)) return;
    logger.info({ namespaces: published.size }, 'mesh roots changed; republishing istio-ca-root-cert');
    for (const ns of published) {
      void publisher.publish(ns).then(outcome => {
        if (outcome === 'failed') published.delete(ns);
      });
    }
  });
  const sink = {
    upsert(kind: ObjectKind, obj: KubeObject): void {
      if (isWaypointKind(kind)) waypoints.upsert(kind, obj);
      if (policyTargetKinds.has(kind)) refreshWaypointStatus();
      if (!wdsKinds.has(kind)) return;
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
      if (isWaypointKind(kind)) waypoints.delete(kind, obj);
      if (policyTargetKinds.has(kind)) refreshWaypointStatus();
      if (!wdsKinds.has(kind)) return;
      index.delete(kind, obj);
      if (kind === ObjectKinds.AUTHORIZATION_POLICY) {
        verdicts.delete(objectKey(obj));
        waypointVerdicts.delete(objectKey(obj));
      }
      if (kind === ObjectKinds.NAMESPACE) published.delete(obj.metadata?.name ?? '');
    },
  };
  const discovery = new DiscoveryFilter(sink, mesh.discoverySelectors);
  const meshWatch = new MeshConfigWatch({
    initial: mesh,
    defaults: meshDefaults,
    filter: discovery,
    logger: logs.for('mesh'),
    configMap: meshConfigMap,
    onChange: next => {
      waypoints.setMeshConfig(next.raw);
    },
  });
  currentMesh = () => meshWatch.current.raw;
  meshNow = currentMesh;
  // CUSTOM policies read the providers at each recompute: a provider change recomputes every waypoint.
  let providersSeen = JSON.stringify(mesh.raw['extensionProviders'] ?? null);
  const providersMaybeChanged = (): void => {
    const now = JSON.stringify(meshWatch.current.raw['extensionProviders'] ?? null);
    if (now === providersSeen) return;
    providersSeen = now;
    waypoints.recomputeAll();
    // CUSTOM policies' `WaypointAccepted` messages name unknown providers.
    refreshWaypointStatus();
  };
  const watcher = new KubeWatcher({
    kinds: [...deps.kinds, istiodSecretsKind(config.podNamespace)],
    sink: {
      upsert(kind: WatchedKindName, obj: KubeObject): void {
        if (kind === ISTIOD_SECRETS_KIND) void caRuntime.upsertSecret(obj);
        else if (kind === MESH_CONFIG_KIND) {
          meshWatch.upsert(obj);
          providersMaybeChanged();
        } else {
          // Ahead of the discovery filter: the CNI namespace may be outside discoverySelectors.
          if (kind === ObjectKinds.NODE) untainter?.u.upsertNode(obj);
          else if (kind === ObjectKinds.POD) untainter?.u.upsertPod(obj);
          discovery.upsert(kind, obj);
        }
      },
      delete(kind: WatchedKindName, obj: KubeObject): void {
        if (kind === ISTIOD_SECRETS_KIND) void caRuntime.deleteSecret(obj);
        else if (kind === MESH_CONFIG_KIND) {
          meshWatch.delete(obj);
          providersMaybeChanged();
        } else {
          if (kind === ObjectKinds.NODE) untainter?.u.deleteNode(obj);
          else if (kind === ObjectKinds.POD) untainter?.u.deletePod(obj);
          discovery.delete(kind, obj);
        }
      },
    },
    informerFactory: deps.informerFactory,
    logger: logs.for('kube'),
    timers,
  });
  const watching = watcher.start().catch((err: unknown) => {
    logger.error({ err: errorMessage(err) }, 'informers failed to start');
  });
  void gatewaySide.start();

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
        // Also ControlZ's logging scopes (`istioctl admin log`), as upstream serves them on 9876.
        routes: [...debugRoutes(debugSources), ...controlzScopeRoutes(logs)],
        logger: opsLog,
      }),
    );
  } catch (err) {
    await Promise.all(servers.map(s => s.close()));
    caRuntime.close();
    offChange();
    offWaypointChange();
    offWaypointBindings();
    jwks?.close();
    queue.close();
    waypointQueue.close();
    statusWriter?.close();
    await gatewaySide.stop();
    offStatusLeader();
    offGatewayLeader();
    untainter?.close();
    statusWriter?.close();
    await stopElections();
    sources.close();
    await watcher.stop();
    await watching;
    await grpc.close();
    throw err;
  }
  const [http, monitoring, debug] = servers as [OpsServer, OpsServer, OpsServer];
  logger.info(
    {
      grpc: grpc.port,
      http: http.port,
      monitoring: monitoring.port,
      caSource: meshCa.source,
      caServer: config.enableCaServer,
      servingCert: caRuntime.servingSource,
    },
    'istiod started',
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      caRuntime.close();
      offChange();
      offWaypointChange();
      offWaypointBindings();
      jwks?.close();
      queue.close();
      waypointQueue.close();
      offStatusLeader();
      offGatewayLeader();
      untainter?.close();
      statusWriter?.close();
      await gatewaySide.stop();
      await stopElections();
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
    waypoints,
    xds,
    metrics,
    waypointBindings: gatewaySide.bindings,
    get meshCa(): MeshCa {
      return caRuntime.holder.current;
    },
    ports: { grpc: grpc.port, http: http.port, monitoring: monitoring.port, debug: debug.port },
    ready,
    leadership,
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
  name: string,
  defaults: MeshConfigDefaults,
  logger: Logger,
): Promise<MeshConfig> {
  let text: string | undefined;
  try {
    text = (await store.read(namespace, name))?.[MESH_CONFIG_KEY];
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
