/**
 * The connection to a cluster from kubectl's global flags: `--kubeconfig` (else `$KUBECONFIG`,
 * else the defaults), `--context` (else the current context) and `-n/--namespace` (else the
 * context's namespace, else `default`). Errors name the flag or file to check.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import {
  KubeClient,
  PortForwarder,
  type KubeConfigHandle,
  type LocalAddress,
  type PodHttpAnswer,
  type PortForwarderOptions,
  type PortForwarding,
} from '@ambient-mesh/kube';
import type { PodHttpGet, ZtunnelPod } from '@ambient-mesh/install';
import { CliError, CliErrorCode, namespaceNotFound } from './errors.ts';

/** Any request on a pod's port; undefined when the pod does not answer. */
export type PodHttpRequest = (
  pod: ZtunnelPod,
  port: number,
  method: string,
  path: string,
) => Promise<PodHttpAnswer | undefined>;

/** Opens a port-forward like `kubectl port-forward`: `address:localPort` (0: any) to the pod's port. */
export type PodForward = (pod: ZtunnelPod, port: number, local: LocalAddress) => Promise<PortForwarding>;

/** The options of `@ambient-mesh/kube`'s `PortForwarder` (the name the library face has had). */
export type PortForwardGetOptions = PortForwarderOptions;

/**
 * GETs through `@ambient-mesh/kube`'s port-forward; undefined when the pod does not answer or
 * answers non-200 (the readers of `@ambient-mesh/install` take a missing answer as "not ready").
 */
export function portForwardGetter(kubeConfig: KubeConfigHandle, options: PortForwarderOptions = {}): PodHttpGet {
  const forwarder = new PortForwarder(kubeConfig, options);
  return (pod, port, path) => forwarder.get(pod, port, path).catch(() => undefined);
}

/** Any request through `@ambient-mesh/kube`'s port-forward; undefined when the pod does not answer. */
export function portForwardRequester(
  kubeConfig: KubeConfigHandle,
  options: PortForwarderOptions = {},
): PodHttpRequest {
  const forwarder = new PortForwarder(kubeConfig, options);
  return (pod, port, method, path) => forwarder.request(pod, port, { method, path }).catch(() => undefined);
}

export interface ClusterFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
}

export interface Cluster {
  readonly client: KubeClient;
  /** The namespace of `-n`, else the context's, else `default`. */
  readonly namespace: string;
  /** True when `-n` was given. */
  readonly namespaceGiven: boolean;
  /** GETs a pod's (loopback-only) port. */
  readonly podGet: PodHttpGet;
  /** Any request on a pod's (loopback-only) port (`POST /logging?level=`). */
  readonly podRequest: PodHttpRequest;
  /** A long-lived port-forward to a pod's port (`dashboard`). */
  readonly forward: PodForward;
}

export function connectCluster(flags: ClusterFlags, envKubeconfig: string): Cluster {
  const file = flags.kubeconfig ?? envKubeconfig;
  const kc = loadClientConfig(file);
  if (flags.context !== undefined) {
    if (kc.getContextObject(flags.context) === null) {
      const known = kc.getContexts().map(c => c.name);
      throw new CliError(
        CliErrorCode.Kubeconfig,
        `context "${flags.context}" is not in the kubeconfig ${file === '' ? '(defaults)' : file}; ` +
          `check --context (known: ${known.length === 0 ? 'none' : known.join(', ')})`,
      );
    }
    kc.setCurrentContext(flags.context);
  }
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const client = new KubeClient(kc);
  return {
    client,
    namespace: flags.namespace ?? (contextNs !== undefined && contextNs !== '' ? contextNs : 'default'),
    namespaceGiven: flags.namespace !== undefined,
    podGet: portForwardGetter(kc),
    podRequest: portForwardRequester(kc),
    forward: (pod, port, local) => new PortForwarder(kc).listen(pod, port, local),
  };
}

/**
 * The CLI needs client-node's own `KubeConfig` (contexts, and the port-forward API), not only the
 * narrow handle `@ambient-mesh/kube` publishes, so it loads the file itself.
 */
function loadClientConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  const where = file === '' ? '(defaults)' : file;
  try {
    if (file !== '') kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new CliError(
      CliErrorCode.Kubeconfig,
      `cannot load the kubeconfig ${where}: ${errorMessage(err)}; check --kubeconfig or $KUBECONFIG`,
      { cause: err },
    );
  }
  if (kc.getCurrentCluster() === null) {
    throw new CliError(
      CliErrorCode.Kubeconfig,
      `the kubeconfig ${where} has no current cluster; check its current-context or pass --context`,
    );
  }
  return kc;
}

/** Throws `CLI_NAMESPACE_NOT_FOUND` unless the namespace exists. */
export async function requireNamespace(client: KubeClient, namespace: string): Promise<void> {
  const ns = await client.find(`/api/v1/namespaces/${encodeURIComponent(namespace)}`);
  if (ns === undefined) throw namespaceNotFound(namespace);
}

/** For commands where `-n` filters: an explicit `-n` must name an existing namespace. */
export async function requireGivenNamespace(cluster: Cluster): Promise<void> {
  if (cluster.namespaceGiven) await requireNamespace(cluster.client, cluster.namespace);
}
