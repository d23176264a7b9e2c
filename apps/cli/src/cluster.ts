/**
 * The connection to a cluster from kubectl's global flags: `--kubeconfig` (else `$KUBECONFIG`,
 * else the defaults), `--context` (else the current context) and `-n/--namespace` (else the
 * context's namespace, else `default`). Errors name the flag or file to check.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { KubeClient } from '@ambient-mesh/kube';
import type { PodHttpGet } from '@ambient-mesh/install';
import { CliError, CliErrorCode, namespaceNotFound } from './errors.ts';
import {
  portForwardGetter,
  portForwardRequester,
  portForwarder,
  type PodForward,
  type PodHttpRequest,
} from './port-forward.ts';

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
    forward: portForwarder(kc),
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
