#!/usr/bin/env node
/**
 * The ztunnel process: the runtime's `main()` reads the environment (`config.ts`), builds the app
 * with the production capabilities, and drains on SIGTERM/SIGINT or `/quitquitquit`.
 */
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import type { AppDeps } from './app.ts';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { inPodProxyFactory } from './proxy/inpod-factory.ts';
import { netnsPodSockets } from './proxy/netns-pod-sockets.ts';
import { netnsZdsConnector } from './zds/netns-connector.ts';

/** The capabilities of a real ztunnel on a node. */
function productionDeps(config: Config): AppDeps {
  return {
    zdsConnector: netnsZdsConnector,
    proxyFactory: inPodProxyFactory({
      sockets: ({ netns }) => netnsPodSockets({ netns, mark: config.packetMark, origSrc: config.origSrc }),
    }),
  };
}

await main({
  name: 'ztunnel',
  loadConfig: () => loadConfig(),
  deps: productionDeps,
  build,
  // The app closes what is still open at its drain deadline, before the grace period ends (and
  // SIGKILL comes); this bounds the whole shutdown should closing itself hang.
  drainDeadlineMs: config =>
    Math.max(config.terminationGracePeriodMs, config.connectionTerminationDeadlineMs + 1_000),
  logger: bound => bound.logs.for('main'),
});
