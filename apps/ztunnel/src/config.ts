/**
 * The only module of ztunnel that reads the environment.
 *
 * `loadConfig(env)` parses once into a frozen, typed `Config`. Every problem is collected and
 * reported together in one `ConfigError`. Variable names follow upstream ztunnel where one exists.
 */
import { isIP } from 'node:net';
import { ProxyType, nodeId } from '@ambient-mesh/mesh-api';
import { ConfigError } from './errors.ts';

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
  enableOrigSrc: 'ENABLE_ORIG_SRC',
  metaPrefix: 'ISTIO_META_',
  metaJsonPrefix: 'ISTIO_METAJSON_',
  caHeaderPrefix: 'CA_HEADER_',
  xdsHeaderPrefix: 'XDS_HEADER_',
} as const;

export const DEFAULT_ISTIOD_ADDRESS = 'https://istiod.istio-system.svc:15012';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_ROOT_CA_PATH = './var/run/secrets/istio/root-cert.pem';
export const DEFAULT_INPOD_UDS = '/var/run/ztunnel/ztunnel.sock';
/** SO_MARK on every socket ztunnel creates in a pod netns (§5.2). */
export const INPOD_PACKET_MARK = 0x539;

export const LogFormat = { Plain: 'plain', Json: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `unset` tries IP_TRANSPARENT, `true` requires it, `false` never spoofs (§1.3). */
export type OrigSrcMode = 'try' | 'require' | 'off';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

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
  readonly origSrc: OrigSrcMode;
  /** `ISTIO_META_<K>` and parsed `ISTIO_METAJSON_<K>` entries, by `<K>`. */
  readonly proxyMetadata: Readonly<Record<string, unknown>>;
  /** Extra gRPC metadata from `CA_HEADER_<NAME>` / `XDS_HEADER_<NAME>`, names lowercased. */
  readonly caHeaders: Readonly<Record<string, string>>;
  readonly xdsHeaders: Readonly<Record<string, string>>;
  readonly adminAddress: ListenAddress;
  readonly statsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
  readonly packetMark: number;
}

type Environment = Readonly<Record<string, string | undefined>>;

const GO_DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/** Parses a Go duration (`24h`, `1h30m`, `90s`) or a bare number of seconds, into seconds. */
export function parseDurationSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(trimmed); match !== null; match = re.exec(trimmed)) {
    total += Number(match[1]) * (GO_DURATION_UNITS[match[2] ?? ''] ?? 0);
    consumed = re.lastIndex;
  }
  return consumed === trimmed.length && consumed > 0 ? total : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function prefixed(env: Environment, prefix: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith(prefix) && key.length > prefix.length && value !== undefined) {
      out.push([key.slice(prefix.length), value]);
    }
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkUrl(name: string, value: string, problems: string[]): void {
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      problems.push(`${name}: ${JSON.stringify(value)} must be an http(s) URL`);
    }
  } catch {
    problems.push(`${name}: ${JSON.stringify(value)} is not a URL (expected e.g. ${DEFAULT_ISTIOD_ADDRESS})`);
  }
}

/**
 * Parses the environment into a frozen `Config`.
 *
 * Throws `ConfigError` listing every invalid variable; nothing else in ztunnel reads `process.env`.
 */
export function loadConfig(env: Environment = process.env): Config {
  const problems: string[] = [];

  const xdsAddress = nonEmpty(env[Env.xdsAddress]) ?? DEFAULT_ISTIOD_ADDRESS;
  const caAddress = nonEmpty(env[Env.caAddress]) ?? xdsAddress;
  checkUrl(Env.xdsAddress, xdsAddress, problems);
  checkUrl(Env.caAddress, caAddress, problems);

  const podName = nonEmpty(env[Env.podName]) ?? '';
  const podNamespace = nonEmpty(env[Env.podNamespace]) ?? '';
  const nodeName = nonEmpty(env[Env.nodeName]) ?? '';
  if (podName === '') problems.push(`${Env.podName}: required (set it from metadata.name)`);
  if (podNamespace === '') problems.push(`${Env.podNamespace}: required (set it from metadata.namespace)`);
  if (nodeName === '') problems.push(`${Env.nodeName}: required (set it from spec.nodeName)`);

  const instanceIp = nonEmpty(env[Env.instanceIp]) ?? '1.1.1.1';
  if (isIP(instanceIp) === 0)
    problems.push(`${Env.instanceIp}: ${JSON.stringify(instanceIp)} is not an IP address`);

  const clusterId = nonEmpty(env[Env.clusterId]) ?? nonEmpty(env[Env.metaClusterId]) ?? 'Kubernetes';
  const clusterDomain = nonEmpty(env[Env.clusterDomain]) ?? 'cluster.local';

  let secretTtlSeconds = 86_400;
  const ttlText = nonEmpty(env[Env.secretTtl]);
  if (ttlText !== undefined) {
    const parsed = parseDurationSeconds(ttlText);
    if (parsed === undefined || parsed <= 0) {
      problems.push(`${Env.secretTtl}: ${JSON.stringify(ttlText)} is not a positive duration (e.g. 24h0m0s)`);
    } else {
      secretTtlSeconds = Math.round(parsed);
    }
  }

  const logFormatText = (nonEmpty(env[Env.logFormat]) ?? LogFormat.Plain).toLowerCase();
  let logFormat: LogFormat = LogFormat.Plain;
  if (logFormatText === 'json') logFormat = LogFormat.Json;
  else if (logFormatText !== 'plain') problems.push(`${Env.logFormat}: must be "json" or "plain"`);

  const levelText = (nonEmpty(env[Env.logLevel]) ?? 'info').toLowerCase();
  const logLevel = LOG_LEVELS.find(level => level === levelText);
  if (logLevel === undefined) problems.push(`${Env.logLevel}: must be one of ${LOG_LEVELS.join(', ')}`);

  let terminationGracePeriodMs = 5_000;
  const graceText = nonEmpty(env[Env.terminationGracePeriod]);
  if (graceText !== undefined) {
    const parsed = parseDurationSeconds(graceText);
    if (parsed === undefined)
      problems.push(`${Env.terminationGracePeriod}: ${JSON.stringify(graceText)} is not a duration`);
    else terminationGracePeriodMs = Math.round(parsed * 1000);
  }

  const origSrcText = nonEmpty(env[Env.enableOrigSrc])?.toLowerCase();
  let origSrc: OrigSrcMode = 'try';
  if (origSrcText === 'true') origSrc = 'require';
  else if (origSrcText === 'false') origSrc = 'off';
  else if (origSrcText !== undefined) problems.push(`${Env.enableOrigSrc}: must be "true" or "false"`);

  const proxyMetadata: Record<string, unknown> = {};
  for (const [key, value] of prefixed(env, Env.metaPrefix)) proxyMetadata[key] = value;
  for (const [key, value] of prefixed(env, Env.metaJsonPrefix)) {
    try {
      proxyMetadata[key] = JSON.parse(value) as unknown;
    } catch {
      problems.push(`${Env.metaJsonPrefix}${key}: not valid JSON`);
    }
  }
  if (!('CLUSTER_ID' in proxyMetadata)) proxyMetadata.CLUSTER_ID = clusterId;

  const headers = (prefix: string): Record<string, string> =>
    Object.fromEntries(
      prefixed(env, prefix).map(([key, value]) => [key.toLowerCase().replaceAll('_', '-'), value]),
    );

  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    xdsAddress,
    caAddress,
    xdsRootCaPath: nonEmpty(env[Env.xdsRootCa]) ?? DEFAULT_ROOT_CA_PATH,
    caRootCaPath: nonEmpty(env[Env.caRootCa]) ?? nonEmpty(env[Env.xdsRootCa]) ?? DEFAULT_ROOT_CA_PATH,
    altXdsHostname: nonEmpty(env[Env.altXdsHostname]),
    altCaHostname: nonEmpty(env[Env.altCaHostname]),
    tokenPath: DEFAULT_TOKEN_PATH,
    podName,
    podNamespace,
    nodeName,
    instanceIp,
    clusterId,
    clusterDomain,
    secretTtlSeconds,
    inpodUds: nonEmpty(env[Env.inpodUds]) ?? DEFAULT_INPOD_UDS,
    logFormat,
    logLevel: logLevel ?? 'info',
    terminationGracePeriodMs,
    origSrc,
    proxyMetadata: Object.freeze(proxyMetadata),
    caHeaders: Object.freeze(headers(Env.caHeaderPrefix)),
    xdsHeaders: Object.freeze(headers(Env.xdsHeaderPrefix)),
    adminAddress: Object.freeze({ host: '127.0.0.1', port: 15000 }),
    statsAddress: Object.freeze({ host: '0.0.0.0', port: 15020 }),
    readinessAddress: Object.freeze({ host: '0.0.0.0', port: 15021 }),
    packetMark: INPOD_PACKET_MARK,
  });
}

/** The node id ztunnel sends to istiod (§3.2). */
export function xdsNodeId(config: Pick<Config, 'instanceIp' | 'podName' | 'podNamespace'>): string {
  return nodeId({
    type: ProxyType.ztunnel,
    ip: config.instanceIp,
    podName: config.podName,
    namespace: config.podNamespace,
  });
}

/** The node metadata Struct contents ztunnel sends to istiod (§3.2). */
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
