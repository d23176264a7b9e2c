/**
 * The only module of the waypoint that reads the environment.
 *
 * `loadConfig(env)` parses once (through the runtime's `ConfigReader`) into a frozen `Config`;
 * every problem is reported together in one `ConfigError` (`WAYPOINT_CONFIG_INVALID`). Names
 * follow istio-proxy's where one exists.
 */
import { ConfigReader, LOG_LEVELS, LogFormat, parseHttpUrl, parseIp } from '@ambient-mesh/runtime';
import type { Environment, ListenAddress, LogLevel } from '@ambient-mesh/runtime';
import { Port, ProxyType, nodeId } from '@ambient-mesh/mesh-api';
import { WaypointErrorCode } from './errors.ts';

export { LOG_LEVELS, LogFormat };
export type { ListenAddress, LogLevel };

export const Env = {
  xdsAddress: 'XDS_ADDRESS',
  caAddress: 'CA_ADDR',
  trustDomain: 'TRUST_DOMAIN',
  serviceAccount: 'SERVICE_ACCOUNT',
  xdsRootCa: 'XDS_ROOT_CA',
  altXdsHostname: 'ALT_XDS_HOSTNAME',
  podName: 'POD_NAME',
  podNamespace: 'POD_NAMESPACE',
  instanceIp: 'INSTANCE_IP',
  clusterId: 'CLUSTER_ID',
  clusterDomain: 'CLUSTER_DOMAIN',
  certDir: 'WAYPOINT_CERT_DIR',
  tokenPath: 'WAYPOINT_TOKEN_PATH',
  secretTtl: 'SECRET_TTL',
  logFormat: 'LOG_FORMAT',
  logLevel: 'LOG_LEVEL',
  terminationGracePeriod: 'TERMINATION_GRACE_PERIOD_SECONDS',
  drainDuration: 'TERMINATION_DRAIN_DURATION_SECONDS',
  maxRequestBody: 'WAYPOINT_MAX_REQUEST_BODY_BYTES',
  maxHeaderBytes: 'WAYPOINT_MAX_HEADER_BYTES',
  xdsHeaderPrefix: 'XDS_HEADER_',
  metaPrefix: 'ISTIO_META_',
  /** The downward API folder with the pod's `labels` (upstream's `istio-podinfo` volume). */
  podInfoDir: 'ISTIO_POD_INFO_DIR',
} as const;

export const DEFAULT_ISTIOD_ADDRESS = 'https://istiod.istio-system.svc:15012';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_ROOT_CA_PATH = './var/run/secrets/istio/root-cert.pem';
/** Where the workload certificate is mounted (istio-proxy's file-mounted credentials). */
export const DEFAULT_CERT_DIR = '/var/run/secrets/workload-spiffe-credentials';
/** Where istiod's gateway Deployments mount the pod's labels (downward API), as upstream's. */
export const DEFAULT_POD_INFO_DIR = '/etc/istio/pod';

/**
 * What the process runs as: `waypoint` (HBONE inbound on 15008) or `router`, an ingress
 * gateway (istiod's gateway Deployment passes the argument `router`, as pilot-agent's
 * `proxy router`): listeners with a socket address are bound as plain TCP ports on the pod.
 */
export const ProxyMode = { waypoint: 'waypoint', router: 'router' } as const;
export type ProxyMode = (typeof ProxyMode)[keyof typeof ProxyMode];

export interface Config {
  readonly mode: ProxyMode;
  readonly xdsAddress: string;
  /** istiod's CA, used when `certDir` holds no certificate (default: the xDS address). */
  readonly caAddress: string;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  readonly xdsRootCaPath: string;
  readonly altXdsHostname: string | undefined;
  readonly tokenPath: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly instanceIp: string;
  readonly clusterId: string;
  readonly clusterDomain: string;
  readonly certDir: string;
  /**
   * The downward API folder whose `labels` file (`key="value"` lines) the proxy sends as node
   * metadata `LABELS`, as istio-agent does; a missing file: no `LABELS`.
   */
  readonly podInfoDir: string;
  /** The lifetime asked of istiod's CA for the workload certificate (renewed at half of it). */
  readonly secretTtlSeconds: number;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  readonly terminationGracePeriodMs: number;
  /**
   * On shutdown, how long the waypoint keeps accepting new tunnels after it reports not ready
   * (while the ztunnels learn it is terminating), before it waits for requests in flight.
   */
  readonly drainDurationMs: number;
  readonly maxRequestBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly xdsHeaders: Readonly<Record<string, string>>;
  readonly proxyMetadata: Readonly<Record<string, string>>;
  readonly hboneAddress: ListenAddress;
  readonly adminAddress: ListenAddress;
  readonly statsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
}

/**
 * istiod's address as pilot-agent takes it: `host:port` (what istiod's waypoint Deployment sets)
 * means TLS, `https://host:port`; a URL is kept as it is (`http://` for plaintext, tests only).
 */
export function withScheme(address: string): string {
  return address.includes('://') ? address : `https://${address}`;
}

/** The mode from the command line: `router` (or `proxy router`) anywhere in it; default waypoint. */
export function modeOf(args: readonly string[]): ProxyMode | { readonly unknown: string } {
  const words = args.filter(a => a !== 'proxy' && !a.startsWith('-'));
  const word = words[0];
  if (word === undefined || word === ProxyMode.waypoint) return ProxyMode.waypoint;
  if (word === ProxyMode.router) return ProxyMode.router;
  return { unknown: word };
}

export function loadConfig(env: Environment = process.env, args: readonly string[] = []): Config {
  const r = new ConfigReader({ env });
  const parsedMode = modeOf(args);
  if (typeof parsedMode !== 'string')
    r.problem('argument', `unknown mode ${JSON.stringify(parsedMode.unknown)} (expected waypoint or router)`);
  const mode = typeof parsedMode === 'string' ? parsedMode : ProxyMode.waypoint;
  const xdsAddress = withScheme(r.env(Env.xdsAddress) ?? DEFAULT_ISTIOD_ADDRESS);
  const url = parseHttpUrl(xdsAddress);
  if (!url.ok) r.problem(Env.xdsAddress, `${url.message} (expected e.g. ${DEFAULT_ISTIOD_ADDRESS})`);
  const caAddress = withScheme(r.env(Env.caAddress) ?? xdsAddress);
  const caUrl = parseHttpUrl(caAddress);
  if (!caUrl.ok) r.problem(Env.caAddress, `${caUrl.message} (expected e.g. ${DEFAULT_ISTIOD_ADDRESS})`);
  const podName = r.required(Env.podName, 'set it from metadata.name');
  const podNamespace = r.required(Env.podNamespace, 'set it from metadata.namespace');
  const instanceIp = r.parse(Env.instanceIp, raw => parseIp(raw), '127.0.0.1');
  const maxRequestBodyBytes = r.int(Env.maxRequestBody, 16 * 1024 * 1024, { min: 0 });
  const maxHeaderBytes = r.int(Env.maxHeaderBytes, 60 * 1024, { min: 1024 });
  const secretTtlMs = r.durationMs(Env.secretTtl, 86_400_000, { bareUnit: 's' });
  if (secretTtlMs < 1000) r.problem(Env.secretTtl, 'must be a duration of at least 1s (e.g. 24h0m0s)');
  const proxyMetadata: Record<string, string> = {};
  for (const [key, value] of r.prefixed(Env.metaPrefix)) proxyMetadata[key] = value;
  return r.finish(
    {
      mode,
      xdsAddress,
      caAddress,
      trustDomain: r.env(Env.trustDomain) ?? 'cluster.local',
      serviceAccount: r.env(Env.serviceAccount) ?? 'default',
      xdsRootCaPath: r.env(Env.xdsRootCa) ?? DEFAULT_ROOT_CA_PATH,
      altXdsHostname: r.env(Env.altXdsHostname),
      tokenPath: r.env(Env.tokenPath) ?? DEFAULT_TOKEN_PATH,
      podName,
      podNamespace,
      instanceIp,
      clusterId: r.env(Env.clusterId) ?? 'Kubernetes',
      clusterDomain: r.env(Env.clusterDomain) ?? 'cluster.local',
      certDir: r.env(Env.certDir) ?? DEFAULT_CERT_DIR,
      podInfoDir: r.env(Env.podInfoDir) ?? DEFAULT_POD_INFO_DIR,
      secretTtlSeconds: Math.round(secretTtlMs / 1000),
      logFormat: r.logFormat(Env.logFormat),
      logLevel: r.logLevel(Env.logLevel),
      terminationGracePeriodMs: Math.round(
        r.durationMs(Env.terminationGracePeriod, 5_000, { bareUnit: 's' }),
      ),
      drainDurationMs: Math.round(r.durationMs(Env.drainDuration, 1_000, { bareUnit: 's' })),
      maxRequestBodyBytes,
      maxHeaderBytes,
      xdsHeaders: Object.freeze(
        Object.fromEntries(
          r.prefixed(Env.xdsHeaderPrefix).map(([k, v]) => [k.toLowerCase().replaceAll('_', '-'), v]),
        ),
      ),
      proxyMetadata: Object.freeze(proxyMetadata),
      hboneAddress: Object.freeze({ host: '0.0.0.0', port: Port.hbone }),
      adminAddress: Object.freeze({ host: '127.0.0.1', port: Port.admin }),
      statsAddress: Object.freeze({ host: '0.0.0.0', port: Port.stats }),
      readinessAddress: Object.freeze({ host: '0.0.0.0', port: Port.readiness }),
    },
    { component: 'waypoint', code: WaypointErrorCode.ConfigInvalid },
  );
}

/** The process's configuration: its environment and its command line (`router` for a gateway). */
export function loadProcessConfig(): Config {
  return loadConfig(process.env, process.argv.slice(2));
}

/** `waypoint~<ip>~<pod>.<ns>~<ns>.svc.<domain>` (`router~...` for an ingress gateway). */
export function xdsNodeId(
  config: Pick<Config, 'instanceIp' | 'podName' | 'podNamespace' | 'clusterDomain'> & {
    readonly mode?: ProxyMode;
  },
): string {
  return nodeId({
    type: config.mode === ProxyMode.router ? ProxyType.router : ProxyType.waypoint,
    ip: config.instanceIp,
    podName: config.podName,
    namespace: config.podNamespace,
    domain: config.clusterDomain,
  });
}

/**
 * Node metadata sent to istiod. `PROXY_CONFIG` (the proxy's ProxyConfig, as pilot-agent sends it
 * for Envoy) is what marks a proxy rather than a debug client: istiod lists only such proxies
 * (and ztunnels) in the sync view istioctl proxy-status reads. `version` becomes
 * `ISTIO_VERSION`, the VERSION column of proxy-status.
 */
export function xdsNodeMetadata(
  config: Config,
  version?: string,
  labels?: Readonly<Record<string, string>>,
): Record<string, string | Record<string, string | Record<string, string>>> {
  let discoveryAddress = config.xdsAddress;
  try {
    discoveryAddress = new URL(config.xdsAddress).host;
  } catch {
    // loadConfig validated it; keep the text as is otherwise.
  }
  return {
    ...config.proxyMetadata,
    ...(version === undefined ? {} : { ISTIO_VERSION: version }),
    PROXY_CONFIG: {
      discoveryAddress,
      proxyMetadata: { ...config.proxyMetadata },
    },
    NAME: config.podName,
    NAMESPACE: config.podNamespace,
    INSTANCE_IPS: config.instanceIp,
    CLUSTER_ID: config.clusterId,
    // The pod's labels (istiod finds a gateway's Gateway by gateway.networking.k8s.io/gateway-name).
    ...(labels === undefined || Object.keys(labels).length === 0 ? {} : { LABELS: { ...labels } }),
  };
}

/**
 * The downward API `labels` file: one `key="value"` line per label, the value quoted as Go's
 * `%q` (JSON-compatible for what labels may hold). Lines that do not parse are skipped.
 */
export function parsePodLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    try {
      const value: unknown = JSON.parse(line.slice(eq + 1).trim());
      if (typeof value === 'string') out[line.slice(0, eq).trim()] = value;
    } catch {
      // Not a quoted value: skipped.
    }
  }
  return out;
}
