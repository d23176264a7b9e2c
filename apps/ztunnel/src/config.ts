/**
 * The only module of ztunnel that reads the environment.
 *
 * `loadConfig(env)` parses once (through `ConfigReader` of `@ambient-mesh/runtime`) into a frozen,
 * typed `Config`. Every problem is collected and reported together in one `ConfigError`. Variable names follow upstream ztunnel where one exists.
 */
import {
  ConfigReader,
  LOG_LEVELS,
  LogFormat,
  parseGoDurationMs,
  parseHttpUrl,
  parseIp,
} from '@ambient-mesh/runtime';
import type { Environment, ListenAddress, LogLevel } from '@ambient-mesh/runtime';
import { Port, ProxyType, nodeId } from '@ambient-mesh/mesh-api';
import { ZtunnelErrorCode } from './errors.ts';

export { LOG_LEVELS, LogFormat };
export type { ListenAddress, LogLevel };

/** Environment variable names, as upstream ztunnel spells them. */
export const Env = {
  caAddress: 'CA_ADDRESS',
  xdsAddress: 'XDS_ADDRESS',
  podName: 'POD_NAME',
  podNamespace: 'POD_NAMESPACE',
  nodeName: 'NODE_NAME',
  instanceIp: 'INSTANCE_IP',
  clusterId: 'CLUSTER_ID',
  metaClusterId: 'ISTIO_META_CLUSTER_ID',
  clusterDomain: 'CLUSTER_DOMAIN',
  secretTtl: 'SECRET_TTL',
  inpodUds: 'INPOD_UDS',
  xdsRootCa: 'XDS_ROOT_CA',
  caRootCa: 'CA_ROOT_CA',
  altXdsHostname: 'ALT_XDS_HOSTNAME',
  altCaHostname: 'ALT_CA_HOSTNAME',
  logFormat: 'LOG_FORMAT',
  logLevel: 'RUST_LOG',
  terminationGracePeriod: 'TERMINATION_GRACE_PERIOD_SECONDS',
  connectionTerminationDeadline: 'CONNECTION_TERMINATION_DEADLINE',
  enableOrigSrc: 'ENABLE_ORIG_SRC',
  ipv6Enabled: 'IPV6_ENABLED',
  metaPrefix: 'ISTIO_META_',
  metaJsonPrefix: 'ISTIO_METAJSON_',
  caHeaderPrefix: 'CA_HEADER_',
  xdsHeaderPrefix: 'XDS_HEADER_',
  /** Ours (no upstream equivalent): bounds on the channels to istiod (xDS and CA). */
  controlPlaneConnectTimeout: 'CONTROL_PLANE_CONNECT_TIMEOUT',
  controlPlaneKeepaliveInterval: 'CONTROL_PLANE_KEEPALIVE_INTERVAL',
  controlPlaneKeepaliveTimeout: 'CONTROL_PLANE_KEEPALIVE_TIMEOUT',
  dnsResolvConf: 'DNS_RESOLV_CONF',
  /** Ours (upstream ztunnel has fixed values or none): the data-plane hardening limits. */
  hboneHandshakeTimeout: 'HBONE_HANDSHAKE_TIMEOUT',
  upstreamConnectTimeout: 'UPSTREAM_CONNECT_TIMEOUT',
  connectionIdleTimeout: 'CONNECTION_IDLE_TIMEOUT',
  hboneIdleSessionTimeout: 'HBONE_IDLE_SESSION_TIMEOUT',
  maxConnectionsPerSource: 'MAX_CONNECTIONS_PER_SOURCE',
  /** Ours: V8's memory mode follows load (`memory-mode.ts`); `false` leaves V8 as started. */
  memoryMode: 'MEMORY_MODE',
} as const;

/** Defaults of the hardening limits (docs/operations.md#ztunnel-limits). */
export const DEFAULT_LIMITS = Object.freeze({
  hboneHandshakeTimeoutMs: 10_000,
  /** Upstream's fixed connect timeout to the app or passthrough destination. */
  upstreamConnectTimeoutMs: 10_000,
  /** Envoy's `tcp_proxy` default, what sidecar users already live with. */
  connectionIdleTimeoutMs: 3_600_000,
  /** Twice the client pool's `POOL_UNUSED_RELEASE_TIMEOUT` (5 min), so pools release first. */
  hboneIdleSessionTimeoutMs: 600_000,
  maxConnectionsPerSource: 4096,
});

/** Proxy metadata key that turns the DNS proxy off when `false` (upstream's `ISTIO_META_DNS_CAPTURE`). */
export const DNS_CAPTURE_METADATA = 'DNS_CAPTURE';
export const DEFAULT_DNS_RESOLV_CONF = '/etc/resolv.conf';

export const DEFAULT_ISTIOD_ADDRESS = 'https://istiod.istio-system.svc:15012';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_ROOT_CA_PATH = './var/run/secrets/istio/root-cert.pem';
export const DEFAULT_INPOD_UDS = '/var/run/ztunnel/ztunnel.sock';
/** SO_MARK on every socket ztunnel creates in a pod netns (docs/protocols.md#redirection-ztunnel). */
export const INPOD_PACKET_MARK = 0x539;

/** `unset` tries IP_TRANSPARENT, `true` requires it, `false` never spoofs (docs/protocols.md#hbone-server). */
export type OrigSrcMode = 'try' | 'require' | 'off';

export interface Config {
  readonly xdsAddress: string;
  readonly caAddress: string;
  readonly xdsRootCaPath: string;
  readonly caRootCaPath: string;
  readonly altXdsHostname: string | undefined;
  readonly altCaHostname: string | undefined;
  readonly tokenPath: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly nodeName: string;
  readonly instanceIp: string;
  readonly clusterId: string;
  readonly clusterDomain: string;
  /** Requested certificate lifetime, in seconds. */
  readonly secretTtlSeconds: number;
  readonly inpodUds: string;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  readonly terminationGracePeriodMs: number;
  /**
   * How long a shutdown lets open connections run before closing them, as upstream derives it:
   * `CONNECTION_TERMINATION_DEADLINE`, else the grace period less 5 s (less 1 s when it is 10 s or
   * shorter; at least 1 s), else 5 s. The rest of the grace period is for closing cleanly and
   * exiting before Kubernetes sends SIGKILL.
   */
  readonly connectionTerminationDeadlineMs: number;
  readonly origSrc: OrigSrcMode;
  /**
   * `IPV6_ENABLED` (default true, as upstream): the in-pod listeners serve `::` as well as
   * `0.0.0.0`. Off, they are IPv4 only (then turn the cni-agent's `AMBIENT_IPV6` off too).
   */
  readonly ipv6Enabled: boolean;
  /**
   * `MEMORY_MODE` (ours, default true): when quiet, ztunnel switches V8 to its memory-saving mode
   * and trims the C heap, so memory of a past burst is returned (docs/operations.md). `false`
   * leaves V8 as started.
   */
  readonly memoryMode: boolean;
  /** `ISTIO_META_<K>` and parsed `ISTIO_METAJSON_<K>` entries, by `<K>`. */
  readonly proxyMetadata: Readonly<Record<string, unknown>>;
  /** Extra gRPC metadata from `CA_HEADER_<NAME>` / `XDS_HEADER_<NAME>`, names lowercased. */
  readonly caHeaders: Readonly<Record<string, string>>;
  readonly xdsHeaders: Readonly<Record<string, string>>;
  readonly adminAddress: ListenAddress;
  readonly statsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
  readonly packetMark: number;
  /** Longest a channel to istiod may stay connecting before ztunnel dials again on a new one. */
  readonly controlPlaneConnectTimeoutMs: number;
  /** HTTP/2 keepalive ping interval and ack timeout on the channels to istiod. */
  readonly controlPlaneKeepaliveIntervalMs: number;
  readonly controlPlaneKeepaliveTimeoutMs: number;
  /** Run the in-pod DNS proxy on 15053; off only when `ISTIO_META_DNS_CAPTURE=false`. */
  readonly dnsProxy: boolean;
  /** Where the DNS proxy reads its upstream resolvers (`DNS_RESOLV_CONF`, ours). */
  readonly dnsResolvConfPath: string;
  /** Longest a TLS handshake on 15008 may take before the connection is closed. */
  readonly hboneHandshakeTimeoutMs: number;
  /** Longest a dial to the app (15006, 15008) or a passthrough destination (15001) may take. */
  readonly upstreamConnectTimeoutMs: number;
  /** A proxied connection with no byte either way for this long is closed; 0: never. */
  readonly connectionIdleTimeoutMs: number;
  /** An inbound HBONE connection that carries no tunnel for this long gets GOAWAY; 0: never. */
  readonly hboneIdleSessionTimeoutMs: number;
  /** Open connections one source IP may have to one pod's 15006 and 15008 together; 0: no limit. */
  readonly maxConnectionsPerSource: number;
}

/** Upstream's drain deadline for a grace period: 5 s less above 10 s, else 1 s less; at least 1 s. */
export function terminationDeadlineFromGraceMs(graceMs: number): number {
  return Math.max(graceMs > 10_000 ? graceMs - 5_000 : graceMs - 1_000, 1_000);
}

/** Parses a Go duration (`24h`, `1h30m`, `90s`) or a bare number of seconds, into seconds. */
export function parseDurationSeconds(text: string): number | undefined {
  const ms = parseGoDurationMs(text, { bareUnit: 's' });
  return ms === undefined ? undefined : ms / 1000;
}

const URL_EXAMPLE = `expected e.g. ${DEFAULT_ISTIOD_ADDRESS}`;

/**
 * Parses the environment into a frozen `Config`.
 *
 * Throws `ConfigError` (`ZTUNNEL_CONFIG_INVALID`) listing every invalid variable; nothing else in
 * ztunnel reads `process.env`.
 */
export function loadConfig(env: Environment = process.env): Config {
  const r = new ConfigReader({ env });

  const xdsAddress = r.env(Env.xdsAddress) ?? DEFAULT_ISTIOD_ADDRESS;
  const caAddress = r.env(Env.caAddress) ?? xdsAddress;
  for (const [name, value] of [
    [Env.xdsAddress, xdsAddress],
    [Env.caAddress, caAddress],
  ] as const) {
    const url = parseHttpUrl(value);
    if (!url.ok) r.problem(name, `${url.message} (${URL_EXAMPLE})`);
  }

  const podName = r.required(Env.podName, 'set it from metadata.name');
  const podNamespace = r.required(Env.podNamespace, 'set it from metadata.namespace');
  const nodeName = r.required(Env.nodeName, 'set it from spec.nodeName');
  const instanceIp = r.parse(Env.instanceIp, raw => parseIp(raw), '1.1.1.1');

  const clusterId = r.env(Env.clusterId) ?? r.env(Env.metaClusterId) ?? 'Kubernetes';
  const clusterDomain = r.env(Env.clusterDomain) ?? 'cluster.local';

  const secretTtlMs = r.durationMs(Env.secretTtl, 86_400_000, { bareUnit: 's' });
  if (secretTtlMs <= 0) r.problem(Env.secretTtl, 'must be a positive duration (e.g. 24h0m0s)');
  const secretTtlSeconds = Math.round(secretTtlMs / 1000);

  const logFormat = r.logFormat(Env.logFormat);
  const logLevel = r.logLevel(Env.logLevel);
  const terminationGracePeriodMs = Math.round(
    r.durationMs(Env.terminationGracePeriod, 5_000, { bareUnit: 's' }),
  );
  const connectionTerminationDeadlineMs = Math.round(
    r.durationMs(
      Env.connectionTerminationDeadline,
      r.env(Env.terminationGracePeriod) === undefined
        ? 5_000
        : terminationDeadlineFromGraceMs(terminationGracePeriodMs),
      { bareUnit: 's' },
    ),
  );

  const positiveMs = (name: string, fallback: number): number => {
    const ms = Math.round(r.durationMs(name, fallback, { bareUnit: 's' }));
    if (ms <= 0) r.problem(name, 'must be a positive duration (e.g. 3s)');
    return ms;
  };
  const controlPlaneConnectTimeoutMs = positiveMs(Env.controlPlaneConnectTimeout, 5_000);
  const controlPlaneKeepaliveIntervalMs = positiveMs(Env.controlPlaneKeepaliveInterval, 10_000);
  const controlPlaneKeepaliveTimeoutMs = positiveMs(Env.controlPlaneKeepaliveTimeout, 5_000);

  const nonNegativeMs = (name: string, fallback: number): number => {
    const ms = Math.round(r.durationMs(name, fallback, { bareUnit: 's' }));
    if (ms < 0) r.problem(name, 'must be a duration of 0 (off) or more (e.g. 10m)');
    return ms;
  };
  const hboneHandshakeTimeoutMs = positiveMs(
    Env.hboneHandshakeTimeout,
    DEFAULT_LIMITS.hboneHandshakeTimeoutMs,
  );
  const upstreamConnectTimeoutMs = positiveMs(
    Env.upstreamConnectTimeout,
    DEFAULT_LIMITS.upstreamConnectTimeoutMs,
  );
  const connectionIdleTimeoutMs = nonNegativeMs(
    Env.connectionIdleTimeout,
    DEFAULT_LIMITS.connectionIdleTimeoutMs,
  );
  const hboneIdleSessionTimeoutMs = nonNegativeMs(
    Env.hboneIdleSessionTimeout,
    DEFAULT_LIMITS.hboneIdleSessionTimeoutMs,
  );
  const maxConnectionsPerSource = r.int(Env.maxConnectionsPerSource, DEFAULT_LIMITS.maxConnectionsPerSource);

  const origSrcText = r.env(Env.enableOrigSrc)?.toLowerCase();
  let origSrc: OrigSrcMode = 'try';
  if (origSrcText === 'true') origSrc = 'require';
  else if (origSrcText === 'false') origSrc = 'off';
  else if (origSrcText !== undefined) r.problem(Env.enableOrigSrc, 'must be "true" or "false"');

  const proxyMetadata: Record<string, unknown> = {};
  for (const [key, value] of r.prefixed(Env.metaPrefix)) proxyMetadata[key] = value;
  for (const [key, value] of r.prefixed(Env.metaJsonPrefix)) {
    try {
      proxyMetadata[key] = JSON.parse(value) as unknown;
    } catch {
      r.problem(`${Env.metaJsonPrefix}${key}`, 'not valid JSON');
    }
  }
  if (!('CLUSTER_ID' in proxyMetadata)) proxyMetadata.CLUSTER_ID = clusterId;
  const dnsCapture = proxyMetadata[DNS_CAPTURE_METADATA];
  const dnsProxy =
    !(typeof dnsCapture === 'string' && dnsCapture.toLowerCase() === 'false') && dnsCapture !== false;

  const headers = (prefix: string): Readonly<Record<string, string>> =>
    Object.freeze(
      Object.fromEntries(
        r.prefixed(prefix).map(([key, value]) => [key.toLowerCase().replaceAll('_', '-'), value]),
      ),
    );

  return r.finish(
    {
      xdsAddress,
      caAddress,
      xdsRootCaPath: r.env(Env.xdsRootCa) ?? DEFAULT_ROOT_CA_PATH,
      caRootCaPath: r.env(Env.caRootCa) ?? r.env(Env.xdsRootCa) ?? DEFAULT_ROOT_CA_PATH,
      altXdsHostname: r.env(Env.altXdsHostname),
      altCaHostname: r.env(Env.altCaHostname),
      tokenPath: DEFAULT_TOKEN_PATH,
      podName,
      podNamespace,
      nodeName,
      instanceIp,
      clusterId,
      clusterDomain,
      secretTtlSeconds,
      inpodUds: r.env(Env.inpodUds) ?? DEFAULT_INPOD_UDS,
      logFormat,
      logLevel,
      terminationGracePeriodMs,
      connectionTerminationDeadlineMs,
      origSrc,
      ipv6Enabled: r.bool(Env.ipv6Enabled, true),
      memoryMode: r.bool(Env.memoryMode, true),
      proxyMetadata: Object.freeze(proxyMetadata),
      caHeaders: headers(Env.caHeaderPrefix),
      xdsHeaders: headers(Env.xdsHeaderPrefix),
      adminAddress: Object.freeze({ host: '127.0.0.1', port: Port.admin }),
      statsAddress: Object.freeze({ host: '0.0.0.0', port: Port.stats }),
      readinessAddress: Object.freeze({ host: '0.0.0.0', port: Port.readiness }),
      packetMark: INPOD_PACKET_MARK,
      controlPlaneConnectTimeoutMs,
      controlPlaneKeepaliveIntervalMs,
      controlPlaneKeepaliveTimeoutMs,
      dnsProxy,
      dnsResolvConfPath: r.env(Env.dnsResolvConf) ?? DEFAULT_DNS_RESOLV_CONF,
      hboneHandshakeTimeoutMs,
      upstreamConnectTimeoutMs,
      connectionIdleTimeoutMs,
      hboneIdleSessionTimeoutMs,
      maxConnectionsPerSource,
    },
    { component: 'ztunnel', code: ZtunnelErrorCode.ConfigInvalid },
  );
}

/** The node id ztunnel sends to istiod (docs/protocols.md#wds-discovery-messages). */
export function xdsNodeId(config: Pick<Config, 'instanceIp' | 'podName' | 'podNamespace'>): string {
  return nodeId({
    type: ProxyType.ztunnel,
    ip: config.instanceIp,
    podName: config.podName,
    namespace: config.podNamespace,
  });
}

/** The node metadata Struct contents ztunnel sends to istiod (docs/protocols.md#wds-discovery-messages). */
export function xdsNodeMetadata(
  config: Pick<Config, 'podName' | 'podNamespace' | 'instanceIp' | 'nodeName' | 'proxyMetadata'>,
): Record<string, unknown> {
  return {
    ...config.proxyMetadata,
    NAME: config.podName,
    NAMESPACE: config.podNamespace,
    INSTANCE_IPS: config.instanceIp,
    NODE_NAME: config.nodeName,
  };
}
