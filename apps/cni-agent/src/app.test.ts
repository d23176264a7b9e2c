import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeqpacketSocket, closeFd, netnsInode } from '@ambient-mesh/netns';
import type { SeqpacketMessage } from '@ambient-mesh/netns';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from './app.ts';
import type { Agent } from './app.ts';
import { silentLogger } from '@ambient-mesh/runtime';
import { testAgentConfig } from './testing/agent-config.ts';
import { FakeRules, StartableFakeKube, makePod } from './testing/fakes.ts';
import { SHUTDOWN_VERDICT_FILE } from './shutdown.ts';
import type { ShutdownVerdict } from './shutdown.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Waits for a condition with a bounded deadline (no fixed sleeps). */
async function until<T>(probe: () => T | undefined, what: string, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

async function bootAgent(
  kube: StartableFakeKube,
  rules: FakeRules,
  netnsPaths: Record<string, string>,
): Promise<{ agent: Agent; zdsPath: string; runDir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cni-agent-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const runDir = join(dir, 'run');
  const zdsPath = join(dir, 'ztunnel', 'ztunnel.sock');
  const config = testAgentConfig(runDir, zdsPath);
  // What the plugin reported before the "restart".
  rmSync(runDir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'pod-netns.json'), JSON.stringify(netnsPaths));
  const agent = await startAgent(config, { kube, rules, hostProbe: null, logger: silentLogger() });
  cleanups.push(() => agent.stop());
  return { agent, zdsPath, runDir };
}

describe('cni-agent (direct tier: real sockets, fake Kubernetes and rules)', () => {
  it('after a restart, converges enrolled pods once, serves a ZDS snapshot with their netns, and turns ready', async () => {
    const kube = new StartableFakeKube();
    kube.putNamespace('apps', { 'istio.io/dataplane-mode': 'ambient' });
    kube.putPod(
      makePod({ name: 'a', uid: 'uid-a', annotations: { 'ambient.istio.io/redirection': 'enabled' } }),
    );
    const rules = new FakeRules();
    const { agent, zdsPath } = await bootAgent(kube, rules, { 'apps/a': '/proc/self/ns/net' });
    expect(agent.ready()).toBe(true);
    expect(rules.calls).toHaveLength(1);

    const ready = await fetch(`http://127.0.0.1:${agent.opsPort}/readyz`);
    expect(ready.status).toBe(200);

    const inbox: SeqpacketMessage[] = [];
    const zt = SeqpacketSocket.connect(zdsPath, { maxMessageSize: 1024 });
    cleanups.push(() => {
      zt.close();
    });
    zt.on('message', m => inbox.push(m));
    zt.send(ZdsHelloCodec.encode({ version: zds.Version.V1 }));
    const first = await until(() => inbox.shift(), 'the snapshot Add');
    const add = WorkloadRequestCodec.decode(first.data);
    expect(add.add).toEqual({
      uid: 'uid-a',
      workloadInfo: { name: 'a', namespace: 'apps', serviceAccount: 'default' },
    });
    expect(first.fds).toHaveLength(1);
    const ownNetns = netnsInode(agent.reconciler.workloads.lookup('uid-a')!.netnsFd!);
    expect(netnsInode(first.fds[0]!)).toBe(ownNetns);
    closeFd(first.fds[0]!);
    zt.send(WorkloadResponseCodec.encode({ ack: {} }));
    const second = await until(() => inbox.shift(), 'SnapshotSent');
    expect(WorkloadRequestCodec.decode(second.data).payload).toBe('snapshotSent');
    zt.send(WorkloadResponseCodec.encode({ ack: {} }));
    await until(() => (agent.zds.readyCount === 1 ? true : undefined), 'the snapshot ack');

    const metrics = await (await fetch(`http://127.0.0.1:${agent.opsPort}/metrics`)).text();
    expect(metrics).toMatch(/^istio_cni_enrolled_pods 1$/m);
    expect(metrics).toMatch(/^istio_cni_ztunnel_connections 1$/m);

    // A label removal reaches this ztunnel as a Del.
    kube.putNamespace('apps');
    kube.handlers!.namespaceChanged({ name: 'apps', labels: {} });
    const del = await until(() => inbox.shift(), 'the Del');
    expect(WorkloadRequestCodec.decode(del.data).del).toEqual({ uid: 'uid-a' });
    zt.send(WorkloadResponseCodec.encode({ ack: {} }));
    await agent.reconciler.idle();
    expect(kube.getPod('apps', 'a')!.annotations).not.toHaveProperty('ambient.istio.io/redirection');
  });

  it('on shutdown asks whether its DaemonSet is still there and leaves the verdict for the entry point', async () => {
    const asked: (string | null)[] = [];
    const kube = new (class extends StartableFakeKube {
      shutdownVerdict(namespace: string, podName: string | null): Promise<ShutdownVerdict> {
        asked.push(namespace, podName);
        return Promise.resolve({ uninstall: false, reason: 'DaemonSet istio-cni-node is still present' });
      }
    })();
    const { agent, runDir } = await bootAgent(kube, new FakeRules(), {});
    expect(existsSync(join(runDir, SHUTDOWN_VERDICT_FILE))).toBe(false);
    await agent.shutdown();
    expect(asked).toEqual(['istio-system', null]);
    expect(JSON.parse(readFileSync(join(runDir, SHUTDOWN_VERDICT_FILE), 'utf8'))).toEqual({
      uninstall: false,
      reason: 'DaemonSet istio-cni-node is still present',
    });
  });
});
