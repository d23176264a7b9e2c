import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import { hostname } from 'node:os';
import type { IstiodDeps } from '../app.ts';
import { kubeGatewayApi, kubeGatewayInformers } from '../gateway/kube-gateway-api.ts';
import { kubeElection } from './leader-election.ts';
import { istiodWatchedKinds, kubeInformerFactory } from './informers.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACERTS_FILES } from '@ambient-mesh/spiffe-certs';
import { KubeCsrSigner } from '../ca/kube-csr-signer.ts';
import type { Config } from '../config.ts';
import { CaMaterialError } from '../errors.ts';
import {
  kubeConfigMapStore,
  kubeCsrApi,
  kubeNodeTaintPatcher,
  kubeSecretStore,
  kubeSourceStatusPatcher,
  kubeStatusPatcher,
  kubeTokenReviewer,
} from './kube-api.ts';

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
  | 'reviewer'
  | 'secrets'
  | 'configMaps'
  | 'informerFactory'
  | 'kinds'
  | 'statusPatcher'
  | 'sourceStatusPatcher'
  | 'gateway'
  | 'elect'
  | 'nodeTaintPatcher'
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
    sourceStatusPatcher: kubeSourceStatusPatcher(kc),
    nodeTaintPatcher: kubeNodeTaintPatcher(kc),
    gateway: { api: kubeGatewayApi(kc), informers: kubeGatewayInformers(kc) },
  };
}

/**
 * The signer of the Kubernetes CSR path (`EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API`), trusting the
 * roots in `<ROOT_CA_DIR>/root-cert.pem` (upstream's place for the external CA's root).
 */
export function kubeCsrSigner(
  config: Pick<Config, 'rootCaDir' | 'k8sSigner' | 'defaultCertTtlSeconds'>,
  kc: KubeConfig,
): NonNullable<IstiodDeps['externalSigner']> {
  const rootsFile = join(config.rootCaDir, CACERTS_FILES.rootCert);
  let rootsPem: string;
  try {
    rootsPem = readFileSync(rootsFile, 'utf8');
  } catch (err) {
    throw new CaMaterialError(
      `EXTERNAL_CA needs the signer's roots in ${rootsFile} (mount them at ROOT_CA_DIR)`,
      err,
    );
  }
  return logger => {
    const signer = new KubeCsrSigner({
      api: kubeCsrApi(kc),
      signerName: config.k8sSigner,
      rootsPem,
      defaultTtlSeconds: config.defaultCertTtlSeconds,
      logger,
    });
    return { signer, rootsPem: signer.roots.pem };
  };
}
