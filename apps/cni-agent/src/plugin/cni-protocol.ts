/**
 * The CNI spec as the chained plugin sees it (CNI 1.0/1.1, backwards to 0.3.0): the environment,
 * the network configuration on stdin, error objects, and the event body sent to the node agent.
 * Pure functions, shared by the plugin executable and the agent's event endpoint.
 */

export const SUPPORTED_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** Well-known CNI error codes (spec §"Error"), plus ours from 100 up. */
export const CniErrorCodes = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  /** The node agent refused or failed to enrol the pod. */
  agentFailed: 100,
} as const;

export interface CniError {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

export const CniCommand = {
  add: 'ADD',
  del: 'DEL',
  check: 'CHECK',
  version: 'VERSION',
  status: 'STATUS',
  gc: 'GC',
} as const;
export type CniCommand = (typeof CniCommand)[keyof typeof CniCommand];

export interface CniEnvironment {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  /** `CNI_ARGS` as key/value pairs (K8S_POD_NAME, K8S_POD_NAMESPACE, ...). */
  readonly args: ReadonlyMap<string, string>;
}

/** The plugin's network configuration (the fields we read). */
export interface PluginConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  readonly prevResult: Record<string, unknown> | undefined;
  /** Where the agent's `pluginevent.sock` lives (upstream key). */
  readonly agentRunDir: string;
  /** Namespaces whose pods are never reported. */
  readonly excludeNamespaces: readonly string[];
  /** The mesh's own namespace (upstream key `pod_namespace`), where the ztunnel pods run. */
  readonly podNamespace: string;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: number; readonly msg: string };

const fail = (code: number, msg: string): { ok: false; code: number; msg: string } => ({
  ok: false,
  code,
  msg,
});

/** Parses `CNI_ARGS` (`K1=V1;K2=V2`). */
export function parseCniArgs(raw: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  for (const part of (raw ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) args.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return args;
}

/** Reads the CNI_* variables the command needs. */
export function parseEnvironment(env: Readonly<Record<string, string | undefined>>): Parsed<CniEnvironment> {
  const command = env.CNI_COMMAND;
  const commands: readonly string[] = Object.values(CniCommand);
  if (command === undefined || !commands.includes(command)) {
    return fail(
      CniErrorCodes.invalidEnvironment,
      `CNI_COMMAND '${command ?? ''}' is not one of ${commands.join(', ')}`,
    );
  }
  const c = command as CniCommand;
  const needs = c === CniCommand.add || c === CniCommand.del || c === CniCommand.check;
  const containerId = env.CNI_CONTAINERID ?? '';
  const netns = env.CNI_NETNS ?? '';
  const ifName = env.CNI_IFNAME ?? '';
  if (needs && containerId === '')
    return fail(CniErrorCodes.invalidEnvironment, 'CNI_CONTAINERID is required');
  if (needs && ifName === '') return fail(CniErrorCodes.invalidEnvironment, 'CNI_IFNAME is required');
  if (c === CniCommand.add && netns === '')
    return fail(CniErrorCodes.invalidEnvironment, 'CNI_NETNS is required for ADD');
  return { ok: true, value: { command: c, containerId, netns, ifName, args: parseCniArgs(env.CNI_ARGS) } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The mesh namespace when the configuration names none. */
export const DEFAULT_POD_NAMESPACE = 'istio-system';

/** Parses and checks the network configuration from stdin. */
export function parsePluginConfig(stdin: string, defaultRunDir: string): Parsed<PluginConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    return fail(
      CniErrorCodes.decodeFailure,
      `the network configuration is not JSON: ${(err as Error).message}`,
    );
  }
  if (!isObject(raw))
    return fail(CniErrorCodes.decodeFailure, 'the network configuration is not a JSON object');
  const { cniVersion, name, type, prevResult } = raw;
  if (typeof cniVersion !== 'string' || !(SUPPORTED_CNI_VERSIONS as readonly string[]).includes(cniVersion)) {
    return fail(
      CniErrorCodes.incompatibleVersion,
      `cniVersion '${String(cniVersion)}' is not supported (supported: ${SUPPORTED_CNI_VERSIONS.join(', ')})`,
    );
  }
  if (typeof type !== 'string' || type === '') return fail(CniErrorCodes.invalidConfig, "'type' is required");
  if (prevResult !== undefined && !isObject(prevResult)) {
    return fail(CniErrorCodes.invalidConfig, "'prevResult' must be an object");
  }
  const runDir = raw.cni_agent_run_dir;
  if (runDir !== undefined && (typeof runDir !== 'string' || !runDir.startsWith('/'))) {
    return fail(CniErrorCodes.invalidConfig, "'cni_agent_run_dir' must be an absolute path");
  }
  const exclude = raw.exclude_namespaces;
  if (exclude !== undefined && !(Array.isArray(exclude) && exclude.every(e => typeof e === 'string'))) {
    return fail(CniErrorCodes.invalidConfig, "'exclude_namespaces' must be a list of strings");
  }
  const podNamespace = raw.pod_namespace;
  if (podNamespace !== undefined && typeof podNamespace !== 'string') {
    return fail(CniErrorCodes.invalidConfig, "'pod_namespace' must be a string");
  }
  return {
    ok: true,
    value: {
      cniVersion,
      name: typeof name === 'string' ? name : '',
      type,
      prevResult,
      agentRunDir: runDir ?? defaultRunDir,
      excludeNamespaces: exclude ?? [],
      podNamespace: podNamespace === undefined || podNamespace === '' ? DEFAULT_POD_NAMESPACE : podNamespace,
    },
  };
}

/** One IP of the event body, with Go's `net.IPNet` JSON shape (Mask is base64 bytes). */
export interface PluginEventIp {
  readonly Interface?: number;
  readonly Address: { readonly IP: string; readonly Mask: string };
  readonly Gateway?: string;
}

/** The body of `POST /cmdadd` (upstream Go field names). */
export interface PluginEvent {
  readonly Netns: string;
  readonly PodName: string;
  readonly PodNamespace: string;
  readonly IPs: readonly PluginEventIp[];
}

function maskBytes(prefix: number, bits: number): Buffer {
  const bytes = Buffer.alloc(bits / 8);
  for (let i = 0; i < bytes.length; i++) {
    const take = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
  }
  return bytes;
}

/** The `ips` of a CNI result (0.3+ and 1.x) as event IPs. */
export function eventIpsOf(prevResult: Record<string, unknown> | undefined): PluginEventIp[] {
  const ips = prevResult?.ips;
  if (!Array.isArray(ips)) return [];
  const out: PluginEventIp[] = [];
  for (const entry of ips) {
    if (!isObject(entry) || typeof entry.address !== 'string') continue;
    const [ip, prefixRaw] = entry.address.split('/');
    if (ip === undefined || ip === '') continue;
    const v6 = ip.includes(':');
    const bits = v6 ? 128 : 32;
    const prefix = prefixRaw === undefined ? bits : Number(prefixRaw);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) continue;
    out.push({
      ...(typeof entry.interface === 'number' ? { Interface: entry.interface } : {}),
      Address: { IP: ip, Mask: maskBytes(prefix, bits).toString('base64') },
      ...(typeof entry.gateway === 'string' ? { Gateway: entry.gateway } : {}),
    });
  }
  return out;
}
