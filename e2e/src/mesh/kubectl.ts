/**
 * kubectl against a local cluster, for scenarios that do what a user types (`kubectl rollout
 * restart`, `rollout status`): `$KUBECTL`, else the kubectl built next to the cluster binaries
 * (tools/build-k8s.sh), else the one on PATH.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ETCD_VERSION, K8S_VERSION } from '../binaries.ts';
import type { Cluster } from '../cluster.ts';
import { runCommand, type RunResult } from '../exec.ts';
import { defaultCacheRoot } from '../layout.ts';

export function kubectlPath(): string {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  const built = join(
    defaultCacheRoot(),
    'k8s',
    `${K8S_VERSION.slice(1)}-etcd${ETCD_VERSION.slice(1)}`,
    'bin',
    'kubectl',
  );
  return existsSync(built) ? built : 'kubectl';
}

/**
 * Runs kubectl with the cluster's kubeconfig, `input` (if any) on its stdin; never rejects on a
 * non-zero exit (see `code`).
 */
export function kubectl(
  cluster: Pick<Cluster, 'kubeconfig'>,
  args: readonly string[],
  options: { readonly timeoutMs?: number; readonly input?: string } = {},
): Promise<RunResult> {
  return runCommand([kubectlPath(), ...args], {
    env: { ...process.env, KUBECONFIG: cluster.kubeconfig },
    allowFailure: true,
    timeoutMs: options.timeoutMs ?? 60_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}
