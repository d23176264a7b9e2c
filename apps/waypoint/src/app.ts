/**
 * The composition root of the waypoint: builds every component from a `Config` and injected
 * capabilities, binds HBONE (15008), stats (15020), readiness (15021) and admin
 * (localhost:15000), and returns a `Bound` with the addresses and a graceful `shutdown()`.
 * In router mode (an ingress gateway) there is no HBONE inbound: the LDS listeners with a
 * socket address are bound on the pod instead (`proxy/gateway.ts`).
 * Tests build the same app with fakes (an xDS stream factory, an identity, port 0 addresses).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { HboneIdentity, HboneServer } from '@ambient-mesh/hbone';
import {
  Readiness,
  bindServer,
  createPlatform,
  metricsRoutes,
  packageVersion,
  readinessRoute,
  startOpsServer,
} from '@ambient-mesh/runtime';
import type {
  BindErrorFactory,
  ListenAddress,
  Logger,
  Logs,
  OpsServer,
  Platform,
  Route,
} from '@ambient-mesh/runtime';
import { toStruct } from '@ambient-mesh/xds-types';
import { ControlPlaneChannel, XdsClient, controlPlaneDeltaStreams } from '@ambient-mesh/xds';
import type { CallIdentity, DeltaStreamFactory, ResponseRecord } from '@ambient-mesh/xds';
import { CertificateManager, SpiffeId, certificateDump } from '@ambient-mesh/spiffe-certs';
import type { CertificateDump, Clock, WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { errorMessage } from '@ambient-mesh/errors';
import { adminRoutes } from './admin.ts';
import { fetchCaCertificate, waypointSpiffeId } from './identity/ca-identity.ts';
import { ProxyMode, parsePodLabels, xdsNodeId, xdsNodeMetadata } from './config.ts';
import type { Config } from './config.ts';
import {
  BindError,
  CertificateRequestError,
  CertificatesUnreadableError,
  TokenUnreadableError,
} from './errors.ts';
import { WaypointMetrics } from './metrics.ts';

import { DnsClusters } from './proxy/dns-clusters.ts';
import type { LookupAll } from './proxy/dns-clusters.ts';
import { HttpProxy } from './proxy/http-proxy.ts';
import { GatewayListeners } from './proxy/gateway.ts';
import type { ListenerSocketFactory } from './proxy/gateway.ts';
import { startInbound } from './proxy/inbound.ts';
import { UpstreamPools, poolKey } from './proxy/upstream.ts';
import { endpointsWithTls } from './proxy/cluster-endpoints.ts';
import { WaypointTracer } from './proxy/tracing.ts';
import type { UpstreamOptions } from './proxy/upstream.ts';
import { createWaypointState } from './state/waypoint-state.ts';
import type { WaypointStateReader } from './state/waypoint-state.ts';
import { createPeerIndex } from './state/peer-index.ts';
import type { PeerIndexReader } from './state/peer-index.ts';
import { addressHandler, waypointHandlers } from './xds/handlers.ts';

/** This app's version (its package.json): `ISTIO_VERSION` in the xDS node, proxy-status's VERSION. */
const WAYPOINT_VERSION: string = packageVersion(new URL('../package.json', import.meta.url));

export interface AppDeps {
  readonly platform?: Platform;
  readonly logs?: Logs;
  /** Opens delta ADS streams; default: gRPC to `XDS_ADDRESS`. */
  readonly xdsConnect?: DeltaStreamFactory;
  /**
   * The waypoint's SPIFFE identity; default: the files in `WAYPOINT_CERT_DIR` when
   * `cert-chain.pem` is there, else a certificate from istiod's CA (`CA_ADDR`), renewed at
   * half of its lifetime.
   */
  readonly identity?: HboneIdentity;
  /** The clock of certificate renewal (tests); default the system clock. */
  readonly certificateClock?: Clock;
  /** Random source for weighted clusters, LB and retry jitter; default `Math.random`. */
  readonly random?: () => number;
  /** Resolves the hostnames of DNS clusters; default Node's `dns.lookup` (both families). */
  readonly dnsLookup?: LookupAll;
  readonly processMetrics?: boolean;
  /** Router mode: how a listener's port is bound; default `listen` in the pod's namespace. */
  readonly listenerSocket?: ListenerSocketFactory;
}

export interface Bound {
  /** HBONE inbound (15008); port 0 in router mode, which has none. */
  readonly hboneAddress: AddressInfo;
  /** Router mode: the bound address of each LDS listener (empty for a waypoint). */
  listenerAddresses(): ReadonlyMap<string, AddressInfo>;
  readonly adminAddress: AddressInfo;
  readonly statsAddress: AddressInfo;
  readonly readinessAddress: AddressInfo;
  readonly readiness: Readiness;
  readonly state: WaypointStateReader;
  /** The WDS workloads and services (waypoint mode; empty in router mode, which does not subscribe). */
  readonly peers: PeerIndexReader;
  readonly metrics: WaypointMetrics;
  readonly logs: Logs;
  /** The certificate in use (the `certificates` section of `/config_dump`). */
  certificates(): CertificateDump[];
  /** The last NACK per type URL (cleared by the next ACK of that type). */
  readonly nacks: ReadonlyMap<string, ResponseRecord>;
  readonly xds: XdsClient;
  shutdown(): Promise<void>;
  readonly terminated: Promise<void>;
}

export const ReadinessTask = { Xds: 'xds', Proxy: 'proxy' } as const;

function readIdentity(dir: string): HboneIdentity {
  try {
    const certChain = readFileSync(`${dir}/cert-chain.pem`, 'utf8');
    const privateKey = readFileSync(`${dir}/key.pem`, 'utf8');
    const roots = readFileSync(`${dir}/root-cert.pem`, 'utf8');
    const id = /URI:(spiffe:\/\/[^\s,]+)/.exec(new X509Certificate(certChain).subjectAltName ?? '')?.[1];
    if (id === undefined) throw new Error('the certificate has no spiffe:// URI SAN');
    return { id, certChain, privateKey, roots };
  } catch (err) {
    throw new CertificatesUnreadableError(dir, { cause: err });
  }
}

/** A taken port is reported as `WAYPOINT_BIND_FAILED`, naming the listener. */
const bindError: BindErrorFactory = (listener, address, cause) => new BindError(listener, address, { cause });

function serve(name: string, address: ListenAddress, routes: Route[], logger: Logger): Promise<OpsServer> {
  return startOpsServer({ name, address, routes, logger, bindError });
}

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const { logs, registry } =
    deps.platform ??
    createPlatform({
      component: 'waypoint',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
      processMetrics: deps.processMetrics ?? true,
    });
  const log = logs.for('waypoint');
  const metrics = new WaypointMetrics(registry);
  const readiness = new Readiness();
  readiness.register(ReadinessTask.Xds);
  readiness.register(ReadinessTask.Proxy);
  const { state, mutator } = createWaypointState();
  const peers = createPeerIndex();
  // Control plane: one channel per istiod address (the CA and xDS share it when they are the same).
  const grpcClients: ControlPlaneChannel[] = [];
  const callIdentity: CallIdentity = {
    tokenPath: config.tokenPath,
    clusterId: config.clusterId,
    headers: config.xdsHeaders,
    tokenError: (path, cause) => new TokenUnreadableError(path, { cause }),
  };
  const istiodChannel = (address: string): ControlPlaneChannel => {
    const root = address.startsWith('https:') ? readFileSync(config.xdsRootCaPath) : undefined;
    const channel = new ControlPlaneChannel({
      target: {
        address,
        rootCaPem: root,
        rootCaPath: config.xdsRootCaPath,
        altHostname: config.altXdsHostname,
      },
      logger: logs.for('xds'),
    });
    grpcClients.push(channel);
    return channel;
  };
  let caChannel: ControlPlaneChannel | undefined;
  // Identity: given (tests), mounted files, or istiod's CA. A CA certificate is renewed at half
  // of its lifetime (failures retried with backoff, the current one kept until it expires); each
  // new one is presented from then on: to new inbound handshakes and new upstream connections.
  // Open connections keep the certificate they were made with.
  let certificates: CertificateManager | undefined;
  let inbound: HboneServer | undefined;
  let identity: HboneIdentity;
  const certLog = logs.for('cert');
  const fromCa = async (): Promise<HboneIdentity> => {
    const channel = istiodChannel(config.caAddress);
    caChannel = channel;
    const id = waypointSpiffeId(config.trustDomain, config.podNamespace, config.serviceAccount);
    const manager = new CertificateManager({
      fetch: (want, signal) =>
        fetchCaCertificate(
          { client: channel.client, call: callIdentity, identity: want, ttlSeconds: config.secretTtlSeconds },
          signal,
        ),
      logger: certLog,
      ...(deps.certificateClock === undefined ? {} : { clock: deps.certificateClock }),
    });
    certificates = manager;
    // Subscribed before the first fetch, so no certificate is missed; the server is made later.
    let latest: HboneIdentity | undefined;
    manager.onCertificate(id, (certificate: WorkloadCertificate) => {
      const next: HboneIdentity = { id: certificate.identity.uri, ...certificate.tlsCredentials };
      latest = next;
      identity = next;
      if (inbound === undefined) return;
      try {
        inbound.updateIdentity(next);
      } catch (err) {
        // New handshakes keep the previous certificate; the next renewal tries again.
        certLog.warn({ identity: id.uri, error: errorMessage(err) }, 'cannot serve the renewed certificate');
      }
    });
    manager.want([id]);
    try {
      const first = await manager.get(id);
      return latest ?? { id: first.identity.uri, ...first.tlsCredentials };
    } catch (err) {
      manager.close();
      for (const c of grpcClients) c.close();
      // The CA's own answer (WAYPOINT_CERTIFICATE_REQUEST_FAILED), not the cache's wrapper.
      let cause: unknown = err;
      for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
        if (cause instanceof CertificateRequestError) throw cause;
        cause = cause.cause;
      }
      throw new CertificateRequestError(id.uri, errorMessage(err), { cause: err });
    }
  };
  identity =
    deps.identity ??
    (existsSync(`${config.certDir}/cert-chain.pem`) ? readIdentity(config.certDir) : await fromCa());
  const staticIdentity = identity;
  const certificateDumps = (): CertificateDump[] => {
    if (certificates !== undefined) return certificates.dump();
    try {
      const id = typeof staticIdentity.id === 'string' ? staticIdentity.id : staticIdentity.id.uri;
      return [certificateDump(id, staticIdentity.certChain, staticIdentity.roots)];
    } catch {
      return [];
    }
  };
  const trustDomain = SpiffeId.parse(
    typeof identity.id === 'string' ? identity.id : identity.id.uri,
  ).trustDomain;
  let xdsConnect = deps.xdsConnect;
  if (xdsConnect === undefined) {
    const channel =
      caChannel !== undefined && config.caAddress === config.xdsAddress
        ? caChannel
        : istiodChannel(config.xdsAddress);
    xdsConnect = controlPlaneDeltaStreams(channel, callIdentity);
  }
  const router = config.mode === ProxyMode.router;
  // Router mode's listener manager; made with the data plane below, before xDS starts.
  let gatewayListeners: GatewayListeners | undefined;
  const gateway = (): GatewayListeners => {
    if (gatewayListeners === undefined) throw new Error('BUG: listeners arrived before the data plane');
    return gatewayListeners;
  };
  const nacks = new Map<string, ResponseRecord>();
  const xdsLog = logs.for('xds');
  // The pod's labels (downward API), sent as node metadata LABELS as istio-agent does.
  const podLabels =
    config.podInfoDir === ''
      ? {}
      : parsePodLabels(await readFile(join(config.podInfoDir, 'labels'), 'utf8').catch(() => ''));
  const xds = new XdsClient({
    connect: xdsConnect,
    node: {
      id: xdsNodeId(config),
      metadata: toStruct(xdsNodeMetadata(config, WAYPOINT_VERSION, podLabels)),
    },
    handlers: [
      ...waypointHandlers(
        mutator,
        router ? (accepted, removed) => gateway().apply(accepted, removed) : undefined,
      ),
      // A waypoint learns who is behind each connection from WDS, as upstream waypoints do.
      ...(router ? [] : [addressHandler(peers.mutator)]),
    ],
    logger: xdsLog,
    observer: {
      message: typeUrl => {
        metrics.xdsMessage(typeUrl);
      },
      response: record => {
        if (record.nack === undefined) nacks.delete(record.typeUrl);
        else {
          nacks.set(record.typeUrl, record);
          xdsLog.warn({ typeUrl: record.typeUrl, message: record.nack }, 'configuration rejected (NACK)');
        }
      },
      terminated: reason => {
        metrics.xdsTerminated(reason);
      },
      synced: () => {
        readiness.set(ReadinessTask.Xds, true);
      },
    },
  });

  // Data plane.
  const hbone = createHboneClient();
  const upstreamOptions: UpstreamOptions = { hbone, identity: () => identity, trustDomain };
  const upstream = new UpstreamPools(upstreamOptions);
  // Pools of endpoints that left the configuration (or DNS answers) are closed once their
  // requests finish. Original-destination pools are kept until the next change.
  const retainPools = (): void => {
    const config = state.snapshot();
    const keys = new Set<string>();
    for (const c of config.clusters.values()) {
      const endpoints =
        c.discovery.kind === 'dns'
          ? (dns.endpoints(c.name) ?? [])
          : (c.staticEndpoints ?? config.endpoints.get(c.edsName)?.endpoints ?? []);
      for (const e of endpointsWithTls(c, endpoints)) keys.add(poolKey(e));
    }
    for (const e of dns.all()) keys.add(poolKey(e));
    upstream.retain(keys);
  };
  const dns = new DnsClusters({
    logger: logs.for('dns'),
    onChange: retainPools,
    ...(deps.dnsLookup !== undefined ? { lookup: deps.dnsLookup } : {}),
  });
  dns.sync(state.snapshot().clusters);
  state.onChange(config => {
    dns.sync(config.clusters);
    retainPools();
  });
  // Spans of chains whose HCM traces; their service name is `<waypoint>.<namespace>` by default.
  const waypointName = config.proxyMetadata.WORKLOAD_NAME ?? config.podName;
  const tracer = new WaypointTracer({
    logger: logs.for('tracing'),
    resource: { 'k8s.namespace.name': config.podNamespace, 'k8s.pod.name': config.podName },
  });
  const http = new HttpProxy({
    state,
    upstream,
    dns,
    metrics,
    tracer,
    tracingServiceName: `${waypointName}.${config.podNamespace}`,
    logger: logs.for('proxy'),
    accessLog: logs.for('access'),
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    maxHeaderBytes: config.maxHeaderBytes,
    ...(deps.random !== undefined ? { random: deps.random } : {}),
  });

  if (router) {
    const workload = config.proxyMetadata.WORKLOAD_NAME ?? config.podName;
    gatewayListeners = new GatewayListeners({
      http,
      ...(deps.listenerSocket === undefined ? {} : { listen: deps.listenerSocket }),
      snapshot: () => state.snapshot(),
      upstream: upstreamOptions,
      dns,
      logger: logs.for('gateway'),
      metrics,
      source: {
        workload,
        namespace: config.podNamespace,
        // istiod labels the gateway's pods service.istio.io/canonical-name=<Deployment>, revision latest.
        canonicalService: workload,
        canonicalRevision: 'latest',
        cluster: config.clusterId,
        principal: () => (typeof identity.id === 'string' ? identity.id : identity.id.uri),
      },
    });
  }

  let resolveTerminated: () => void = () => undefined;
  const terminated = new Promise<void>(resolve => {
    resolveTerminated = resolve;
  });
  const servers: OpsServer[] = [];
  const listener = createNetServer();
  let shuttingDown: Promise<void> | undefined;
  const closeAll = async (): Promise<void> => {
    xds.stop();
    certificates?.close();
    for (const c of grpcClients) c.close();
    // The HTTP side first: its tunnels end, so the HBONE sessions can close (GOAWAY). A session
    // that does not close within a second (a peer holding a TCP tunnel) is torn down.
    await http.close();
    // Queued spans go out (bounded by the exporter's timeout) before the process ends.
    await tracer.shutdown();
    if (inbound !== undefined) {
      const server = inbound;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        server.close().catch(() => undefined),
        new Promise<void>(resolve => {
          timer = setTimeout(resolve, 1_000);
        }),
      ]);
      clearTimeout(timer);
      server.destroy();
    }
    if (listener.listening)
      await new Promise<void>(resolve =>
        listener.close(() => {
          resolve();
        }),
      );
    gatewayListeners?.stopAccepting();
    gatewayListeners?.destroy();
    dns.close();
    await upstream.close();
    hbone.close();
    await Promise.all(servers.map(s => s.close()));
  };
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      const deadline = performance.now() + config.terminationGracePeriodMs;
      log.info(
        { gracePeriodMs: config.terminationGracePeriodMs, drainMs: config.drainDurationMs },
        'shutting down: draining',
      );
      // Not ready, and kept-alive tunnels are closed after their current request. New tunnels
      // are still accepted for the drain duration: ztunnels keep sending here until they learn
      // (WDS) that this pod is terminating. Then no new tunnels; requests in flight finish.
      readiness.register('shutdown');
      http.drain();
      if (config.drainDurationMs > 0)
        await new Promise(resolve => setTimeout(resolve, config.drainDurationMs));
      if (listener.listening) listener.close();
      gatewayListeners?.stopAccepting();
      const idle = await http.idle(Math.max(0, deadline - performance.now()));
      log.info({ idle, inFlight: http.inFlight }, 'drained');
      await closeAll();
      log.info('shutdown complete');
      resolveTerminated();
    })();
    return shuttingDown;
  };

  let hboneAddress: AddressInfo;
  try {
    const opsLog = logs.for('ops');
    servers.push(
      await serve(
        'readiness',
        config.readinessAddress,
        [readinessRoute(readiness, { path: '/healthz/ready', notReadyStatus: 503 })],
        opsLog,
      ),
    );
    servers.push(
      await serve(
        'stats',
        config.statsAddress,
        metricsRoutes(metrics.registry, ['/stats/prometheus', '/metrics']),
        opsLog,
      ),
    );
    servers.push(
      await serve(
        'admin',
        config.adminAddress,
        adminRoutes({
          state,
          nacks,
          certificates: certificateDumps,
          listenerAddresses: () => gatewayListeners?.addresses() ?? new Map(),
          logs,
          quit: () => void shutdown(),
        }),
        opsLog,
      ),
    );
    if (router) {
      hboneAddress = { address: config.hboneAddress.host, family: 'IPv4', port: 0 };
    } else {
      hboneAddress = await bindServer(listener, { name: 'HBONE', address: config.hboneAddress, bindError });
      inbound = startInbound({
        listener,
        identity,
        trustDomain,
        state,
        peers: peers.index,
        network: config.proxyMetadata.NETWORK ?? '',
        http,
        upstream: upstreamOptions,
        dns,
        logger: logs.for('hbone'),
        metrics,
      });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const [readinessServer, statsServer, adminServer] = servers as [OpsServer, OpsServer, OpsServer];
  xds.start();
  readiness.set(ReadinessTask.Proxy, true);
  log.info(
    {
      mode: config.mode,
      hbone: router ? undefined : `${hboneAddress.address}:${hboneAddress.port}`,
      stats: `${statsServer.address.address}:${statsServer.address.port}`,
      xds: config.xdsAddress,
      identity: typeof identity.id === 'string' ? identity.id : identity.id.uri,
    },
    router ? 'gateway started (router mode)' : 'waypoint started',
  );
  return {
    hboneAddress,
    listenerAddresses: () => gatewayListeners?.addresses() ?? new Map(),
    adminAddress: adminServer.address,
    statsAddress: statsServer.address,
    readinessAddress: readinessServer.address,
    readiness,
    state,
    peers: peers.index,
    metrics,
    logs,
    certificates: certificateDumps,
    nacks,
    xds,
    shutdown,
    terminated,
  };
}
