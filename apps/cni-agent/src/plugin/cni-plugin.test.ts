import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, createRegistry } from '@ambient-mesh/runtime';
import { AgentMetrics } from '../metrics.ts';
import { startPluginEventServer } from '../plugin-event-server.ts';
import type { CniAddEvent, ReconcileOutcome } from '../reconciler.ts';
import { eventIpsOf, parseCniArgs } from './cni-protocol.ts';

const PLUGIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the plugin executable as the runtime would: env + config on stdin. */
function runPlugin(env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@ambient-mesh/source', PLUGIN], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', code => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

async function agent(
  handle: (e: CniAddEvent) => Promise<ReconcileOutcome>,
): Promise<{ runDir: string; events: CniAddEvent[] }> {
  const runDir = mkdtempSync(join(tmpdir(), 'cni-run-'));
  cleanups.push(() => {
    rmSync(runDir, { recursive: true, force: true });
  });
  const events: CniAddEvent[] = [];
  const server = await startPluginEventServer({
    path: join(runDir, 'pluginevent.sock'),
    handle: e => {
      events.push(e);
      return handle(e);
    },
    logger: silentLogger(),
    metrics: new AgentMetrics({ registry: createRegistry() }),
  });
  cleanups.push(() => server.close());
  return { runDir, events };
}

const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/run/netns/pod-1' }],
  ips: [{ address: '10.244.1.7/24', gateway: '10.244.1.1', interface: 0 }],
};

function addEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'c-1',
    CNI_NETNS: '/run/netns/pod-1',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=c-1',
    ...extra,
  };
}

function config(runDir: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s',
    type: 'ambient-istio-cni',
    cni_agent_run_dir: runDir,
    prevResult,
    ...extra,
  });
}

describe('CNI plugin executable', () => {
  it('ADD reports the pod to the agent and passes prevResult through', async () => {
    const { runDir, events } = await agent(() => Promise.resolve({ kind: 'enrolled', state: 'enabled' }));
    const run = await runPlugin(addEnv(), config(runDir));
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
    expect(events).toEqual([
      { netnsPath: '/run/netns/pod-1', name: 'web-1', namespace: 'apps', ips: ['10.244.1.7'] },
    ]);
  });

  it('ADD fails with a CNI error when the agent answers non-200', async () => {
    const { runDir } = await agent(() =>
      Promise.resolve({ kind: 'failed', reason: 'rules', error: 'nft exploded' }),
    );
    const run = await runPlugin(addEnv(), config(runDir));
    expect(run.code).toBe(1);
    const err = JSON.parse(run.stdout) as { code: number; msg: string; details: string; cniVersion: string };
    expect(err.code).toBe(100);
    expect(err.cniVersion).toBe('1.0.0');
    expect(err.msg).toMatch(/could not enrol pod apps\/web-1 \(HTTP 500\)/);
    expect(err.details).toMatch(/nft exploded/);
  });

  it('ADD fails with code 11 when the agent is unreachable', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'cni-run-'));
    cleanups.push(() => {
      rmSync(runDir, { recursive: true, force: true });
    });
    const run = await runPlugin(addEnv(), config(runDir));
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ code: 11, msg: expect.stringMatching(/unreachable/) });
  });

  it('ADD for a non-Kubernetes invocation passes through without calling the agent', async () => {
    const { runDir, events } = await agent(() => Promise.resolve({ kind: 'enrolled', state: 'enabled' }));
    const run = await runPlugin(addEnv({ CNI_ARGS: 'IgnoreUnknown=1' }), config(runDir));
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
    expect(events).toEqual([]);
  });

  it('ADD skips excluded namespaces', async () => {
    const { runDir, events } = await agent(() => Promise.resolve({ kind: 'enrolled', state: 'enabled' }));
    const run = await runPlugin(addEnv(), config(runDir, { exclude_namespaces: ['apps'] }));
    expect(run.code).toBe(0);
    expect(events).toEqual([]);
  });

  it('ADD skips the ztunnel pods of the mesh namespace without calling the agent', async () => {
    const { runDir, events } = await agent(() => Promise.resolve({ kind: 'enrolled', state: 'enabled' }));
    const ztunnel = addEnv({
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=mesh-system;K8S_POD_NAME=ztunnel-x7k2q',
    });
    const run = await runPlugin(ztunnel, config(runDir, { pod_namespace: 'mesh-system' }));
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
    expect(run.stderr).toMatch(/ztunnel pod mesh-system\/ztunnel-x7k2q: skipped/);
    // The default mesh namespace is istio-system; a pod named ztunnel-* elsewhere is an app.
    const dflt = await runPlugin(
      addEnv({ CNI_ARGS: 'K8S_POD_NAMESPACE=istio-system;K8S_POD_NAME=ztunnel-abcde' }),
      config(runDir),
    );
    expect(dflt.code).toBe(0);
    expect(events).toEqual([]);
    const app = await runPlugin(
      addEnv({ CNI_ARGS: 'K8S_POD_NAMESPACE=apps;K8S_POD_NAME=ztunnel-lookalike' }),
      config(runDir),
    );
    expect(app.code).toBe(0);
    expect(events.map(e => e.name)).toEqual(['ztunnel-lookalike']);
  });

  it('ADD of a ztunnel pod succeeds while the agent is unreachable', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'cni-run-'));
    cleanups.push(() => {
      rmSync(runDir, { recursive: true, force: true });
    });
    const run = await runPlugin(
      addEnv({ CNI_ARGS: 'K8S_POD_NAMESPACE=istio-system;K8S_POD_NAME=ztunnel-q9w8e' }),
      config(runDir),
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
  });

  it('rejects a pod_namespace that is not a string', async () => {
    const run = await runPlugin(addEnv(), config('/nonexistent/run-dir', { pod_namespace: 7 }));
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ code: 7, msg: expect.stringMatching(/pod_namespace/) });
  });

  it('DEL and CHECK succeed with no output; VERSION lists the supported versions', async () => {
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'ambient-istio-cni' });
    const del = await runPlugin({ ...addEnv({ CNI_COMMAND: 'DEL' }) }, conf);
    expect(del).toMatchObject({ code: 0, stdout: '' });
    const check = await runPlugin({ ...addEnv({ CNI_COMMAND: 'CHECK' }) }, conf);
    expect(check).toMatchObject({ code: 0, stdout: '' });
    const version = await runPlugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({
      supportedVersions: expect.arrayContaining(['0.3.1', '1.0.0', '1.1.0']),
    });
  });

  it('rejects bad input with the spec error codes', async () => {
    const noCommand = await runPlugin({}, '{}');
    expect(JSON.parse(noCommand.stdout)).toMatchObject({ code: 4 });
    const notJson = await runPlugin(addEnv(), 'not json');
    expect(JSON.parse(notJson.stdout)).toMatchObject({ code: 6 });
    const oldVersion = await runPlugin(addEnv(), JSON.stringify({ cniVersion: '0.2.0', type: 'x' }));
    expect(JSON.parse(oldVersion.stdout)).toMatchObject({ code: 1 });
    const noNetns = await runPlugin(addEnv({ CNI_NETNS: '' }), config('/nonexistent/run-dir'));
    expect(JSON.parse(noNetns.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_NETNS/) });
  });
});

describe('CNI protocol helpers', () => {
  it('encodes result IPs like Go net.IPNet (mask as base64 bytes)', () => {
    expect(
      eventIpsOf({
        ips: [
          { address: '10.1.2.3/24', gateway: '10.1.2.1', interface: 1 },
          { address: 'fd00::5/64' },
          { address: 'bad/99' },
        ],
      }),
    ).toEqual([
      {
        Interface: 1,
        Address: { IP: '10.1.2.3', Mask: Buffer.from([255, 255, 255, 0]).toString('base64') },
        Gateway: '10.1.2.1',
      },
      {
        Address: {
          IP: 'fd00::5',
          Mask: Buffer.from([...Array(8).fill(255), ...Array(8).fill(0)]).toString('base64'),
        },
      },
    ]);
  });

  it('parses CNI_ARGS', () => {
    expect([...parseCniArgs('A=1; B = two ;junk;=x')]).toEqual([
      ['A', '1'],
      ['B', 'two'],
    ]);
  });
});
