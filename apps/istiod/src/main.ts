#!/usr/bin/env node
/**
 * istiod's entry point: read config, connect to Kubernetes, run until SIGTERM/SIGINT.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { loadConfig } from './config.ts';
import { startIstiod } from './istiod.ts';
import { loadKubeConfig } from './kube/kube-api.ts';
import { kubeDependencies } from './kube/kube-dependencies.ts';
import { createLogger } from './logger.ts';

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env, argv: process.argv.slice(2) });
  const logger = createLogger({ format: config.logFormat, level: config.logLevel });
  const kc = loadKubeConfig(config.kubeconfig);
  const istiod = await startIstiod(config, { logger, ...kubeDependencies(kc) });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    istiod.stop().then(
      () => {
        process.exitCode = 0;
      },
      (err: unknown) => {
        logger.error({ err: errorMessage(err) }, 'shutdown failed');
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', () => {
    shutdown('SIGTERM');
  });
  process.once('SIGINT', () => {
    shutdown('SIGINT');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`istiod failed to start: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
