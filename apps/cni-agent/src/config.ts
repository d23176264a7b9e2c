/**
 * The only module that reads environment variables and command-line flags.
 *
 * Names follow upstream istio-cni where one exists (flag `ztunnel-uds-address`, run dir
 * `/var/run/istio-cni`, `HOST_PROBE_SNAT_ADDRESS`, `AMBIENT_DNS_CAPTURE`, ...). A flag wins over its
 * environment variable. `loadConfig` parses once into a frozen `Config` and throws a
 * `CniConfigError` naming the offending setting.
 */
import { isIP } from 'node:net';
import { CniConfigError } from './errors.ts';

/** Environment variable names. */
export const ENV = {
  nodeName: 'NODE_NAME',
  podNamespace: 'POD_NAMESPACE',
  ztunnelUdsAddress: 'ZTUNNEL_UDS_ADDRESS',
  runDir: 'CNI_AGENT_RUN_DIR',
  dnsCapture: 'AMBIENT_DNS_CAPTURE',
  ipv6: 'AMBIENT_IPV6',
  probeSnatV4: 'HOST_PROBE_SNAT_ADDRESS',
  probeSnatV6: 'HOST_PROBE_V6_SNAT_ADDRESS',
  reconcileOnStartup: 'AMBIENT_RECONCILE_POD_RULES_ON_STARTUP',
  driftCheckInterval: 'AMBIENT_DRIFT_CHECK_INTERVAL_SECONDS',
  hostProbeRules: 'AMBIENT_HOST_PROBE_RULES',
  kubeletUid: 'KUBELET_UID',
  netnsScanDirs: 'AMBIENT_NETNS_SCAN_DIRS',
  readinessPort: 'READINESS_PORT',
  monitoringPort: 'MONITORING_PORT',
  logFormat: 'LOG_FORMAT',
  logLevel: 'LOG_LEVEL',
  kubeconfig: 'KUBECONFIG',
} as const;

/** Command-line flag names (without `--`). */
export const FLAGS = {
  ztunnelUdsAddress: 'ztunnel-uds-address',
  runDir: 'cni-agent-run-dir',
  monitoringPort: 'monitoring-port',
  readinessPort: 'readiness-port',
  logAsJson: 'log_as_json',
  kubeconfig: 'kubeconfig',
} as const;

export const DEFAULTS = {
  ztunnelUdsAddress: '/var/run/ztunnel/ztunnel.sock',
  runDir: '/var/run/istio-cni',
  systemNamespace: 'istio-system',
  probeSnatV4: '169.254.7.127',
  probeSnatV6: 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
  readinessPort: 8000,
  monitoringPort: 15014,
  driftCheckIntervalSeconds: 60,
} as const;

/** The file name of the plugin-event socket inside the run dir (upstream name). */
export const PLUGIN_EVENT_SOCKET = 'pluginevent.sock';

export const LogFormat = { JSON: 'json', TEXT: 'text' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export interface Config {
  readonly nodeName: string;
  /** The system namespace (the agent's own); ztunnel pods there are never enrolled. */
  readonly systemNamespace: string;
  /** ZDS SOCK_SEQPACKET listening path. */
  readonly ztunnelUdsAddress: string;
  readonly runDir: string;
  /** `<runDir>/pluginevent.sock`. */
  readonly pluginEventSocket: string;
  readonly dnsCapture: boolean;
  readonly ipv6: boolean;
  readonly probeSnatV4: string;
  readonly probeSnatV6: string;
  readonly reconcileOnStartup: boolean;
  /** 0 turns the periodic drift check off. */
  readonly driftCheckIntervalMs: number;
  readonly hostProbeRules: boolean;
  /** Match kubelet's probes by socket uid; `null` matches by local source address. */
  readonly kubeletUid: number | null;
  /** Directories of named netns searched for pods the plugin never reported; empty turns it off. */
  readonly netnsScanDirs: readonly string[];
  readonly readinessPort: number;
  readonly monitoringPort: number;
  readonly logFormat: LogFormat;
  readonly logLevel: string;
  readonly kubeconfig: string | null;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parses `--name=value`, `--name value` and bare boolean `--name`. Unknown flags are rejected. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const known = new Set<string>(Object.values(FLAGS));
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new CniConfigError(arg, 'positional arguments are not accepted');
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.has(name))
      throw new CniConfigError(`--${name}`, `unknown flag; known: ${[...known].join(', ')}`);
    if (eq >= 0) {
      flags.set(name, arg.slice(eq + 1));
    } else if (name === FLAGS.logAsJson) {
      flags.set(name, 'true');
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new CniConfigError(`--${name}`, 'needs a value');
      flags.set(name, value);
      i++;
    }
  }
  return flags;
}

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function bool(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined) return fallback;
  const v = raw.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new CniConfigError(name, `'${raw}' is not a boolean (true/false)`);
}

function int(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new CniConfigError(name, `'${raw}' is not a non-negative integer`);
  const n = Number(raw);
  if (n < min || n > max) throw new CniConfigError(name, `${n} is outside ${min}..${max}`);
  return n;
}

function address(name: string, raw: string | undefined, fallback: string, family: 4 | 6): string {
  const v = raw ?? fallback;
  if (isIP(v) !== family) throw new CniConfigError(name, `'${v}' is not an IPv${family} address`);
  return v;
}

function absolutePath(name: string, raw: string | undefined, fallback: string): string {
  const v = raw ?? fallback;
  if (!v.startsWith('/')) throw new CniConfigError(name, `'${v}' is not an absolute path`);
  return v.length > 1 && v.endsWith('/') ? v.slice(0, -1) : v;
}

/** Reads the configuration once; throws `CniConfigError` on the first bad setting. */
export function loadConfig(env: Env, argv: readonly string[] = []): Config {
  const flags = parseFlags(argv);
  const nodeName = nonEmpty(env, ENV.nodeName);
  if (nodeName === undefined) {
    throw new CniConfigError(ENV.nodeName, 'is required (set it from spec.nodeName with the downward API)');
  }
  const runDir = absolutePath(
    `--${FLAGS.runDir}`,
    flags.get(FLAGS.runDir) ?? nonEmpty(env, ENV.runDir),
    DEFAULTS.runDir,
  );
  const logFormatRaw = flags.has(FLAGS.logAsJson)
    ? bool(`--${FLAGS.logAsJson}`, flags.get(FLAGS.logAsJson), false)
      ? LogFormat.JSON
      : LogFormat.TEXT
    : (nonEmpty(env, ENV.logFormat) ?? LogFormat.TEXT);
  if (logFormatRaw !== LogFormat.JSON && logFormatRaw !== LogFormat.TEXT) {
    throw new CniConfigError(ENV.logFormat, `'${logFormatRaw}' is not 'json' or 'text'`);
  }
  const logLevel = nonEmpty(env, ENV.logLevel) ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw new CniConfigError(ENV.logLevel, `'${logLevel}' is not a log level`);
  }
  const kubeletUidRaw = nonEmpty(env, ENV.kubeletUid);
  const config: Config = {
    nodeName,
    systemNamespace: nonEmpty(env, ENV.podNamespace) ?? DEFAULTS.systemNamespace,
    ztunnelUdsAddress: absolutePath(
      `--${FLAGS.ztunnelUdsAddress}`,
      flags.get(FLAGS.ztunnelUdsAddress) ?? nonEmpty(env, ENV.ztunnelUdsAddress),
      DEFAULTS.ztunnelUdsAddress,
    ),
    runDir,
    pluginEventSocket: `${runDir}/${PLUGIN_EVENT_SOCKET}`,
    dnsCapture: bool(ENV.dnsCapture, nonEmpty(env, ENV.dnsCapture), true),
    ipv6: bool(ENV.ipv6, nonEmpty(env, ENV.ipv6), true),
    probeSnatV4: address(ENV.probeSnatV4, nonEmpty(env, ENV.probeSnatV4), DEFAULTS.probeSnatV4, 4),
    probeSnatV6: address(ENV.probeSnatV6, nonEmpty(env, ENV.probeSnatV6), DEFAULTS.probeSnatV6, 6),
    reconcileOnStartup: bool(ENV.reconcileOnStartup, nonEmpty(env, ENV.reconcileOnStartup), true),
    driftCheckIntervalMs:
      int(
        ENV.driftCheckInterval,
        nonEmpty(env, ENV.driftCheckInterval),
        DEFAULTS.driftCheckIntervalSeconds,
        0,
        86_400,
      ) * 1000,
    hostProbeRules: bool(ENV.hostProbeRules, nonEmpty(env, ENV.hostProbeRules), true),
    kubeletUid: kubeletUidRaw === undefined ? null : int(ENV.kubeletUid, kubeletUidRaw, 0, 0, 0xfffffffe),
    netnsScanDirs: (env[ENV.netnsScanDirs] ?? '/var/run/netns')
      .split(',')
      .map(d => d.trim())
      .filter(d => d !== '')
      .map(d => absolutePath(ENV.netnsScanDirs, d, d)),
    readinessPort: int(
      `--${FLAGS.readinessPort}`,
      flags.get(FLAGS.readinessPort) ?? nonEmpty(env, ENV.readinessPort),
      DEFAULTS.readinessPort,
      0,
      65_535,
    ),
    monitoringPort: int(
      `--${FLAGS.monitoringPort}`,
      flags.get(FLAGS.monitoringPort) ?? nonEmpty(env, ENV.monitoringPort),
      DEFAULTS.monitoringPort,
      0,
      65_535,
    ),
    logFormat: logFormatRaw,
    logLevel,
    kubeconfig: flags.get(FLAGS.kubeconfig) ?? nonEmpty(env, ENV.kubeconfig) ?? null,
  };
  return Object.freeze(config);
}
