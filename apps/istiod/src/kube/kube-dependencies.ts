import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import type { IstiodDeps } from '../app.ts';
import { istiodWatchedKinds, kubeInformerFactory } from './informers.ts';
import {
  kubeConfigMapStore,
  kubeSecretStore,
  kubeSourceStatusPatcher,
  kubeStatusPatcher,
  kubeTokenReviewer,
} from './kube-api.ts';

/** Every Kubernetes-backed dependency of `startIstiod`, from one kubeconfig. */
export function kubeDependencies(
  kc: KubeConfig,
  namespace?: string,
): Pick<
  IstiodDeps,
  | 'reviewer'
  | 'secrets'
  | 'configMaps'
  | 'informerFactory'
  | 'kinds'
  | 'statusPatcher'
  | 'sourceStatusPatcher'
> {
  return {
    reviewer: kubeTokenReviewer(kc),
    secrets: kubeSecretStore(kc),
    configMaps: kubeConfigMapStore(kc),
    informerFactory: kubeInformerFactory(kc),
    kinds: istiodWatchedKinds(namespace),
    statusPatcher: kubeStatusPatcher(kc),
    sourceStatusPatcher: kubeSourceStatusPatcher(kc),
  };
}
