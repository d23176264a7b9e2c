import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '@ambient-mesh/kube/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SHUTDOWN_VERDICT_FILE,
  clearShutdownVerdict,
  decideShutdown,
  writeShutdownVerdict,
} from './shutdown.ts';

const ENTRY_POINT = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../deploy/cni-agent/install-cni.mjs',
);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cni-shutdown-'));
  dirs.push(d);
  return d;
}

describe('decideShutdown (upstream: restart only while the DaemonSet is present and not deleting)', () => {
  it('keeps the plugin for a present DaemonSet and removes it otherwise', () => {
    expect(decideShutdown({ kind: 'daemonset', name: 'istio-cni-node', deleting: false }).uninstall).toBe(
      false,
    );
    expect(decideShutdown({ kind: 'daemonset', name: 'istio-cni-node', deleting: true }).uninstall).toBe(
      true,
    );
    expect(decideShutdown({ kind: 'daemonset-gone', name: 'istio-cni-node' }).uninstall).toBe(true);
    expect(decideShutdown({ kind: 'no-owner' }).uninstall).toBe(true);
    expect(decideShutdown({ kind: 'unknown', detail: 'HTTP 403' })).toEqual({
      uninstall: true,
      reason: 'cannot tell a restart from an uninstall: HTTP 403',
    });
  });

  it('writes the verdict as JSON in the run dir and clears it', () => {
    const dir = tempDir();
    writeShutdownVerdict(dir, { uninstall: false, reason: 'restart' });
    expect(JSON.parse(readFileSync(join(dir, SHUTDOWN_VERDICT_FILE), 'utf8'))).toEqual({
      uninstall: false,
      reason: 'restart',
    });
    clearShutdownVerdict(dir);
    expect(existsSync(join(dir, SHUTDOWN_VERDICT_FILE))).toBe(false);
  });
});

/**
 * How the stand-in agent ends. `killed-after-uninstall-verdict`: told to stop, it writes an
 * uninstall verdict and keeps running until the grace period's SIGKILL ends its process group.
 */
type AgentEnding = 'restart' | 'uninstall' | 'no-verdict' | 'crash' | 'killed-after-uninstall-verdict';

/**
 * Runs the image's entry point with a stand-in agent that ends as told, and returns the
 * plugin types of the node's conflist afterwards and whether the launcher is still there.
 */
async function runEntryPoint(
  ending: AgentEnding,
): Promise<{ plugins: string[]; launcher: boolean; stderr: string }> {
  const root = tempDir();
  const netDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  const runDir = join(root, 'run');
  for (const d of [netDir, binDir, runDir]) mkdirSync(d, { recursive: true });
  const conflist = join(netDir, '10-test.conflist');
  writeFileSync(
    conflist,
    JSON.stringify({ cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'bridge' }] }),
  );
  // A stale verdict from an earlier run must not decide this one.
  writeFileSync(join(runDir, SHUTDOWN_VERDICT_FILE), JSON.stringify({ uninstall: true, reason: 'stale' }));
  const agent = join(root, 'agent.mjs');
  const verdictPath = JSON.stringify(join(runDir, SHUTDOWN_VERDICT_FILE));
  const conflistPath = JSON.stringify(conflist);
  const body: Record<AgentEnding, string> = {
    restart: `writeFileSync(${verdictPath}, JSON.stringify({ uninstall: false, reason: 'DaemonSet present' }));`,
    uninstall: `writeFileSync(${verdictPath}, JSON.stringify({ uninstall: true, reason: 'DaemonSet gone' }));`,
    'no-verdict': '',
    crash: 'process.kill(process.pid, "SIGKILL");',
    'killed-after-uninstall-verdict':
      `process.on('SIGTERM', () => writeFileSync(${verdictPath}, ` +
      `JSON.stringify({ uninstall: true, reason: 'DaemonSet gone' })));\n` +
      `setInterval(() => undefined, 1000);\n` +
      `writeFileSync(${JSON.stringify(join(root, 'agent-up'))}, '');`,
  };
  writeFileSync(
    agent,
    `import { existsSync, readFileSync, writeFileSync } from 'node:fs';\n` +
      // The entry point chained the plugin and cleared the stale verdict before starting the agent.
      `const chained = JSON.parse(readFileSync(${conflistPath}, 'utf8')).plugins.map(p => p.type).join(',');\n` +
      `if (chained !== 'bridge,ambient-istio-cni' || existsSync(${verdictPath})) process.exit(9);\n` +
      `${body[ending]}\n`,
  );
  const child = spawn(process.execPath, [ENTRY_POINT], {
    env: {
      PATH: process.env.PATH ?? '',
      CNI_NET_DIR: netDir,
      CNI_BIN_DIR: binDir,
      CNI_AGENT_RUN_DIR: runDir,
      AMBIENT_CNI_PLUGIN_COMMAND: 'true',
      AMBIENT_CNI_AGENT_COMMAND: `${process.execPath} ${agent}`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group, which the kubelet's SIGKILL ends as a whole.
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<number | null>(resolve =>
    child.on('exit', c => {
      resolve(c);
    }),
  );
  if (ending === 'killed-after-uninstall-verdict') {
    const pluginTypes = (): string =>
      (JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] }).plugins
        .map(p => p.type)
        .join(',');
    try {
      await until('the stand-in agent up', () => existsSync(join(root, 'agent-up')), 20_000);
      child.kill('SIGTERM');
      // The entry point logs last, after unchaining and removing the launcher.
      await until(
        'the plugin removed while the agent still runs',
        () => pluginTypes() === 'bridge' && stderr.includes('plugin removed'),
        20_000,
      );
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
    }
  }
  const code = await exited;
  expect(code, stderr).not.toBe(9);
  const plugins = (JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] }).plugins.map(
    p => p.type,
  );
  return { plugins, launcher: existsSync(join(binDir, 'ambient-istio-cni')), stderr };
}

describe('the cni-agent image entry point (deploy/cni-agent/install-cni.mjs)', () => {
  it('leaves the plugin chained when the agent stops for a restart: new pods wait for the next agent', async () => {
    const r = await runEntryPoint('restart');
    expect(r.plugins).toEqual(['bridge', 'ambient-istio-cni']);
    expect(r.launcher).toBe(true);
    expect(r.stderr).toContain('plugin left chained (DaemonSet present)');
  });

  it('leaves the plugin chained when the agent crashes or leaves no verdict (fail closed)', async () => {
    for (const ending of ['crash', 'no-verdict'] as const) {
      const r = await runEntryPoint(ending);
      expect(r.plugins, ending).toEqual(['bridge', 'ambient-istio-cni']);
      expect(r.launcher, ending).toBe(true);
    }
  });

  it('removes the plugin and its launcher when the agent stops for an uninstall', async () => {
    const r = await runEntryPoint('uninstall');
    expect(r.plugins).toEqual(['bridge']);
    expect(r.launcher).toBe(false);
    expect(r.stderr).toContain('uninstall (DaemonSet gone): plugin removed');
  });

  it('removes the plugin as soon as a stopping agent says uninstall, before the grace period kills it', async () => {
    const r = await runEntryPoint('killed-after-uninstall-verdict');
    expect(r.plugins).toEqual(['bridge']);
    expect(r.launcher).toBe(false);
    expect(r.stderr).toContain('uninstall (DaemonSet gone): plugin removed');
  });
});
