/**
 * The connection to a cluster from kubectl's global flags: `--kubeconfig` (else `$KUBECONFIG`,
 * else the defaults), `--context` (else the current context) and `-n/--namespace` (else the
 * context's namespace, else `default`). Errors name the flag or file to check.
 */
import { errorMessage } from '@ambient-mesh/errors';
import {
  KubeClient,
  PortForwarder,
  loadKubeContext,
  type KubeConfigHandle,
  type KubeContext,
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
export function portForwardGetter(
  kubeConfig: KubeConfigHandle,
  options: PortForwarderOptions = {},
): PodHttpGet {
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
  let loaded: KubeContext;
  try {
    loaded = loadKubeContext({
      file: flags.kubeconfig ?? envKubeconfig,
      ...(flags.context === undefined ? {} : { context: flags.context }),
    });
  } catch (err) {
    throw new CliError(
      CliErrorCode.Kubeconfig,
      `${errorMessage(err)}; check --kubeconfig or $KUBECONFIG${flags.context === undefined ? '' : ' and --context'}`,
      { cause: err },
    );
  }
  const kc = loaded.config;
  const forwarder = new PortForwarder(kc);
  return {
    client: new KubeClient(kc),
    namespace: flags.namespace ?? loaded.namespace ?? 'default',
    namespaceGiven: flags.namespace !== undefined,
    podGet: portForwardGetter(kc),
    podRequest: portForwardRequester(kc),
    forward: (pod, port, local) => forwarder.listen(pod, port, local),
  };
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
