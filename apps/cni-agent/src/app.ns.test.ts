// Namespaced tier (root): the plugin executable, run as the runtime would, enrols a real pod netns
// through a running agent before ADD returns, i.e. before any container of the pod starts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from './app.ts';
import { silentLogger } from '@ambient-mesh/runtime';
import { SeqpacketSocket, closeFd } from '@ambient-mesh/netns';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { testAgentConfig } from './testing/agent-config.ts';
import { StartableFakeKube, makePod } from './testing/fakes.ts';
import type { Agent } from './app.ts';
import { ambientTables, createNetns } from './testing/netns.ts';

const PLUGIN = fileURLToPath(new URL('./plugin/main.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function runPlugin(
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@ambient-mesh/source', PLUGIN], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      timeout: 60_000,
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', reject);
    child.on('close', code => {
      resolve({ code, stdout });
    });
    child.stdin.end(stdin);
  });
}

/** A stand-in ztunnel on the agent's ZDS socket: says hello and acks every request. */
async function fakeZtunnel(agent: Agent, path: string): Promise<string[]> {
  const seen: string[] = [];
  const zt = SeqpacketSocket.connect(path, { maxMessageSize: 1024 });
  cleanups.push(() => {
    zt.close();
  });
  zt.on('message', m => {
    for (const fd of m.fds) closeFd(fd);
    const req = WorkloadRequestCodec.decode(m.data);
    seen.push(req.add !== undefined ? `add:${req.add.uid}` : String(req.payload));
    zt.send(WorkloadResponseCodec.encode({ ack: {} }));
  });
  zt.send(ZdsHelloCodec.encode({ version: zds.Version.V1 }));
  for (let i = 0; i < 10_000 && agent.zds.readyCount === 0; i++) {
    await new Promise(resolve => setImmediate(resolve));
  }
  expect(agent.zds.readyCount).toBe(1);
  return seen;
}

/** A new pod netns and a scratch folder, both removed after the test. */
function netnsAndDir(): { ns: ReturnType<typeof createNetns>; dir: string } {
  const ns = createNetns('cni-add');
  cleanups.push(() => {
    ns.remove();
  });
  const dir = mkdtempSync(join(tmpdir(), 'cni-agent-ns-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return { ns, dir };
}

async function setup(): Promise<{
  agent: Agent;
  kube: StartableFakeKube;
  ns: ReturnType<typeof createNetns>;
  runDir: string;
  zdsPath: string;
}> {
  const { ns, dir } = netnsAndDir();
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const kube = new StartableFakeKube();
  kube.putNamespace('apps', { 'istio.io/dataplane-mode': 'ambient' });
  kube.putPod(makePod({ name: 'web', uid: 'uid-web', phase: 'Pending', ips: [] }));
  const zdsPath = join(dir, 'ztunnel.sock');
  const config = testAgentConfig(runDir, zdsPath, {
    AMBIENT_DNS_CAPTURE: 'true',
    AMBIENT_IPV6: 'false',
  });
  const agent = await startAgent(config, { kube, hostProbe: null, logger: silentLogger() });
  cleanups.push(() => agent.stop());
  return { agent, kube, ns, runDir, zdsPath };
}

const prevResult = { cniVersion: '1.0.0', ips: [{ address: '10.244.7.2/24', gateway: '10.244.7.1' }] };

function add(
  ns: ReturnType<typeof createNetns>,
  runDir: string,
): Promise<{ code: number | null; stdout: string }> {
  return runPlugin(
    {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c-web',
      CNI_NETNS: ns.path,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web',
    },
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s',
      type: 'ambient-istio-cni',
      cni_agent_run_dir: runDir,
      prevResult,
    }),
  );
}

describe('CNI ADD through a running agent (real netns)', () => {
  it('installs the redirection in the new pod netns and has ztunnel ack it before ADD returns', async () => {
    const { agent, kube, ns, runDir, zdsPath } = await setup();
    const seen = await fakeZtunnel(agent, zdsPath);
    expect(ambientTables(ns.name)).toEqual([]);
    const run = await add(ns, runDir);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
    expect(ambientTables(ns.name)).toEqual([
      'table inet istio-ambient-mangle',
      'table inet istio-ambient-nat',
      'table inet istio-ambient-raw',
    ]);
    expect(seen).toContain('add:uid-web');
    expect(kube.getPod('apps', 'web')!.annotations['ambient.istio.io/redirection']).toBe('enabled');
  });

  it('fails the ADD while no ztunnel is connected (fail closed: the kubelet retries the sandbox)', async () => {
    const { agent, ns, runDir } = await setup();
    const run = await add(ns, runDir);
    expect(run.code).toBe(1);
    const error = JSON.parse(run.stdout) as { code: number; msg: string; details: string };
    expect(error.code).toBe(100);
    expect(error.msg).toContain('could not enrol pod apps/web');
    expect(error.details).toContain('no ztunnel connection');
    expect(agent.reconciler.enrolledCount).toBe(0);
  });

  it('fails the ADD with "try again later" when the agent is not running', async () => {
    const { ns, dir } = netnsAndDir();
    const run = await add(ns, dir);
    expect(run.code).toBe(1);
    expect((JSON.parse(run.stdout) as { code: number }).code).toBe(11);
    expect(ambientTables(ns.name)).toEqual([]);
  });
});
