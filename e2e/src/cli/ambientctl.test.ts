// Cluster tier: ambientctl against a live mesh on a 2-node local cluster (own name and slot).
// `dataplane enroll` labels a namespace and returns once every pod is redirected; then
// `ztunnel-config workload` (over the apiserver's port-forward to ztunnel's loopback-only admin
// port) lists those pods on the nodes they run on.
import { connectCluster, createContext, run, silentProgress, type ClusterFlags } from '@ambient-mesh/cli';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { waitFor } from '../exec.ts';

const NS = 'cli-sample';
let cluster: Cluster;

async function ambientctl(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ctx = createContext({
    out: t => {
      stdout += t;
    },
    err: t => {
      stderr += t;
    },
    cluster: (flags: ClusterFlags) => connectCluster(flags, ''),
    progress: silentProgress,
  });
  const code = await run(['--kubeconfig', cluster.kubeconfig, ...argv], ctx);
  return { code, stdout, stderr };
}

function samplePod(name: string, node: string, serviceAccount = 'default'): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      nodeName: node,
      serviceAccountName: serviceAccount,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'echo', image: 'ambient-mesh/echo:0.1.0', ports: [{ containerPort: 8080 }] }],
    },
  };
}

describe('ambientctl on a live mesh', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'cli', slot: 30, nodes: 2 }));
    await cluster.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS },
    });
    await cluster.client.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'client', namespace: NS },
    });
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { selector: { app: 'echo-b' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, samplePod('echo-a', 'node-0', 'client'));
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, samplePod('echo-b', 'node-1'));
    await waitFor(
      'sample pods Running',
      async () => {
        const pods = (await cluster.client.list<V1Pod>(`/api/v1/namespaces/${NS}/pods`)).items;
        return pods.length === 2 && pods.every(p => p.status?.phase === 'Running') ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('enrolls the namespace and returns once every pod is redirected', async () => {
    const r = await ambientctl('dataplane', 'enroll', NS, '--timeout', '90s', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { pod: string; redirection: string }[];
    expect(rows.map(p => [p.pod, p.redirection]).sort()).toEqual([
      ['echo-a', 'enabled'],
      ['echo-b', 'enabled'],
    ]);
  }, 120_000);

  it('lists the sample pods with their node in ztunnel-config workload', async () => {
    const rows = await waitFor(
      'both sample pods in ztunnel-config workload',
      async () => {
        const r = await ambientctl('ztunnel-config', 'workload', '-n', NS);
        if (r.code !== 0) {
          console.log(`[cli] exit ${r.code}: ${r.stderr.trim()}`);
          return undefined;
        }
        const lines = r.stdout.trim().split('\n');
        return lines.length === 3 ? lines : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect(rows[0]).toMatch(/^NAMESPACE +POD NAME +ADDRESS +NODE +WAYPOINT +PROTOCOL$/);
    // Cells by the header's column offsets (a cell may be empty, e.g. ADDRESS on older dumps).
    const header = rows[0] ?? '';
    const starts = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'].map(h =>
      header.indexOf(h),
    );
    const cells = rows.slice(1).map(l => starts.map((s, i) => l.slice(s, starts[i + 1]).trim()));
    expect(cells.map(c => [c[0], c[1], c[3]])).toEqual([
      [NS, 'echo-a', 'node-0'],
      [NS, 'echo-b', 'node-1'],
    ]);
    const onNode1 = await ambientctl('zc', 'workload', '-n', NS, '--node', 'node-1', '-o', 'json');
    expect(onNode1.code, onNode1.stderr).toBe(0);
    expect((JSON.parse(onNode1.stdout) as { name: string }[]).map(w => w.name)).toEqual(['echo-b']);
  }, 120_000);

  it('x authz explain names the DENY policy that blocks client -> echo, then the ALLOW that admits it', async () => {
    const policies = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;
    await cluster.client.create(policies, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-client', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'echo-b' } },
        action: 'DENY',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/client`] } }] }],
      },
    });
    const denied = await ambientctl(
      'x',
      'authz',
      'explain',
      '--from',
      `${NS}/echo-a`,
      '--to',
      `${NS}/echo:80`,
      '-o',
      'json',
    );
    expect(denied.code, denied.stderr).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({
      allowed: false,
      policy: `${NS}/deny-client`,
      to: { name: 'echo-b', port: 8080 },
    });
    await cluster.client.delete(`${policies}/deny-client`);
    await cluster.client.create(policies, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-client', namespace: NS },
      spec: {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/client`] } }] }],
      },
    });
    const allowed = await ambientctl(
      'x',
      'authz',
      'explain',
      '--from',
      `${NS}/echo-a`,
      '--to',
      `${NS}/echo:80`,
    );
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(
      new RegExp(`^ALLOW: ${NS}/echo-a .*\\n  decided by policy ${NS}/allow-client`),
    );
  }, 60_000);

  it("waypoint apply creates istioctl's Gateway, enrolls the namespace, refuses a duplicate, and delete removes it", async () => {
    const applied = await ambientctl('waypoint', 'apply', '-n', NS, '--enroll-namespace');
    expect(applied.code, applied.stderr).toBe(0);
    const gw = await cluster.client.get<{ spec: unknown; metadata: { labels?: Record<string, string> } }>(
      `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/waypoint`,
    );
    expect(gw.spec).toMatchObject({
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    });
    expect(gw.metadata.labels?.['istio.io/waypoint-for']).toBe('service');
    const ns = await cluster.client.get<{ metadata: { labels?: Record<string, string> } }>(
      `/api/v1/namespaces/${NS}`,
    );
    expect(ns.metadata.labels?.['istio.io/use-waypoint']).toBe('waypoint');

    const again = await ambientctl('waypoint', 'apply', '-n', NS);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; use --overwrite/);
    expect((await ambientctl('waypoint', 'apply', '-n', NS, '--overwrite', '--for', 'all')).code).toBe(0);

    const list = await ambientctl('waypoint', 'list', '-A');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\n${NS} +waypoint +default +all +`));

    expect((await ambientctl('waypoint', 'delete', 'waypoint', '-n', NS)).code).toBe(0);
    const gone = await ambientctl('waypoint', 'delete', 'waypoint', '-n', NS);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/no waypoint .*check the name/);
  }, 60_000);

  it('analyze reports the namespace pointing at the deleted waypoint, and nothing once fixed', async () => {
    const broken = await ambientctl('analyze');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(
      `Error [AMB0003] (Namespace ${NS}) Namespace ${NS} uses waypoint ${NS}/waypoint, which does not exist`,
    );
    await cluster.client.mergePatch(`/api/v1/namespaces/${NS}`, {
      metadata: { labels: { 'istio.io/use-waypoint': null } },
    });
    const clean = await ambientctl('analyze');
    expect(clean.stdout).toBe('✔ No validation issues found when analyzing the cluster.\n');
    expect(clean.code).toBe(0);
  });

  it('reports an unknown namespace with what to check, exit 4', async () => {
    const r = await ambientctl('dataplane', 'enroll', 'no-such-namespace');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/namespace "no-such-namespace" does not exist; check/);
  });

  it("ztunnel-config log reads and sets the level of a node's ztunnel", async () => {
    const read = await ambientctl('zc', 'log', '--node', 'node-0');
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toMatch(/^ztunnel-\S+\.istio-system:\n.+/);
    const set = await ambientctl('zc', 'log', '--node', 'node-0', '--level', 'debug');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/debug/);
    expect((await ambientctl('zc', 'log', '--node', 'node-0', '--level', 'info')).code).toBe(0);
  });

  it('x precheck reads the Kubernetes version, the Gateway API CRDs and the admin permissions', async () => {
    const r = await ambientctl('x', 'precheck', '-o', 'json');
    expect([0, 1], r.stderr).toContain(r.code);
    const findings = JSON.parse(r.stdout) as { check: string; level: string; message: string }[];
    expect(findings.find(f => f.check === 'kubernetes-version')?.level).toBe('ok');
    expect(findings.find(f => f.check === 'permissions')?.level).toBe('ok');
    expect(
      findings.some(
        f => f.check === 'gateway-api-crds' && f.level === 'ok' && f.message.startsWith('gateways.'),
      ),
    ).toBe(true);
  });
});
