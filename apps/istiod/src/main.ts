#!/usr/bin/env node
/**
 * istiod's entry point: the runtime's `main()` reads the config (`config.ts`), connects to
 * Kubernetes, builds the app and runs until SIGTERM/SIGINT.
 */
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import type { AppDeps } from './app.ts';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { loadKubeConfig } from './kube/kube-api.ts';
import { kubeCsrSigner, kubeDependencies } from './kube/kube-dependencies.ts';

/** The capabilities of istiod in a cluster: the Kubernetes API and the process metrics. */
function productionDeps(config: Config): AppDeps {
  const kc = loadKubeConfig(config.kubeconfig);
  return {
    ...kubeDependencies(kc, config.podNamespace, {
      identity: config.podName,
      leaseDurationMs: config.leaderElectionLeaseDurationMs,
    }),
    ...(config.externalCa === '' ? {} : { externalSigner: kubeCsrSigner(config, kc) }),
    processMetrics: true,
  };
}

await main({
  name: 'istiod',
  loadConfig: () => loadConfig(),
  deps: productionDeps,
  build,
  logger: bound => bound.logs.for('main'),
});
