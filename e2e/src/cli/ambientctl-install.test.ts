// Cluster tier: `ambientctl install`, `upgrade --version` and `uninstall` against the real
// operator (deploy/operator, run as the operator tests run it) on an empty 2-node local cluster
// (own name and slot). install writes Sail's ambient resources and returns once the operator
// says each is Ready, with progress on the way; upgrade moves every resource to the new version
// and waits again; uninstall deletes them and returns once the operator's finalizers removed what
// they owned. One cluster for the file; the cases run in order.
import { connectCluster, createContext, createProgress, run, type ClusterFlags } from '@ambient-mesh/cli';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { condition, installOperator, sailPath, type SailCr } from '../operator/operator-install.ts';

const FROM = 'v1.27.8';
const TO = 'v1.27.9';
const log = (line: string): void => {
  console.log(`[cli-install] ${line}`);
};
let cluster: Cluster;

/** ambientctl on this cluster; `progress` is what it printed on stderr as progress lines. */
async function ambientctl(
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string; progress: string }> {
  let stdout = '';
  let stderr = '';
  let progress = '';
  const ctx = createContext({
    out: t => {
      stdout += t;
    },
    err: t => {
      stderr += t;
    },
    cluster: (flags: ClusterFlags) => connectCluster(flags, ''),
    progress: createProgress(
      {
        write: t => {
          progress += t;
        },
      },
      true,
    ),
  });
  const code = await run(['--kubeconfig', cluster.kubeconfig, ...argv], ctx);
  return { code, stdout, stderr, progress };
}

const PLURALS = ['istios', 'istiocnis', 'ztunnels'] as const;

describe('ambientctl install, upgrade and uninstall through the operator', () => {
  beforeAll(async () => {
    cluster = await startCluster({ name: 'cli2', slot: 102, nodes: 2, progress: log });
    await installOperator(cluster, log);
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('install --profile ambient writes the Sail resources and returns once each is Ready, with progress', async () => {
    const started = Date.now();
    const r = await ambientctl(
      'install',
      '--profile',
      'ambient',
      '--version',
      FROM,
      '--ztunnel-namespace',
      'istio-system',
      '--timeout',
      '12m',
      '-o',
      'json',
    );
    log(`install returned after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(r.code, `${r.stderr}\n${r.progress}`).toBe(0);
    // It returned: no waiting here, every resource is Ready for its current generation.
    for (const plural of PLURALS) {
      const cr = await cluster.client.get<SailCr>(sailPath(plural, 'default'));
      expect(condition(cr, 'Ready')?.status, plural).toBe('True');
      expect(cr.status?.observedGeneration, plural).toBe(cr.metadata.generation);
      expect(cr.spec['version'], plural).toBe(FROM);
      if (plural !== 'ztunnels') expect(cr.spec['profile'], plural).toBe('ambient');
    }
    const printed = JSON.parse(r.stdout) as { kind: string; spec: { namespace: string } }[];
    expect(printed.map(p => `${p.kind} ${p.spec.namespace}`)).toEqual([
      'Istio istio-system',
      'IstioCNI istio-cni',
      'ZTunnel istio-system',
    ]);
    expect(r.stderr).toMatch(/^Istio default created \(v1\.27\.8, namespace istio-system\)\n/);
    expect(r.progress).toMatch(
      /✔ 3\/3 Ready — Istio default: Ready; IstioCNI default: Ready; ZTunnel default: Ready\n$/,
    );
    // The mesh the operator made runs: a ztunnel on every node and istiod.
    const ztunnels = (
      await cluster.client.list<V1Pod>('/api/v1/namespaces/istio-system/pods', {
        labelSelector: 'app=ztunnel',
      })
    ).items;
    expect(ztunnels.map(p => p.spec?.nodeName).sort()).toEqual(['node-0', 'node-1']);
    const istiod = await cluster.client.get<{ status?: { readyReplicas?: number } }>(
      '/apis/apps/v1/namespaces/istio-system/deployments/istiod',
    );
    expect(istiod.status?.readyReplicas ?? 0).toBeGreaterThanOrEqual(1);
  }, 900_000);

  it('install on an installed mesh says so and what to do instead, exit 1', async () => {
    const r = await ambientctl('install', '--version', FROM);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /Istio default already exists: the mesh is installed; use ambientctl upgrade --version to change its version, or uninstall first/,
    );
  }, 60_000);

  it('upgrade --version moves every resource to the new version and returns once Ready', async () => {
    const r = await ambientctl('upgrade', '--version', TO, '--timeout', '12m');
    expect(r.code, `${r.stderr}\n${r.progress}`).toBe(0);
    expect(r.stderr).toContain(`Istio default: ${FROM} -> ${TO}\n`);
    expect(r.stdout).toMatch(/^KIND +NAME +NAMESPACE +PROFILE +VERSION +STATUS\n/);
    for (const plural of PLURALS) {
      const cr = await cluster.client.get<SailCr>(sailPath(plural, 'default'));
      expect(cr.spec['version'], plural).toBe(TO);
      expect(condition(cr, 'Ready')?.status, plural).toBe('True');
      expect(cr.status?.observedGeneration, plural).toBe(cr.metadata.generation);
    }
  }, 900_000);

  it('uninstall deletes the resources and returns once the operator removed what they owned', async () => {
    const r = await ambientctl('uninstall', '--timeout', '5m');
    expect(r.code, `${r.stderr}\n${r.progress}`).toBe(0);
    expect(r.stdout).toBe('ZTunnel default deleted\nIstioCNI default deleted\nIstio default deleted\n');
    expect(r.progress).toMatch(/✔ every resource removed\n$/);
    for (const plural of PLURALS) {
      expect(await cluster.client.find(sailPath(plural, 'default')), plural).toBeUndefined();
    }
    // The finalizers ran: the owned objects are gone (their pods follow on the kubelet's time).
    for (const path of [
      '/apis/apps/v1/namespaces/istio-system/deployments/istiod',
      '/apis/apps/v1/namespaces/istio-system/daemonsets/ztunnel',
      '/apis/apps/v1/namespaces/istio-cni/daemonsets/istio-cni-node',
    ]) {
      expect(await cluster.client.find(path), path).toBeUndefined();
    }
    await waitFor(
      'the mesh pods gone',
      async () =>
        (await cluster.client.list<V1Pod>('/api/v1/namespaces/istio-system/pods')).items.length === 0
          ? true
          : undefined,
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  }, 600_000);

  it('uninstall with nothing installed says what to check, exit 4', async () => {
    const r = await ambientctl('uninstall');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /no sailoperator\.io resource named default: the mesh is not installed through the operator; check the context/,
    );
  }, 60_000);
});
