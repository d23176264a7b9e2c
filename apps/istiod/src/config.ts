/**
 * The only module that reads environment variables and command-line flags.
 *
 * Names follow upstream istiod (pilot-discovery) so that existing manifests keep working.
 * `loadConfig` parses once into a frozen, typed `Config` and throws a `ConfigError` naming the
 * offending variable; every other module receives the `Config` (or a slice of it) as an argument.
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';

/** Environment variable names, as upstream istiod spells them. */
export const ENV = {
  podNamespace: 'POD_NAMESPACE',
  podName: 'POD_NAME',
  clusterId: 'CLUSTER_ID',
  trustedNodeAccounts: 'CA_TRUSTED_NODE_ACCOUNTS',
  enableAmbient: 'PILOT_ENABLE_AMBIENT',
  customHost: 'ISTIOD_CUSTOM_HOST',
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
} as const;

/** Command-line flag names (without the leading `--`). */
export const FLAGS = {
  domain: 'domain',
  httpAddr: 'httpAddr',
  secureGrpcAddr: 'secureGRPCAddr',
  monitoringAddr: 'monitoringAddr',
  debugAddr: 'debugAddr',
  kubeconfig: 'kubeconfig',
} as const;

export const LogFormat = { JSON: 'json', TEXT: 'text' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

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
  /** Require a bearer token on every xDS stream (upstream `XDS_AUTH`). */
  readonly xdsAuth: boolean;
  readonly httpAddr: ListenAddress;
  readonly secureGrpcAddr: ListenAddress;
  readonly monitoringAddr: ListenAddress;
  /** Debug views (syncz, WDS dump); always a loopback address. */
  readonly debugAddr: ListenAddress;
  /** Path to a kubeconfig; empty means in-cluster config (or `$KUBECONFIG`). */
  readonly kubeconfig: string;
  readonly logFormat: LogFormat;
  readonly logLevel: string;
}

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly argv: readonly string[];
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** Parses env and flags into a frozen `Config`. Throws `ConfigError` on the first bad value. */
export function loadConfig(sources: ConfigSources): Config {
  const { env } = sources;
  const flags = parseFlags(sources.argv);
  const str = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v === '' ? fallback : v;
  };
  const flag = (name: string, fallback: string): string => flags.get(name) ?? fallback;

  const podNamespace = str(ENV.podNamespace, 'istio-system');
  const logFormat = str(ENV.logFormat, LogFormat.TEXT);
  if (logFormat !== LogFormat.JSON && logFormat !== LogFormat.TEXT) {
    throw new ConfigError(ENV.logFormat, logFormat, '"json" or "text"');
  }
  const logLevel = str(ENV.logLevel, 'info');
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(ENV.logLevel, logLevel, [...LOG_LEVELS].join('|'));

  const debugAddr = parseListenAddress(FLAGS.debugAddr, flag(FLAGS.debugAddr, '127.0.0.1:9876'));
  if (!isLoopbackHost(debugAddr.host)) {
    // Debug views list every proxy and every workload: never expose them beyond the pod.
    throw new ConfigError(`--${FLAGS.debugAddr}`, flag(FLAGS.debugAddr, ''), 'a loopback address');
  }

  const config: Config = {
    podNamespace,
    podName: str(ENV.podName, 'istiod'),
    clusterId: str(ENV.clusterId, 'Kubernetes'),
    trustDomain: str(ENV.trustDomain, 'cluster.local'),
    domain: flag(FLAGS.domain, 'cluster.local'),
    enableAmbient: parseBool(ENV.enableAmbient, str(ENV.enableAmbient, 'true')),
    trustedNodeAccounts: parseAccounts(str(ENV.trustedNodeAccounts, 'istio-system/ztunnel')),
    customHosts: splitList(str(ENV.customHost, '')),
    rootCaDir: str(ENV.rootCaDir, './etc/cacerts'),
    tokenAudiences: splitList(str(ENV.tokenAudiences, 'istio-ca')),
    defaultCertTtlSeconds: parseDurationSeconds(ENV.defaultCertTtl, str(ENV.defaultCertTtl, '24h')),
    maxCertTtlSeconds: parseDurationSeconds(ENV.maxCertTtl, str(ENV.maxCertTtl, '2160h')),
    selfSignedCaTtlSeconds: parseDurationSeconds(ENV.selfSignedCaTtl, str(ENV.selfSignedCaTtl, '87600h')),
    debounceAfterMs: parseDurationMs(ENV.debounceAfter, str(ENV.debounceAfter, '100ms')),
    debounceMaxMs: parseDurationMs(ENV.debounceMax, str(ENV.debounceMax, '10s')),
    xdsAuth: parseBool(ENV.xdsAuth, str(ENV.xdsAuth, 'true')),
    httpAddr: parseListenAddress(FLAGS.httpAddr, flag(FLAGS.httpAddr, ':8080')),
    secureGrpcAddr: parseListenAddress(FLAGS.secureGrpcAddr, flag(FLAGS.secureGrpcAddr, ':15012')),
    monitoringAddr: parseListenAddress(FLAGS.monitoringAddr, flag(FLAGS.monitoringAddr, ':15014')),
    debugAddr,
    kubeconfig: flag(FLAGS.kubeconfig, str(ENV.kubeconfig, '')),
    logFormat,
    logLevel,
  };
  return Object.freeze(config);
}

/** `--name=value` and `--name value`; a single leading dash is accepted as Go's flag package does. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const known = new Set<string>(Object.values(FLAGS));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) continue;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    if (!known.has(name))
      throw new ConfigError(`--${name}`, arg, `one of ${[...known].map(k => `--${k}`).join(', ')}`);
    if (eq !== -1) {
      out.set(name, body.slice(eq + 1));
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`--${name}`, '', 'a value');
      out.set(name, next);
      i++;
    }
  }
  return out;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '');
}

function parseBool(name: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ConfigError(name, value, '"true" or "false"');
}

function parseAccounts(value: string): ServiceAccountRef[] {
  return splitList(value).map(entry => {
    const parts = entry.split('/');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new ConfigError(ENV.trustedNodeAccounts, value, 'a comma list of "<namespace>/<serviceaccount>"');
    }
    return { namespace: parts[0]!, serviceAccount: parts[1]! };
  });
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration such as `100ms`, `24h` or `1h30m` into milliseconds. */
export function parseGoDurationMs(value: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  for (let guard = 0; guard < 16 && re.lastIndex < value.length; guard++) {
    const m = re.exec(value);
    if (m === null) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === value.length && value.length > 0 ? total : undefined;
}

function parseDurationMs(name: string, value: string): number {
  const ms = parseGoDurationMs(value);
  if (ms === undefined) throw new ConfigError(name, value, 'a duration such as 100ms, 10s or 24h');
  return ms;
}

function parseDurationSeconds(name: string, value: string): number {
  return Math.floor(parseDurationMs(name, value) / 1000);
}

function parseListenAddress(name: string, value: string): ListenAddress {
  const idx = value.lastIndexOf(':');
  const host = idx === -1 ? '' : value.slice(0, idx).replace(/^\[(.*)\]$/, '$1');
  const port = Number(idx === -1 ? value : value.slice(idx + 1));
  if (
    !Number.isInteger(port) ||
    port < 0 ||
    port > 65535 ||
    (host !== '' && isIP(host) === 0 && host !== 'localhost')
  ) {
    throw new ConfigError(`--${name}`, value, '"[host]:port" with an IP host');
  }
  return { host: host === '' ? '::' : host, port };
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
