#!/usr/bin/env node
// The cni-agent node agent (DaemonSet): reads its configuration, starts, and stops on SIGTERM.
import { errorMessage } from '@ambient-mesh/errors';
import { startAgent } from './agent.ts';
import { loadConfig } from './config.ts';

let config;
try {
  config = loadConfig(process.env, process.argv.slice(2));
} catch (err) {
  process.stderr.write(`cni-agent: ${errorMessage(err)}\n`);
  process.exit(2);
}

try {
  const agent = await startAgent(config);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`cni-agent: ${signal}, stopping\n`);
    void agent.stop().finally(() => {
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => {
    shutdown('SIGTERM');
  });
  process.on('SIGINT', () => {
    shutdown('SIGINT');
  });
} catch (err) {
  process.stderr.write(`cni-agent: start-up failed: ${errorMessage(err)}\n`);
  process.exit(1);
}
