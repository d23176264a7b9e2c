// Cluster tier: upstream istioctl's control-plane commands against our istiod on a 2-node local
// cluster. `proxy-status` and `x version` ask istiod over state-of-the-world ADS on 15012
// (`istio.io/debug/syncz`, docs/protocols.md#istioctl-debug-requests); `version` reads istiod's
// `/version` and `/debug/syncz` on 15014; `admin log` port-forwards to ControlZ's `/scopej` on 9876.
// One cluster (own name and slot) for the whole file.
import { readFileSync } from 'node:fs';
import type { V1PodList } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ztunnelPods } from '../mesh/observe.ts';
import { ensureIstioctl, istioctlRunner, parseTable } from './istioctl.ts';

const STATUS_COLUMNS = ['NAME', 'CLUSTER', 'ISTIOD', 'VERSION', 'SUBSCRIBED TYPES'];

function appVersion(app: string): string {
  const url = new URL(`../../../apps/${app}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

let cluster: Cluster;
let istioctl: ReturnType<typeof istioctlRunner>;
let istiodPod = '';
let ztunnels: string[] = [];
const ns = `--istioNamespace=${MESH_NAMESPACE}`;

describe('upstream istioctl reads our control plane over xDS and its debug port', () => {
  beforeAll(async () => {
    const binary = await ensureIstioctl(l => {
      console.log(l);
    });
    ({ cluster } = await startMeshCluster({ name: 't17ps', slot: 68, nodes: 2 }));
    istioctl = istioctlRunner(binary, cluster.kubeconfig);
    const pods = await cluster.client.get<V1PodList>(
      `/api/v1/namespaces/${MESH_NAMESPACE}/pods?labelSelector=app%3Distiod`,
    );
    istiodPod = pods.items[0]?.metadata?.name ?? '';
    expect(istiodPod).not.toBe('');
    ztunnels = (await ztunnelPods(cluster.client, cluster.layout)).map(z => `${z.name}.${MESH_NAMESPACE}`);
    expect(ztunnels).toHaveLength(2);
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('istioctl proxy-status lists every ztunnel with our istiod, its version and WDS/WADS', async () => {
    // Both ztunnels have ACKed both types once they are listed; wait for that.
    const rows = await waitFor(
      'proxy-status to list both ztunnels',
      async () => {
        const r = await istioctl(['proxy-status', ns]);
        if (r.code !== 0) throw new Error(`istioctl proxy-status exited ${r.code}: ${r.stderr}`);
        const table = parseTable(r.stdout, STATUS_COLUMNS);
        return ztunnels.every(z => table.some(row => row.NAME === z)) ? table : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    for (const z of ztunnels) {
      expect(rows.find(row => row.NAME === z)).toEqual({
        NAME: z,
        CLUSTER: 'Kubernetes',
        ISTIOD: istiodPod,
        VERSION: appVersion('ztunnel'),
        'SUBSCRIBED TYPES': '2 (WADS,WDS)',
      });
    }
    // istioctl's own debug stream is not a proxy.
    expect(rows).toHaveLength(ztunnels.length);
  }, 120_000);

  it('istioctl proxy-status -v 1 shows each ztunnel SYNCED on both types', async () => {
    const r = await istioctl(['proxy-status', ns, '-v', '1']);
    expect(r.code, r.stderr).toBe(0);
    const header = r.stdout.split('\n')[0] ?? '';
    expect(header).toMatch(/^NAME\s+CLUSTER\s+.*\bWADS\s+WDS\s+ISTIOD\s+VERSION$/);
    const columns = header.split(/\s{2,}/);
    const table = parseTable(r.stdout, columns);
    for (const z of ztunnels) {
      const row = table.find(x => x.NAME === z);
      expect(row?.WADS, r.stdout).toMatch(/^SYNCED/);
      expect(row?.WDS, r.stdout).toMatch(/^SYNCED/);
      expect(row?.CDS).toBe('IGNORED');
    }
  }, 60_000);

  it('istioctl x version: control plane and data plane versions over xDS', async () => {
    const r = await istioctl(['x', 'version', ns]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`control plane version: ${appVersion('istiod')}\n`);
    expect(r.stdout).toContain(`data plane version: ${appVersion('ztunnel')} (2 proxies)\n`);
  }, 60_000);

  it('istioctl version: control plane version from /version, data plane from /debug/syncz', async () => {
    const r = await istioctl(['version', ns]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toContain(`control plane version: ${appVersion('istiod')}\n`);
    expect(r.stdout).toContain(`data plane version: ${appVersion('ztunnel')} (2 proxies)\n`);
  }, 60_000);

  it('istioctl admin log lists our logging scopes and sets and resets their levels through ControlZ', async () => {
    const levels = async (): Promise<Map<string, string>> => {
      const r = await istioctl(['admin', 'log', ns, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const scopes = JSON.parse(r.stdout) as { scope_name: string; log_level: string }[];
      return new Map(scopes.map(x => [x.scope_name, x.log_level]));
    };
    const before = await levels();
    expect([...before.keys()]).toEqual(expect.arrayContaining(['ca', 'kube', 'xds']));
    expect(before.get('xds')).toBe('info');
    const set = await istioctl(['admin', 'log', ns, '--level', 'xds:debug,ca:warn']);
    expect(set.code, set.stderr).toBe(0);
    const after = await levels();
    expect([after.get('xds'), after.get('ca'), after.get('kube')]).toEqual(['debug', 'warn', 'info']);
    const table = await istioctl(['admin', 'log', ns]);
    expect(table.stdout).toMatch(/^ACTIVE SCOPE\s+DESCRIPTION\s+LOG LEVEL\s+STACK TRACE LEVEL$/m);
    expect(table.stdout).toMatch(/^xds\s+.*\s+debug\s+none$/m);
    const reset = await istioctl(['admin', 'log', ns, '--reset']);
    expect(reset.code, reset.stderr).toBe(0);
    expect([...(await levels()).values()].every(l => l === 'info')).toBe(true);
  }, 60_000);
});
