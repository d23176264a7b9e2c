#!/usr/bin/env node
/**
 * The ztunnel process: parse the environment, build the app, drain gracefully on SIGTERM/SIGINT
 * or `/quitquitquit`. Exits 1 with the reason when the configuration is unusable.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { build } from './app.ts';
import { loadConfig } from './config.ts';
import { inPodProxyFactory } from './proxy/inpod-factory.ts';
import { netnsPodSockets } from './proxy/netns-pod-sockets.ts';
import { netnsZdsConnector } from './zds/netns-connector.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const bound = await build(config, {
    zdsConnector: netnsZdsConnector,
    proxyFactory: inPodProxyFactory({
      sockets: ({ netns }) => netnsPodSockets({ netns, mark: config.packetMark, origSrc: config.origSrc }),
    }),
  });
  const log = bound.logs.for('ztunnel');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'signal received');
      void bound.shutdown();
    });
  }
  await bound.terminated;
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    process.stderr.write(`ztunnel: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
