#!/usr/bin/env node
/**
 * The `ambientctl` bin: builds the real context (stdout, stderr, the cluster from the global
 * flags and `$KUBECONFIG`, progress on stderr) and exits with the command's exit code.
 */
import { browserCommand, launchBrowser } from './browser.ts';
import { connectCluster } from './cluster.ts';
import { readEnv } from './config.ts';
import { createContext } from './context.ts';
import { createProgress } from './progress.ts';
import { run } from './program.ts';

const env = readEnv();
const argv = process.argv.slice(2);
const browser = browserCommand(env.browser);

const ctx = createContext({
  out: text => process.stdout.write(text),
  err: text => process.stderr.write(text),
  cluster: flags => connectCluster(flags, env.kubeconfig),
  progress: createProgress({ write: text => process.stderr.write(text) }, env.plainProgress),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  openUrl: url => (browser === undefined ? Promise.resolve(false) : launchBrowser(browser, url)),
  interrupted: () =>
    new Promise<void>(resolve => {
      process.once('SIGINT', () => {
        resolve();
      });
      process.once('SIGTERM', () => {
        resolve();
      });
    }),
});

process.exitCode = await run(argv, ctx);
