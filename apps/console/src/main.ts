#!/usr/bin/env node
// The console process: the runtime's `main()` reads the configuration (`config.ts`), builds the
// console and stops it gracefully on SIGTERM/SIGINT.
import { main } from '@ambient-mesh/runtime';
import { build } from './app.ts';
import { loadConfig } from './config.ts';

await main({
  name: 'console',
  loadConfig: () => loadConfig(),
  deps: () => ({}),
  build,
  logger: bound => bound.logs.for('main'),
});
