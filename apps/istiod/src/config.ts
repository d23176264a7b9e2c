/**
 * The only module that reads environment variables and command-line flags.
 *
 * Names follow upstream istiod (pilot-discovery) so that existing manifests keep working.
 * `loadConfig` parses once (through `ConfigReader` of `@ambient-mesh/runtime`) into a frozen,
 * typed `Config` and throws one `ConfigError` (`ISTIOD_CONFIG_INVALID`) naming every offending
 * variable and flag; every other module receives the `Config` (or a slice of it) as an argument.
 */
import { buildInfo } from './build-info.ts';
import {
  ConfigError,
  ConfigReader,
  LogFormat,
  isLoopbackAddress,
  parseFlags as parseFlagsOf,
  parseGoDurationMs,
  splitList,
} from '@ambient-mesh/runtime';
import type { ListenAddress, LogLevel } from '@ambient-mesh/runtime';
import { Port } from '@ambient-mesh/mesh-api';

export { LogFormat, parseGoDurationMs };
export type { ListenAddress };

const CONFIG_INVALID = 'ISTIOD_CONFIG_INVALID';

/** Environment variable names, as upstream istiod spells them. */
export const ENV = {
  podNamespace: 'POD_NAMESPACE',
  podName: 'POD_NAME',
  clusterId: 'CLUSTER_ID',
  trustedNodeAccounts: 'CA_TRUSTED_NODE_ACCOUNTS',
  enableAmbient: 'PILOT_ENABLE_AMBIENT',
  customHost: 'ISTIOD_CUSTOM_HOST',
  /** The control plane revision this istiod serves (upstream's `REVISION`; `default` when unset). */
  revision: 'REVISION',
  rootCaDir: 'ROOT_CA_DIR',
  logFormat: 'LOG_FORMAT',
  logLevel: 'LOG_LEVEL',
  trustDomain: 'TRUST_DOMAIN',
  tokenAudiences: 'TOKEN_AUDIENCES',
  defaultCertTtl: 'DEFAULT_WORKLOAD_CERT_TTL',
  maxCertTtl: 'MAX_WORKLOAD_CERT_TTL',
  debounceAfter: 'PILOT_DEBOUNCE_AFTER',
  debounceMax: 'PILOT_DEBOUNCE_MAX',
  xdsAuth: 'XDS_AUTH',
  selfSignedCaTtl: 'CITADEL_SELF_SIGNED_CA_CERT_TTL',
  kubeconfig: 'KUBECONFIG',
  waypointImage: 'WAYPOINT_IMAGE',
  waypointCaAddress: 'WAYPOINT_CA_ADDR',
  enableCaServer: 'ENABLE_CA_SERVER',
  externalCa: 'EXTERNAL_CA',
  k8sSigner: 'K8S_SIGNER',
  istiodTlsSecret: 'ISTIOD_TLS_SECRET',
  /** Who fetches a RequestAuthentication's `jwksUri`: `false`/`istiod` (default), `true`/`envoy`, `hybrid`. */
  jwtRemoteJwks: 'PILOT_JWT_ENABLE_REMOTE_JWKS',
  /** How often istiod refetches the JWKS of each `jwksUri` (default 20m). */
  jwtPubKeyRefreshInterval: 'PILOT_JWT_PUB_KEY_REFRESH_INTERVAL',
  /** Run the node untaint controller (`cni.istio.io/not-ready`), upstream's opt-in switch. */
  enableNodeUntaintControllers: 'PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS',
  /**
   * Largest gRPC message istiod accepts on 15012 (upstream's spelling, typo included; default
   * 4 MiB). A bigger one fails its stream with RESOURCE_EXHAUSTED.
   */
  grpcMaxRecvMsgSize: 'ISTIO_GPRC_MAXRECVMSGSIZE',
  /** Ours: how long a silent leader keeps its Lease (upstream's fixed TTL is 30 s). */
  leaderElectionLeaseDuration: 'LEADER_ELECTION_LEASE_DURATION',
} as const;

/** `EXTERNAL_CA` values: only upstream's Kubernetes CSR registration authority. */
export const EXTERNAL_CA_KUBERNETES = 'ISTIOD_RA_KUBERNETES_API';

/** Command-line flag names (without the leading `--`). */
export const FLAGS = {
  domain: 'domain',
  httpAddr: 'httpAddr',
  secureGrpcAddr: 'secureGRPCAddr',
  monitoringAddr: 'monitoringAddr',
  debugAddr: 'debugAddr',
  kubeconfig: 'kubeconfig',
  /** Upstream's `--cniNamespace`: where the CNI agent pods run (default: istiod's namespace). */
  cniNamespace: 'cniNamespace',
} as const;

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface Config {
  /** Namespace istiod runs in; also the mesh root namespace. */
  readonly podNamespace: string;
  readonly podName: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  /** Cluster DNS domain (`--domain`), e.g. `cluster.local`. */
  readonly domain: string;
  readonly enableAmbient: boolean;
  /** The revision (`REVISION`, `default` when unset): its Gateways, tags and `istiod-<rev>` names. */
  readonly revision: string;
  /** Node proxies allowed to request certificates for other identities (`ns/sa`). */
  readonly trustedNodeAccounts: readonly ServiceAccountRef[];
  /** Extra DNS names for the serving certificate, besides `istiod.<ns>.svc`. */
  readonly customHosts: readonly string[];
  readonly rootCaDir: string;
  readonly tokenAudiences: readonly string[];
  readonly defaultCertTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  readonly selfSignedCaTtlSeconds: number;
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  /** Lease duration of istiod's leader elections (renew deadline half, retry period a quarter). */
  readonly leaderElectionLeaseDurationMs: number;
  /** Require a bearer token on every xDS stream (upstream `XDS_AUTH`). */
  readonly xdsAuth: boolean;
  /**
   * Remove the `cni.istio.io/not-ready` taint from a node once its CNI agent pod is Ready
   * (upstream `PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS`, default off; the leader does it).
   */
  readonly enableNodeUntaintControllers: boolean;
  /**
   * Namespace of the CNI agent pods (`k8s-app=istio-cni-node`) the untaint controller waits for
   * (upstream's `--cniNamespace`; istiod's own namespace when unset or empty).
   */
  readonly cniNamespace: string;
  /** Largest gRPC message accepted on the secure gRPC port (`ISTIO_GPRC_MAXRECVMSGSIZE`). */
  readonly grpcMaxRecvMsgSize: number;
  readonly httpAddr: ListenAddress;
  readonly secureGrpcAddr: ListenAddress;
  readonly monitoringAddr: ListenAddress;
  /** Debug views (syncz, WDS dump); always a loopback address. */
  readonly debugAddr: ListenAddress;
  /** Path to a kubeconfig; empty means in-cluster config (or `$KUBECONFIG`). */
  readonly kubeconfig: string;
  /** The image of waypoint and ingress gateway Deployments (default `ambient-mesh/waypoint:<version>`). */
  readonly waypointImage: string;
  /**
   * `CA_ADDR` of the waypoint and gateway Deployments istiod creates: the CA they get their
   * certificate from (upstream's `global.caAddress` value). Empty: istiod's own address.
   */
  readonly waypointCaAddress: string;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  /** Serve `IstioCertificateService` on the secure gRPC port (upstream `ENABLE_CA_SERVER`). */
  readonly enableCaServer: boolean;
  /**
   * Who fetches a `jwksUri`: `istiod` inlines the key set into the waypoint's config (upstream's
   * default; `hybrid` is served the same way), `envoy` sends `remote_jwks` to the waypoint.
   */
  readonly jwksFetchMode: 'istiod' | 'envoy';
  /** How often istiod refetches each `jwksUri` (`PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`). */
  readonly jwksRefreshIntervalMs: number;
  /**
   * `ISTIOD_RA_KUBERNETES_API`: istiod validates workload CSRs and has them signed by
   * `k8sSigner` through `certificates.k8s.io/v1` CertificateSigningRequests. Empty: istiod signs.
   */
  readonly externalCa: '' | typeof EXTERNAL_CA_KUBERNETES;
  /** The CSR `signerName`, e.g. `clusterissuers.cert-manager.io/istio-ca` (upstream `K8S_SIGNER`). */
  readonly k8sSigner: string;
  /**
   * Secret (istiod's namespace) holding istiod's serving certificate (`tls.crt`, `tls.key`,
   * `ca.crt`), as istio-csr issues it. Used when set and present; otherwise istiod signs its own.
   */
  readonly istiodTlsSecret: string;
}

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly argv: readonly string[];
}

const FLAG_SPECS = Object.fromEntries(Object.values(FLAGS).map(name => [name, {}]));

/** Parses env and flags into a frozen `Config`. Throws one `ConfigError` listing every bad value. */
export function loadConfig(
  sources: ConfigSources = { env: process.env, argv: process.argv.slice(2) },
): Config {
  // Positionals are ignored: upstream runs `pilot-discovery discovery --flags`.
  const r = new ConfigReader({
    env: sources.env,
    argv: sources.argv,
    flags: FLAG_SPECS,
    positionals: 'ignore',
  });
  const flag = (name: string): { flag: string } => ({ flag: name });
  const listen = (name: string, fallback: ListenAddress): ListenAddress =>
    r.listenAddress(flag(name), fallback);
  const seconds = (name: string, fallbackMs: number): number =>
    Math.floor(r.durationMs(name, fallbackMs) / 1000);

  const debugAddr = listen(FLAGS.debugAddr, { host: '127.0.0.1', port: 9876 });
  if (!isLoopbackAddress(debugAddr.host)) {
    // Debug views list every proxy and every workload: never expose them beyond the pod.
    r.problem(
      `--${FLAGS.debugAddr}`,
      `${JSON.stringify(r.flag(FLAGS.debugAddr))} must be a loopback address`,
    );
  }

  const trustedNodeAccounts: ServiceAccountRef[] = [];
  const accounts = r.string(ENV.trustedNodeAccounts, 'istio-system/ztunnel');
  for (const entry of splitList(accounts)) {
    const parts = entry.split('/');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      r.problem(
        ENV.trustedNodeAccounts,
        `${JSON.stringify(accounts)} is not a comma list of "<namespace>/<serviceaccount>"`,
      );
      break;
    }
    trustedNodeAccounts.push({ namespace: parts[0] ?? '', serviceAccount: parts[1] ?? '' });
  }

  const externalCaText = r.string(ENV.externalCa, '');
  let externalCa: Config['externalCa'] = '';
  if (externalCaText === EXTERNAL_CA_KUBERNETES) externalCa = EXTERNAL_CA_KUBERNETES;
  else if (externalCaText !== '') {
    r.problem(
      ENV.externalCa,
      `${JSON.stringify(externalCaText)} is not supported; use ${EXTERNAL_CA_KUBERNETES}`,
    );
  }
  const k8sSigner = r.string(ENV.k8sSigner, '');
  if (externalCa !== '' && k8sSigner === '') {
    r.problem(ENV.k8sSigner, `must name the CSR signer when ${ENV.externalCa}=${EXTERNAL_CA_KUBERNETES}`);
  }
  const remoteJwks = r.string(ENV.jwtRemoteJwks, 'false').toLowerCase();
  let jwksFetchMode: Config['jwksFetchMode'] = 'istiod';
  if (remoteJwks === 'true' || remoteJwks === 'envoy') jwksFetchMode = 'envoy';
  else if (!['false', 'istiod', 'hybrid'].includes(remoteJwks))
    r.problem(
      ENV.jwtRemoteJwks,
      `${JSON.stringify(remoteJwks)} is not one of false, true, istiod, envoy, hybrid`,
    );
  const jwksRefreshIntervalMs = r.durationMs(ENV.jwtPubKeyRefreshInterval, 20 * 60_000);
  if (jwksRefreshIntervalMs < 1_000) r.problem(ENV.jwtPubKeyRefreshInterval, 'must be at least 1s');
  const leaderElectionLeaseDurationMs = r.durationMs(ENV.leaderElectionLeaseDuration, 30_000);
  if (leaderElectionLeaseDurationMs < 2_000) {
    r.problem(ENV.leaderElectionLeaseDuration, 'must be at least 2s (upstream uses 30s)');
  }

  const podNamespace = r.string(ENV.podNamespace, 'istio-system');

  return r.finish(
    {
      podNamespace,
      podName: r.string(ENV.podName, 'istiod'),
      clusterId: r.string(ENV.clusterId, 'Kubernetes'),
      trustDomain: r.string(ENV.trustDomain, 'cluster.local'),
      domain: r.string(flag(FLAGS.domain), 'cluster.local'),
      enableAmbient: r.bool(ENV.enableAmbient, true),
      revision: r.string(ENV.revision, '') || 'default',
      trustedNodeAccounts,
      customHosts: splitList(r.string(ENV.customHost, '')),
      rootCaDir: r.string(ENV.rootCaDir, './etc/cacerts'),
      tokenAudiences: splitList(r.string(ENV.tokenAudiences, 'istio-ca')),
      defaultCertTtlSeconds: seconds(ENV.defaultCertTtl, 24 * 3_600_000),
      maxCertTtlSeconds: seconds(ENV.maxCertTtl, 2160 * 3_600_000),
      selfSignedCaTtlSeconds: seconds(ENV.selfSignedCaTtl, 87_600 * 3_600_000),
      debounceAfterMs: r.durationMs(ENV.debounceAfter, 100),
      debounceMaxMs: r.durationMs(ENV.debounceMax, 10_000),
      leaderElectionLeaseDurationMs,
      xdsAuth: r.bool(ENV.xdsAuth, true),
      enableNodeUntaintControllers: r.bool(ENV.enableNodeUntaintControllers, false),
      cniNamespace: r.string(flag(FLAGS.cniNamespace), '') || podNamespace,
      grpcMaxRecvMsgSize: r.int(ENV.grpcMaxRecvMsgSize, 4 * 1024 * 1024, { min: 1 }),
      httpAddr: listen(FLAGS.httpAddr, { host: '::', port: Port.istiodReadiness }),
      secureGrpcAddr: listen(FLAGS.secureGrpcAddr, { host: '::', port: Port.istiodXds }),
      monitoringAddr: listen(FLAGS.monitoringAddr, { host: '::', port: Port.istiodMonitoring }),
      debugAddr,
      kubeconfig: r.string({ flag: FLAGS.kubeconfig, env: ENV.kubeconfig }, ''),
      waypointImage: r.string(ENV.waypointImage, `ambient-mesh/waypoint:${buildInfo.version}`),
      waypointCaAddress: r.string(ENV.waypointCaAddress, ''),
      logFormat: r.logFormat(ENV.logFormat),
      logLevel: r.logLevel(ENV.logLevel),
      enableCaServer: r.bool(ENV.enableCaServer, true),
      jwksFetchMode,
      jwksRefreshIntervalMs,
      externalCa,
      k8sSigner,
      istiodTlsSecret: r.string(ENV.istiodTlsSecret, 'istiod-tls'),
    },
    { component: 'istiod', code: CONFIG_INVALID },
  );
}

/** `--name=value` and `--name value`; a single leading dash is accepted as Go's flag package does. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const parsed = parseFlagsOf(argv, FLAG_SPECS);
  if (parsed.problems.length > 0) {
    throw new ConfigError(parsed.problems, { component: 'istiod', code: CONFIG_INVALID });
  }
  return new Map(parsed.values);
}
