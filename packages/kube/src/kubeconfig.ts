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
}

/** The kubeconfig for `KubeClient` (a client-node `KubeConfig` behind our structural type). */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): KubeConfigHandle {
  const kc = new KubeConfig();
  const file = options.file ?? '';
  try {
    if (options.inCluster === true) kc.loadFromCluster();
    else if (file !== '') kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new KubeError(
      KubeErrorCode.Config,
      `cannot load the kubeconfig ${file === '' ? '(defaults)' : file}: ${errorMessage(err)}; check the file exists and is valid YAML`,
      { cause: err },
    );
  }
  if (kc.getCurrentCluster() === null) {
    throw new KubeError(
      KubeErrorCode.Config,
      `the kubeconfig ${file === '' ? '(defaults)' : file} has no current cluster; check its current-context`,
    );
  }
  return kc;
}
