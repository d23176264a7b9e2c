/**
 * The only module that reads environment variables and command-line flags (the agent's and the
 * chained plugin's).
 *
 * Names follow upstream istio-cni where one exists (flag `ztunnel-uds-address`, run dir
 * `/var/run/istio-cni`, `HOST_PROBE_SNAT_ADDRESS`, `AMBIENT_DNS_CAPTURE`, ...). A flag wins over its
 * environment variable. `loadConfig` parses once (through `ConfigReader` of `@ambient-mesh/runtime`)
 * into a frozen `Config` and throws one `CniConfigError` naming every offending setting.
 *
 * DNS capture defaults to ON, as Istio 1.27 (ztunnel's DNS proxy serves 15053, docs/dns.md).
 * IPv6 capture defaults to ON, as Istio 1.27 (`ambient.ipv6`): ztunnel serves its in-pod listeners
 * on both families (docs/compatibility.md#dual-stack).
 */
import { ConfigError, ConfigReader, LogFormat, parseFlags as parseFlagsOf } from '@ambient-mesh/runtime';
import type { Environment, FlagSpecs, LogLevel, Parsed } from '@ambient-mesh/runtime';
import { CniErrorCode } from './errors.ts';

export { LogFormat };

/** Environment variable names. */
export const ENV = {
  nodeName: 'NODE_NAME',
  podName: 'POD_NAME',
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
  /** Ours: user ids whose processes may connect to the ZDS socket as ztunnel (besides the agent's own). */
  zdsAllowedUids: 'ZDS_ALLOWED_UIDS',
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
  /** On, as Istio 1.27: ztunnel's DNS proxy answers on 15053 in each pod. */
  dnsCapture: true,
  /** Off: ztunnel binds its in-pod listeners on IPv4 only. */
  ipv6: true,
} as const;

/** The file name of the plugin-event socket inside the run dir (upstream name). */
export const PLUGIN_EVENT_SOCKET = 'pluginevent.sock';

export interface Config {
  readonly nodeName: string;
  /** The system namespace (the agent's own); ztunnel pods there are never enrolled. */
  readonly systemNamespace: string;
  /**
   * The agent's own pod (downward API), to tell a restart from an uninstall when it stops
   * (`shutdown.ts`); `null` when unset, which counts as an uninstall, as upstream.
   */
  readonly podName: string | null;
  /** ZDS SOCK_SEQPACKET listening path. */
  readonly ztunnelUdsAddress: string;
  /**
   * User ids allowed to connect to the ZDS socket (checked with SO_PEERCRED); the agent's own
   * uid is always allowed. Default: root only, as ztunnel runs.
   */
  readonly zdsAllowedUids: readonly number[];
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
  readonly logLevel: LogLevel;
  readonly kubeconfig: string | null;
}

const FLAG_SPECS: FlagSpecs = Object.fromEntries(
  Object.values(FLAGS).map(name => [name, name === FLAGS.logAsJson ? { boolean: true } : {}]),
);

const component = 'cni-agent';

/** Parses `--name=value`, `--name value` and bare boolean `--name`. Unknown flags are rejected. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const parsed = parseFlagsOf(argv, FLAG_SPECS);
  if (parsed.problems.length > 0) {
    throw new ConfigError(parsed.problems, { component, code: CniErrorCode.config });
  }
  return new Map(parsed.values);
}

function absolutePath(raw: string): Parsed<string> {
  if (!raw.startsWith('/')) return { ok: false, message: `'${raw}' is not an absolute path` };
  return { ok: true, value: raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw };
}

/**
 * Reads the configuration once (default: the process's environment and arguments); throws
 * `CniConfigError` listing every bad setting.
 */
export function loadConfig(env?: Environment, argv?: readonly string[]): Config {
  // The process's own arguments only when reading the process's own environment.
  const r = new ConfigReader({
    env: env ?? process.env,
    argv: argv ?? (env === undefined ? process.argv.slice(2) : []),
    flags: FLAG_SPECS,
  });
  const nodeName = r.required(ENV.nodeName, 'set it from spec.nodeName with the downward API');
  const path = (source: { flag?: string; env?: string }, fallback: string): string =>
    r.parse(source, absolutePath, fallback);
  const runDir = path({ flag: FLAGS.runDir, env: ENV.runDir }, DEFAULTS.runDir);
  const logFormat = r.hasFlag(FLAGS.logAsJson)
    ? r.bool({ flag: FLAGS.logAsJson }, false)
      ? LogFormat.Json
      : LogFormat.Text
    : r.logFormat(ENV.logFormat);
  const zdsAllowedUids: number[] = [];
  for (const entry of (r.envRaw(ENV.zdsAllowedUids) ?? '0').split(',')) {
    const trimmed = entry.trim();
    if (trimmed === '') continue;
    if (/^\d+$/.test(trimmed) && Number(trimmed) <= 0xfffffffe) zdsAllowedUids.push(Number(trimmed));
    else
      r.problem(ENV.zdsAllowedUids, `${JSON.stringify(trimmed)} is not a user id (comma list, e.g. 0,1337)`);
  }
  const kubeletUid = r.optional(ENV.kubeletUid);
  const netnsScanDirs: string[] = [];
  for (const dir of (r.envRaw(ENV.netnsScanDirs) ?? '/var/run/netns').split(',')) {
    const trimmed = dir.trim();
    if (trimmed === '') continue;
    const parsed = absolutePath(trimmed);
    if (parsed.ok) netnsScanDirs.push(parsed.value);
    else r.problem(ENV.netnsScanDirs, parsed.message);
  }
  return r.finish(
    {
      nodeName,
      systemNamespace: r.string(ENV.podNamespace, DEFAULTS.systemNamespace),
      podName: r.optional(ENV.podName) ?? null,
      ztunnelUdsAddress: path(
        { flag: FLAGS.ztunnelUdsAddress, env: ENV.ztunnelUdsAddress },
        DEFAULTS.ztunnelUdsAddress,
      ),
      zdsAllowedUids,
      runDir,
      pluginEventSocket: `${runDir}/${PLUGIN_EVENT_SOCKET}`,
      dnsCapture: r.bool(ENV.dnsCapture, DEFAULTS.dnsCapture),
      ipv6: r.bool(ENV.ipv6, DEFAULTS.ipv6),
      probeSnatV4: r.ip(ENV.probeSnatV4, DEFAULTS.probeSnatV4, 4),
      probeSnatV6: r.ip(ENV.probeSnatV6, DEFAULTS.probeSnatV6, 6),
      reconcileOnStartup: r.bool(ENV.reconcileOnStartup, true),
      driftCheckIntervalMs:
        r.int(ENV.driftCheckInterval, DEFAULTS.driftCheckIntervalSeconds, { min: 0, max: 86_400 }) * 1000,
      hostProbeRules: r.bool(ENV.hostProbeRules, true),
      kubeletUid: kubeletUid === undefined ? null : r.int(ENV.kubeletUid, 0, { min: 0, max: 0xfffffffe }),
      netnsScanDirs,
      readinessPort: r.port({ flag: FLAGS.readinessPort, env: ENV.readinessPort }, DEFAULTS.readinessPort),
      monitoringPort: r.port(
        { flag: FLAGS.monitoringPort, env: ENV.monitoringPort },
        DEFAULTS.monitoringPort,
      ),
      logFormat,
      logLevel: r.logLevel(ENV.logLevel),
      kubeconfig: r.optional({ flag: FLAGS.kubeconfig, env: ENV.kubeconfig }) ?? null,
    },
    { component, code: CniErrorCode.config },
  );
}

/**
 * The chained plugin's environment: the `CNI_*` variables the container runtime sets (the
 * plugin executable reads nothing else). Parsing them is `parseEnvironment`'s job (CNI errors).
 */
export function loadPluginEnvironment(
  env: Environment = process.env,
): Readonly<Record<string, string | undefined>> {
  return Object.freeze(Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith('CNI_'))));
}
