/**
 * The chained CNI plugin's logic, with I/O injected: on ADD it reports the pod to the node agent
 * (`POST /cmdadd` on `<run dir>/pluginevent.sock`) and passes `prevResult` through, so the pod is
 * redirected before its containers start. An unreachable agent or a non-200 answer fails ADD with
 * a CNI error object. Pods of excluded namespaces and the ztunnel pods themselves (which must
 * never be captured, and start before the agent's socket may be up) pass through without
 * contacting the agent. DEL, CHECK, STATUS and GC succeed without contacting the agent (the agent
 * learns about deletions from its pod informer).
 */
import {
  CniCommand,
  CniErrorCodes,
  SUPPORTED_CNI_VERSIONS,
  eventIpsOf,
  parseEnvironment,
  parsePluginConfig,
} from './cni-protocol.ts';
import type { CniError, PluginEvent } from './cni-protocol.ts';

export const DEFAULT_AGENT_RUN_DIR = '/var/run/istio-cni';
export const PLUGIN_EVENT_PATH = '/cmdadd';

export interface AgentReply {
  readonly status: number;
  readonly body: string;
}

export interface PluginIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
  /** POSTs `body` to the agent's unix socket; rejects when unreachable. */
  readonly post: (socketPath: string, path: string, body: string) => Promise<AgentReply>;
}

export interface PluginOutput {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

function errorOutput(cniVersion: string, code: number, msg: string, details?: string): PluginOutput {
  const error: CniError =
    details === undefined ? { cniVersion, code, msg } : { cniVersion, code, msg, details };
  return { exitCode: 1, stdout: `${JSON.stringify(error)}\n`, stderr: '' };
}

function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' ? v : '1.0.0';
  } catch {
    return '1.0.0';
  }
}

/** Name prefix of the ztunnel DaemonSet's pods (`ztunnel-<hash>`). */
export const ZTUNNEL_POD_PREFIX = 'ztunnel-';

/**
 * Whether a pod is one of the mesh's ztunnel pods: in the mesh namespace and named after the
 * ztunnel DaemonSet. (Upstream checks the `app=ztunnel` label through the API; the plugin only
 * has the CNI_ARGS, so it uses the DaemonSet's pod naming.)
 */
export function isZtunnelPod(podNamespace: string, podName: string, meshNamespace: string): boolean {
  return podNamespace === meshNamespace && podName.startsWith(ZTUNNEL_POD_PREFIX);
}

export async function runPlugin(io: PluginIo): Promise<PluginOutput> {
  const fallbackVersion = versionOf(io.stdin);
  const env = parseEnvironment(io.env);
  if (!env.ok) return errorOutput(fallbackVersion, env.code, env.msg);
  if (env.value.command === CniCommand.version) {
    const info = { cniVersion: '1.1.0', supportedVersions: SUPPORTED_CNI_VERSIONS };
    return { exitCode: 0, stdout: `${JSON.stringify(info)}\n`, stderr: '' };
  }
  const config = parsePluginConfig(io.stdin, DEFAULT_AGENT_RUN_DIR);
  if (!config.ok) return errorOutput(fallbackVersion, config.code, config.msg);
  const conf = config.value;
  if (env.value.command !== CniCommand.add) return { exitCode: 0, stdout: '', stderr: '' };

  const result = `${JSON.stringify({ ...(conf.prevResult ?? {}), cniVersion: conf.cniVersion })}\n`;
  const podName = env.value.args.get('K8S_POD_NAME');
  const podNamespace = env.value.args.get('K8S_POD_NAMESPACE');
  if (podName === undefined || podNamespace === undefined || podName === '' || podNamespace === '') {
    return {
      exitCode: 0,
      stdout: result,
      stderr: 'not a Kubernetes pod (no K8S_POD_NAME/K8S_POD_NAMESPACE): skipped\n',
    };
  }
  if (conf.excludeNamespaces.includes(podNamespace)) {
    return { exitCode: 0, stdout: result, stderr: `namespace ${podNamespace} is excluded: skipped\n` };
  }
  if (isZtunnelPod(podNamespace, podName, conf.podNamespace)) {
    return { exitCode: 0, stdout: result, stderr: `ztunnel pod ${podNamespace}/${podName}: skipped\n` };
  }
  const event: PluginEvent = {
    Netns: env.value.netns,
    PodName: podName,
    PodNamespace: podNamespace,
    IPs: eventIpsOf(conf.prevResult),
  };
  const socketPath = `${conf.agentRunDir}/pluginevent.sock`;
  let reply: AgentReply;
  try {
    reply = await io.post(socketPath, PLUGIN_EVENT_PATH, JSON.stringify(event));
  } catch (err) {
    return errorOutput(
      conf.cniVersion,
      CniErrorCodes.tryAgainLater,
      `the ambient CNI node agent is unreachable at ${socketPath}`,
      `${(err as Error).message}; check that the cni-agent DaemonSet pod runs on this node`,
    );
  }
  if (reply.status !== 200) {
    return errorOutput(
      conf.cniVersion,
      CniErrorCodes.agentFailed,
      `the ambient CNI node agent could not enrol pod ${podNamespace}/${podName} (HTTP ${reply.status})`,
      reply.body.trim().slice(0, 1000),
    );
  }
  return { exitCode: 0, stdout: result, stderr: '' };
}
