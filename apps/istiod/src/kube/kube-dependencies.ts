import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import { hostname } from 'node:os';
import type { IstiodDeps } from '../app.ts';
import { kubeElection } from './leader-election.ts';
import { istiodWatchedKinds, kubeInformerFactory } from './informers.ts';
import { kubeConfigMapStore, kubeSecretStore, kubeStatusPatcher, kubeTokenReviewer } from './kube-api.ts';

/**
 * Every Kubernetes-backed dependency of `startIstiod`, from one kubeconfig. Leader election runs
 * over Leases in `namespace` as `identity` (istiod passes its pod name).
 */
export function kubeDependencies(
  kc: KubeConfig,
  namespace?: string,
  election: { readonly identity?: string; readonly leaseDurationMs?: number } = {},
): Pick<
  IstiodDeps,
  'reviewer' | 'secrets' | 'configMaps' | 'informerFactory' | 'kinds' | 'statusPatcher' | 'elect'
> {
  return {
    elect: kubeElection(
      kc,
      namespace ?? 'istio-system',
      election.identity ?? hostname(),
      election.leaseDurationMs,
    ),
    reviewer: kubeTokenReviewer(kc),
    secrets: kubeSecretStore(kc),
    configMaps: kubeConfigMapStore(kc),
    informerFactory: kubeInformerFactory(kc),
    kinds: istiodWatchedKinds(namespace),
    statusPatcher: kubeStatusPatcher(kc),
  };
}
