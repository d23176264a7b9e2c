#!/usr/bin/env node
/**
 * The ztunnel process: the runtime's `main()` reads the environment (`config.ts`), builds the app
 * with the production capabilities, and drains on SIGTERM/SIGINT or `/quitquitquit`.
 */
import { readFileSync } from 'node:fs';
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import type { AppDeps } from './app.ts';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { netnsDnsSockets } from './dns/dns-sockets.ts';
import { parseResolvConf } from './dns/resolv-conf.ts';
import { inPodProxyFactory } from './proxy/inpod-factory.ts';
import { netnsPodSockets } from './proxy/netns-pod-sockets.ts';
import { netnsZdsConnector } from './zds/netns-connector.ts';

/** ztunnel's own resolv.conf (upstream reads the same); unreadable = no upstream (SERVFAIL on forward). */
function readResolvConf(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The capabilities of a real ztunnel on a node. */
function productionDeps(config: Config): AppDeps {
  const dns = config.dnsProxy
    ? {
        sockets: ({ netns }: { readonly netns: Parameters<typeof netnsDnsSockets>[0]['netns'] }) =>
          netnsDnsSockets({ netns, mark: config.packetMark }),
        upstream: parseResolvConf(readResolvConf(config.dnsResolvConfPath)),
      }
    : undefined;
  return {
    ...(config.memoryMode ? {} : { memoryMode: false as const }),
    zdsConnector: netnsZdsConnector,
    proxyFactory: inPodProxyFactory({
      sockets: ({ netns }) =>
        netnsPodSockets({
          netns,
          mark: config.packetMark,
          origSrc: config.origSrc,
          ...(config.ipv6Enabled ? {} : { host: '0.0.0.0' }),
        }),
      ...(dns === undefined ? {} : { dns }),
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
