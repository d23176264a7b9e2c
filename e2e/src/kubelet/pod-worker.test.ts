import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CommandRunner } from '../exec.ts';
import type { KubeClient } from '@ambient-mesh/kube';
import { clusterLayout, nodeLayout } from '../layout.ts';
import type { CniNetworkConfig, CniResult, CniRunner } from '../network/cni.ts';
import { PodWorker, type PodWorkerDeps } from './pod-worker.ts';
import type { VolumeManager } from './volumes.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

interface Fakes {
  readonly deps: PodWorkerDeps;
  readonly calls: string[];
  readonly statuses: { reason?: string | null; message?: string | null; podIP?: string }[];
}

/** A PodWorker's dependencies with CNI ADD failing `failures` times before it succeeds. */
function fakes(failures: number): Fakes {
  const root = mkdtempSync(join(tmpdir(), 'pod-worker-'));
  cleanups.push(() => {
    rmSync(root, { recursive: true, force: true });
  });
  const cluster = clusterLayout('pwtest', 3, root);
  const calls: string[] = [];
  const statuses: Fakes['statuses'] = [];
  let adds = 0;
  const run: CommandRunner = argv => {
    calls.push(argv.join(' '));
    return Promise.resolve({ code: 0, stdout: '', stderr: '' });
  };
  const cni = {
    loopback: (command: string) => {
      calls.push(`loopback ${command}`);
      return Promise.resolve();
    },
    add: (): Promise<CniResult> => {
      adds++;
      calls.push(`cni ADD ${adds}`);
      if (adds <= failures) return Promise.reject(new Error('agent socket not up'));
      return Promise.resolve({ ips: [{ address: '10.244.0.9/24' }] });
    },
    del: () => {
      calls.push('cni DEL');
      return Promise.resolve();
    },
  } as unknown as CniRunner;
  const client = {
    mergePatch: (_path: string, body: { status: Fakes['statuses'][number] }) => {
      statuses.push(body.status);
      return Promise.resolve({});
    },
    delete: () => Promise.resolve({}),
  } as unknown as KubeClient;
  const volumes = {
    prepare: () => Promise.resolve({ volumes: [], refresher: { cancel: () => undefined } }),
  } as unknown as VolumeManager;
  const config: CniNetworkConfig = { cniVersion: '1.0.0', name: 'k8s', plugins: [] };
  return {
    calls,
    statuses,
    deps: {
      client,
      run,
      cni,
      cniConfig: () => Promise.resolve(config),
      volumes,
      images: { images: {} },
      cluster,
      node: nodeLayout(cluster, 0),
      mountLedger: join(root, 'ledger'),
      log: () => undefined,
    },
  };
}

const pod = {
  metadata: { name: 'ztunnel-abcde', namespace: 'istio-system', uid: 'uid-1' },
  spec: { containers: [] },
} as unknown as V1Pod;

describe('PodWorker sandbox', () => {
  it('retries a failed CNI ADD with back-off, cleaning up each failed attempt, until it succeeds', async () => {
    const f = fakes(2);
    const worker = new PodWorker(pod, f.deps);
    cleanups.push(() => void worker.terminate(0, false));
    const started = worker.start();
    await vi.waitFor(
      () => {
        expect(f.statuses.at(-1)?.reason).toBe('SandboxFailed');
      },
      { timeout: 5_000, interval: 20 },
    );
    await started;
    expect(f.calls.filter(c => c.startsWith('cni ADD'))).toEqual(['cni ADD 1', 'cni ADD 2', 'cni ADD 3']);
    // Each failed ADD is followed by DEL (frees the IPAM address) and the netns removed.
    const afterFirst = f.calls.slice(f.calls.indexOf('cni ADD 1') + 1, f.calls.indexOf('cni ADD 2'));
    expect(afterFirst).toContain('cni DEL');
    expect(afterFirst.some(c => c.startsWith('ip netns del'))).toBe(true);
    expect(worker.state).toBe('running');
    await vi.waitFor(
      () => {
        const last = f.statuses.at(-1);
        expect(last?.podIP).toBe('10.244.0.9');
        // The failure is cleared explicitly (null), since a merge patch keeps unnamed fields.
        expect(last?.reason).toBeNull();
        expect(last?.message).toBeNull();
      },
      { timeout: 5_000, interval: 20 },
    );
  }, 20_000);

  it('stops retrying when the pod is deleted during the back-off', async () => {
    const f = fakes(1_000);
    const worker = new PodWorker(pod, f.deps);
    void worker.start();
    await vi.waitFor(
      () => {
        expect(f.calls).toContain('cni DEL');
      },
      { timeout: 5_000, interval: 20 },
    );
    // The back-off after the first failure is 1 s; terminate() must not wait it out.
    await worker.terminate(0, false);
    expect(worker.state).toBe('gone');
    expect(f.calls.filter(c => c.startsWith('cni ADD'))).toEqual(['cni ADD 1']);
  });
});
