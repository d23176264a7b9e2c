/**
 * Typed errors of the CNI agent and plugin. Codes are prefixed `CNI_` and are stable; messages
 * say what to check.
 */
import { MeshError } from '@ambient-mesh/errors';

/** Stable codes of the CNI agent and plugin. */
export const CniErrorCode = {
  config: 'CNI_CONFIG_INVALID',
  netnsUnavailable: 'CNI_NETNS_UNAVAILABLE',
  rulesFailed: 'CNI_RULES_FAILED',
  zdsProtocol: 'CNI_ZDS_PROTOCOL',
  zdsTimeout: 'CNI_ZDS_TIMEOUT',
  zdsMessageTooLarge: 'CNI_ZDS_MESSAGE_TOO_LARGE',
  kubeFailed: 'CNI_KUBE_FAILED',
  pluginEvent: 'CNI_PLUGIN_EVENT_INVALID',
} as const;
export type CniErrorCode = (typeof CniErrorCode)[keyof typeof CniErrorCode];

/**
 * Environment variables or flags have values the agent cannot use: the runtime's `ConfigError`,
 * thrown with code `CNI_CONFIG_INVALID`; `setting` names the first, `settings` all of them.
 */
export { ConfigError as CniConfigError } from '@ambient-mesh/runtime';

/** Where the agent's RBAC is installed from (the ClusterRole `ambient-cni-agent`). */
export const RBAC_MANIFEST = 'deploy/cni-agent/cni-agent.yaml';

/** A pod's network namespace could not be found or opened (the sandbox may be gone). */
export class NetnsUnavailableError extends MeshError {
  readonly pod: string;

  constructor(pod: string, detail: string, cause?: unknown) {
    super(
      CniErrorCode.netnsUnavailable,
      `network namespace of pod ${pod} is unavailable: ${detail}; the pod sandbox may have been removed`,
      { cause },
    );
    this.pod = pod;
  }
}

/** Installing, checking or removing the redirection rules failed. */
export class RulesFailedError extends MeshError {
  readonly pod: string;

  constructor(pod: string, step: string, cause: unknown) {
    super(
      CniErrorCode.rulesFailed,
      `${step} of the redirection rules for pod ${pod} failed; check that nft and ip are installed ` +
        `and the agent has CAP_NET_ADMIN and CAP_SYS_ADMIN`,
      { cause },
    );
    this.pod = pod;
  }
}

/** A ztunnel broke the ZDS protocol (garbage, unexpected message, fds where none belong). */
export class ZdsProtocolError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super(CniErrorCode.zdsProtocol, `ZDS protocol error: ${detail}; the ztunnel connection is closed`, {
      cause,
    });
  }
}

/** A ztunnel did not answer in time. */
export class ZdsTimeoutError extends MeshError {
  constructor(what: string, ms: number) {
    super(CniErrorCode.zdsTimeout, `ztunnel did not send ${what} within ${ms} ms; the connection is closed`);
  }
}

/** A ZDS message would not fit the peer's 1024-byte receive buffer. */
export class ZdsMessageTooLargeError extends MeshError {
  constructor(size: number, limit: number) {
    super(
      CniErrorCode.zdsMessageTooLarge,
      `a ZDS message of ${size} bytes exceeds the ${limit}-byte limit; check the pod name, namespace and service account lengths`,
    );
  }
}

/** A Kubernetes API call failed. */
export class KubeApiError extends MeshError {
  constructor(operation: string, cause: unknown) {
    super(
      CniErrorCode.kubeFailed,
      `Kubernetes API call '${operation}' failed${apiDetail(cause)}; check the API server and the agent's RBAC ` +
        `(ClusterRole ambient-cni-agent in ${RBAC_MANIFEST})`,
      { cause },
    );
  }
}

/**
 * ` (HTTP 409: <the API's message>)` from a client-node ApiException, or the transport error's
 * message, so the log says why.
 */
function apiDetail(cause: unknown): string {
  if (typeof cause !== 'object' || cause === null) return '';
  const { code, body } = cause as { code?: unknown; body?: unknown };
  if (typeof code !== 'number') {
    // Not an API answer: a transport error (reset, timeout, TLS) says what happened.
    const message = (cause as { message?: unknown }).message;
    return typeof message === 'string' && message !== '' ? ` (${message.slice(0, 300)})` : '';
  }
  let message: unknown = body;
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: unknown }).message ?? body;
    } catch {
      message = body;
    }
  } else if (typeof body === 'object' && body !== null) {
    message = (body as { message?: unknown }).message;
  }
  const text = typeof message === 'string' ? message.slice(0, 300) : '';
  return text === '' ? ` (HTTP ${code})` : ` (HTTP ${code}: ${text})`;
}

/** A CNI plugin event body the agent cannot use. */
export class PluginEventError extends MeshError {
  constructor(detail: string) {
    super(CniErrorCode.pluginEvent, `invalid CNI plugin event: ${detail}`);
  }
}
