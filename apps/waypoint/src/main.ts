#!/usr/bin/env node
/**
 * The waypoint process: the runtime's `main()` reads the environment (`config.ts`), builds the
 * app with the production capabilities, and drains on SIGTERM/SIGINT or `/quitquitquit`.
 */
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import { loadConfig } from './config.ts';

await main({
  name: 'waypoint',
  loadConfig: () => loadConfig(),
  deps: () => ({}),
  build,
  drainDeadlineMs: config => config.terminationGracePeriodMs + 5_000,
  logger: bound => bound.logs.for('main'),
});
