#!/usr/bin/env node
// The operator process (a Deployment in its own namespace): the runtime's `main()` reads the
// configuration (`config.ts`), builds the operator and stops it gracefully on SIGTERM/SIGINT.
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import { loadConfig } from './config.ts';

await main({
  name: 'operator',
  loadConfig: () => loadConfig(),
  deps: () => ({}),
  build,
  logger: bound => bound.logs.for('main'),
});
