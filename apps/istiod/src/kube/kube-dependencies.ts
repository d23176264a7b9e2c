import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import type { IstiodDeps } from '../app.ts';
import { kubeGatewayApi, kubeGatewayInformers } from '../gateway/kube-gateway-api.ts';
import { istiodWatchedKinds, kubeInformerFactory } from './informers.ts';
import { kubeConfigMapStore, kubeSecretStore, kubeStatusPatcher, kubeTokenReviewer } from './kube-api.ts';

/** Every Kubernetes-backed dependency of `startIstiod`, from one kubeconfig. */
export function kubeDependencies(
  kc: KubeConfig,
  namespace?: string,
): Pick<
  IstiodDeps,
  'reviewer' | 'secrets' | 'configMaps' | 'informerFactory' | 'kinds' | 'statusPatcher' | 'gateway'
> {
  return {
    reviewer: kubeTokenReviewer(kc),
    secrets: kubeSecretStore(kc),
    configMaps: kubeConfigMapStore(kc),
    informerFactory: kubeInformerFactory(kc),
    kinds: istiodWatchedKinds(namespace),
    statusPatcher: kubeStatusPatcher(kc),
    gateway: { api: kubeGatewayApi(kc), informers: kubeGatewayInformers(kc) },
  };
}
