#!/usr/bin/env node
/**
 * The waypoint process: the runtime's `main()` reads the environment and the command line
 * (`config.ts`; the argument `router` makes it an ingress gateway), builds the
 * app with the production capabilities, and drains on SIGTERM/SIGINT or `/quitquitquit`.
 */
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import { loadProcessConfig } from './config.ts';

await main({
  name: 'waypoint',
  loadConfig: () => loadProcessConfig(),
  deps: () => ({}),
  build,
  drainDeadlineMs: config => config.terminationGracePeriodMs + 5_000,
  logger: bound => bound.logs.for('main'),
});
