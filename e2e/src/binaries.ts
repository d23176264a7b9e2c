import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterError, ClusterErrorCode } from './errors.ts';
import { runBuildScript } from './exec.ts';

export const K8S_VERSION = 'v1.33.13';
export const ETCD_VERSION = 'v3.6.16';

export interface Binaries {
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubeProxy: string;
}

/** The repository's tools/build-k8s.sh. */
export function buildScriptPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tools', 'build-k8s.sh');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs tools/build-k8s.sh (which reuses the cache, and honours TEST_ASSET_KUBE_APISERVER,
 * TEST_ASSET_ETCD and KUBEBUILDER_ASSETS) and returns the binaries it prints the dir of.
 * Build progress goes to `onProgress` line by line.
 */
export async function ensureBinaries(
  onProgress: (line: string) => void = () => undefined,
): Promise<Binaries> {
  const script = buildScriptPath();
  const binDir = await runBuildScript(script, {
    env: { ...process.env, K8S_VERSION, ETCD_VERSION },
    progressPrefix: '[build-k8s]',
    onProgress,
    what: 'the Kubernetes binaries',
    needs: 'Go >= 1.24 and the Go module proxy, or KUBEBUILDER_ASSETS pointing at prebuilt binaries',
  });
  const bins: Binaries = {
    etcd: join(binDir, 'etcd'),
    kubeApiserver: join(binDir, 'kube-apiserver'),
    kubeControllerManager: join(binDir, 'kube-controller-manager'),
    kubeScheduler: join(binDir, 'kube-scheduler'),
    kubeProxy: join(binDir, 'kube-proxy'),
  };
  for (const path of [
    bins.etcd,
    bins.kubeApiserver,
    bins.kubeControllerManager,
    bins.kubeScheduler,
    bins.kubeProxy,
  ]) {
    if (!executable(path)) {
      throw new ClusterError(
        ClusterErrorCode.BinaryMissing,
        `${path} is missing after tools/build-k8s.sh; re-run it and read its output`,
      );
    }
  }
  return bins;
}
