// Namespaced tier (root): the plugin executable, run as the runtime would, enrols a real pod netns
// through a running agent before ADD returns, i.e. before any container of the pod starts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from './app.ts';
import { loadConfig } from './config.ts';
import { silentLogger } from '@ambient-mesh/runtime';
import { StartableFakeKube, makePod } from './testing/fakes.ts';
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

describe('CNI ADD through a running agent (real netns)', () => {
  it('installs the redirection in the new pod netns before ADD returns, and annotates the pod', async () => {
    const ns = createNetns('cni-add');
    cleanups.push(() => {
      ns.remove();
    });
    const dir = mkdtempSync(join(tmpdir(), 'cni-agent-ns-'));
    cleanups.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    const kube = new StartableFakeKube();
    kube.putNamespace('apps', { 'istio.io/dataplane-mode': 'ambient' });
    kube.putPod(makePod({ name: 'web', uid: 'uid-web', phase: 'Pending', ips: [] }));
    const config = loadConfig({
      NODE_NAME: 'node-a',
      CNI_AGENT_RUN_DIR: runDir,
      ZTUNNEL_UDS_ADDRESS: join(dir, 'ztunnel.sock'),
      READINESS_PORT: '0',
      MONITORING_PORT: '0',
      AMBIENT_DRIFT_CHECK_INTERVAL_SECONDS: '0',
      AMBIENT_NETNS_SCAN_DIRS: '',
      // Off by default (ztunnel has no DNS proxy); on here to check the full rule set is installed.
      AMBIENT_DNS_CAPTURE: 'true',
      AMBIENT_IPV6: 'false',
    });
    const agent = await startAgent(config, { kube, hostProbe: null, logger: silentLogger() });
    cleanups.push(() => agent.stop());
    expect(ambientTables(ns.name)).toEqual([]);

    const prevResult = { cniVersion: '1.0.0', ips: [{ address: '10.244.7.2/24', gateway: '10.244.7.1' }] };
    const run = await runPlugin(
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
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(prevResult);
    expect(ambientTables(ns.name)).toEqual([
      'table inet istio-ambient-mangle',
      'table inet istio-ambient-nat',
      'table inet istio-ambient-raw',
    ]);
    // No ztunnel is connected in this test, so the pod is captured but pending.
    expect(kube.getPod('apps', 'web')!.annotations['ambient.istio.io/redirection']).toBe('pending');
  });
});
