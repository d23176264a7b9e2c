#!/usr/bin/env node
// The cni-agent node agent (DaemonSet): the runtime's `main()` reads the configuration
// (`config.ts`), builds the agent and stops it gracefully on SIGTERM/SIGINT.
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import { loadConfig } from './config.ts';

await main({
  name: 'cni-agent',
  loadConfig: () => loadConfig(),
  deps: () => ({ processMetrics: true }),
  build,
  logger: bound => bound.logs.for('main'),
});
