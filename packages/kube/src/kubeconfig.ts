/**
 * Loading a kubeconfig: a file when one is named, else `$KUBECONFIG`, the in-cluster service
 * account, or `~/.kube/config`, as `@kubernetes/client-node` resolves them.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { KubeError, KubeErrorCode } from './errors.ts';
import type { KubeConfigHandle } from './kube-config.ts';

export interface LoadKubeConfigOptions {
  /** A kubeconfig file; empty or absent means the defaults. */
  readonly file?: string | null;
  /** Use the pod's service account (`KUBERNETES_SERVICE_HOST`, the projected token and CA). */
  readonly inCluster?: boolean;
  /** A context of the kubeconfig to use instead of its current-context (kubectl's `--context`). */
  readonly context?: string;
}

/** A loaded kubeconfig and the context in use. */
export interface KubeContext {
  readonly config: KubeConfigHandle;
  /** The context in use (the current-context, or `LoadKubeConfigOptions.context`). */
  readonly context: string;
  /** The namespace the context names; undefined when it names none. */
  readonly namespace: string | undefined;
}

/**
 * Loads a kubeconfig and picks its context, as kubectl's `--kubeconfig` and `--context` do.
 * Throws `KUBE_CONFIG` when the file cannot be loaded, the context is not in it, or the
 * context has no cluster.
 */
export function loadKubeContext(options: LoadKubeConfigOptions = {}): KubeContext {
  const kc = new KubeConfig();
  const file = options.file ?? '';
  const where = file === '' ? '(defaults)' : file;
  try {
    if (options.inCluster === true) kc.loadFromCluster();
    else if (file !== '') kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new KubeError(
      KubeErrorCode.Config,
      `cannot load the kubeconfig ${where}: ${errorMessage(err)}; check the file exists and is valid YAML`,
      { cause: err },
    );
  }
  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null) {
      const known = kc.getContexts().map(c => c.name);
      throw new KubeError(
        KubeErrorCode.Config,
        `context "${options.context}" is not in the kubeconfig ${where}; check the context name (known: ${known.length === 0 ? 'none' : known.join(', ')})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new KubeError(
      KubeErrorCode.Config,
      `the kubeconfig ${where} has no current cluster; check its current-context`,
    );
  }
  const context = kc.getCurrentContext();
  const namespace = kc.getContextObject(context)?.namespace;
  return { config: kc, context, namespace: namespace === '' ? undefined : namespace };
}

/** The kubeconfig for `KubeClient` (a client-node `KubeConfig` behind our structural type). */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): KubeConfigHandle {
  return loadKubeContext(options).config;
}
