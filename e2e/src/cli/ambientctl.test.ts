// Cluster tier: ambientctl against a live mesh on a 2-node local cluster (own name and slot),
// one cluster for the whole file. `dataplane enroll` labels a namespace and returns once every
// pod is redirected; `ztunnel-config` (over the apiserver's port-forward to ztunnel's
// loopback-only admin port) lists those pods on their nodes, row for row as upstream istioctl
// prints them for the same ztunnel; `waypoint apply --wait` returns once istiod has Programmed
// the waypoint; `x authz explain` names the deciding policy; `proxy-status` agrees with
// istioctl's; `dashboard` forwards to a real pod; `bug-report` archives state, logs and dumps;
// `analyze` reports each seeded misconfiguration with its code; errors say what to check.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster, createContext, run, silentProgress, type ClusterFlags } from '@ambient-mesh/cli';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { ztunnelPods } from '../mesh/observe.ts';
import { nodeHostRoot } from '../kubelet/node-cni.ts';
import { nodeLayout } from '../layout.ts';
import { ensureIstioctl, istioctlRunner, parseTable } from '../upstream-tools/istioctl.ts';

const NS = 'cli-sample';
const WORKLOAD_COLUMNS = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'];
const SERVICE_COLUMNS = ['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'];
const POLICY_COLUMNS = ['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'];
let cluster: Cluster;
let istioctl: ReturnType<typeof istioctlRunner>;
let scratch = '';

async function ambientctl(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return ambientctlWith({}, ...argv);
}

/**
 * ambientctl with `interrupted` (what Ctrl-C ends), given the stdout written so far, and
 * `openUrl` (the browser it would open).
 */
async function ambientctlWith(
  opts: {
    interrupted?: (stdoutSoFar: () => string) => Promise<void>;
    openUrl?: (url: string) => Promise<boolean>;
  },
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { interrupted, openUrl } = opts;
  const ctx = createContext({
    ...(interrupted === undefined ? {} : { interrupted: () => interrupted(() => stdout) }),
    ...(openUrl === undefined ? {} : { openUrl }),
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

function row(
  namespace: string,
  pod: string,
  address: string | undefined,
  node: string,
): Record<string, string> {
  return { NAMESPACE: namespace, 'POD NAME': pod, ADDRESS: address ?? '', NODE: node, PROTOCOL: 'HBONE' };
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
    const binary = await ensureIstioctl(l => {
      console.log(l);
    });
    ({ cluster } = await startMeshCluster({ name: 'cli', slot: 86, nodes: 2 }));
    istioctl = istioctlRunner(binary, cluster.kubeconfig);
    scratch = mkdtempSync(join(tmpdir(), 'cli-e2e-'));
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
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
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

  it('lists the sample pods with protocol HBONE, their address and node in ztunnel-config workload', async () => {
    const ips = new Map(
      (await cluster.client.list<V1Pod>(`/api/v1/namespaces/${NS}/pods`)).items.map(p => [
        p.metadata?.name ?? '',
        p.status?.podIP ?? '',
      ]),
    );
    const rows = await waitFor(
      'both sample pods in ztunnel-config workload, over HBONE',
      async () => {
        const r = await ambientctl('ztunnel-config', 'workload', '-n', NS);
        if (r.code !== 0) {
          console.log(`[cli] exit ${r.code}: ${r.stderr.trim()}`);
          return undefined;
        }
        const table = parseTable(r.stdout, WORKLOAD_COLUMNS);
        return table.length === 2 && table.every(w => w.PROTOCOL === 'HBONE') ? table : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect(rows).toEqual([
      { ...row(NS, 'echo-a', ips.get('echo-a'), 'node-0'), WAYPOINT: 'None' },
      { ...row(NS, 'echo-b', ips.get('echo-b'), 'node-1'), WAYPOINT: 'None' },
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

  it('waypoint apply --enroll-namespace --wait returns once Programmed, and ztunnel-config then shows the waypoint', async () => {
    const applied = await ambientctl(
      'waypoint',
      'apply',
      '-n',
      NS,
      '--for',
      'all',
      '--enroll-namespace',
      '--wait',
      '--timeout',
      '90s',
    );
    expect(applied.code, applied.stderr).toBe(0);
    // --wait returned: the Gateway is Programmed already, no polling needed here.
    const gw = await cluster.client.get<{
      spec: unknown;
      metadata: { labels?: Record<string, string> };
      status?: { conditions?: { type: string; status: string }[] };
    }>(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/waypoint`);
    expect(gw.status?.conditions?.find(c => c.type === 'Programmed')?.status).toBe('True');
    expect(gw.spec).toMatchObject({
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    });
    expect(gw.metadata.labels?.['istio.io/waypoint-for']).toBe('all');
    const ns = await cluster.client.get<{ metadata: { labels?: Record<string, string> } }>(
      `/api/v1/namespaces/${NS}`,
    );
    expect(ns.metadata.labels?.['istio.io/use-waypoint']).toBe('waypoint');

    const list = await ambientctl('waypoint', 'list', '-A');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\n${NS} +waypoint +default +all +True\\n`));

    const filled = await waitFor(
      'the WAYPOINT column of both sample pods and the echo service',
      async () => {
        const w = await ambientctl('zc', 'workload', '-n', NS);
        const s = await ambientctl('zc', 'service', '-n', NS);
        const pods = parseTable(w.stdout, WORKLOAD_COLUMNS).filter(r =>
          (r['POD NAME'] ?? '').startsWith('echo-'),
        );
        const echo = parseTable(s.stdout, SERVICE_COLUMNS).find(r => r['SERVICE NAME'] === 'echo');
        return pods.length === 2 &&
          pods.every(r => r.WAYPOINT === 'waypoint') &&
          echo?.WAYPOINT === 'waypoint'
          ? { pods, echo }
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(filled.pods.map(r => r['POD NAME'])).toEqual(['echo-a', 'echo-b']);

    const again = await ambientctl('waypoint', 'apply', '-n', NS);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; use --overwrite/);
    expect((await ambientctl('waypoint', 'apply', '-n', NS, '--overwrite', '--for', 'all')).code).toBe(0);
  }, 180_000);

  it("ztunnel-config shows the same rows as upstream istioctl's for the same ztunnel", async () => {
    const z = (await ztunnelPods(cluster.client, cluster.layout)).find(p => p.node === 'node-0');
    expect(z).toBeDefined();
    const pod = `${z?.name ?? ''}.${MESH_NAMESPACE}`;
    const sections: [string, string[]][] = [
      ['workload', WORKLOAD_COLUMNS],
      ['service', SERVICE_COLUMNS],
      ['policy', POLICY_COLUMNS],
    ];
    // The mesh is still settling (the waypoint's own pod comes and goes): compare until both agree.
    const compared = await waitFor(
      'ambientctl and istioctl ztunnel-config to agree',
      async () => {
        const out: Record<string, { ours: Record<string, string>[]; theirs: Record<string, string>[] }> = {};
        for (const [section, columns] of sections) {
          const ours = await ambientctl('zc', section, pod);
          const theirs = await istioctl([
            'ztunnel-config',
            section,
            pod,
            `--istioNamespace=${MESH_NAMESPACE}`,
          ]);
          if (ours.code !== 0 || theirs.code !== 0) {
            console.log(
              `[cli] ${section}: ambientctl ${ours.code} ${ours.stderr}; istioctl ${theirs.code} ${theirs.stderr}`,
            );
            return undefined;
          }
          out[section] = {
            ours: parseTable(ours.stdout, columns),
            theirs: parseTable(theirs.stdout, columns),
          };
        }
        return Object.values(out).every(c => JSON.stringify(c.ours) === JSON.stringify(c.theirs))
          ? out
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    for (const [section] of sections) {
      const c = compared[section];
      expect(c?.ours, section).toEqual(c?.theirs);
    }
    expect(compared['workload']?.ours.filter(r => r.NAMESPACE === NS).length).toBeGreaterThanOrEqual(2);
    expect(compared['policy']?.ours.some(r => r['POLICY NAME'] === 'allow-client')).toBe(true);
    // Certificates: the same identities and serials (VALID CERT and dates come from the same dump).
    const certColumns = [
      'CERTIFICATE NAME',
      'TYPE',
      'STATUS',
      'VALID CERT',
      'SERIAL NUMBER',
      'NOT AFTER',
      'NOT BEFORE',
    ];
    const ours = await ambientctl('zc', 'certificate', pod);
    const theirs = await istioctl([
      'ztunnel-config',
      'certificate',
      pod,
      `--istioNamespace=${MESH_NAMESPACE}`,
    ]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(theirs.code, theirs.stderr).toBe(0);
    const key = (rows: Record<string, string>[]): string[] =>
      rows.map(r => `${r['CERTIFICATE NAME']} ${r.TYPE} ${r['SERIAL NUMBER']}`).sort();
    expect(key(parseTable(ours.stdout, certColumns))).toEqual(key(parseTable(theirs.stdout, certColumns)));
  }, 120_000);

  it("proxy-status lists every ztunnel SYNCED, with the same rows as upstream istioctl's", async () => {
    const columns = ['NAME', 'CLUSTER', 'ISTIOD', 'VERSION', 'SUBSCRIBED TYPES'];
    let ztunnels: string[] = [];
    let rounds = 0;
    // The two tools read istiod one after the other while the mesh may still move (the waypoint's
    // pod rolls after --overwrite, a stream reconnects): compare until they agree, and log each
    // disagreement so a timeout says which rows differed.
    const rows = await waitFor(
      'ambientctl and istioctl proxy-status to agree',
      async () => {
        rounds++;
        ztunnels = (await ztunnelPods(cluster.client, cluster.layout)).map(
          z => `${z.name}.${MESH_NAMESPACE}`,
        );
        const ours = await ambientctl('proxy-status');
        const theirs = await istioctl(['proxy-status', `--istioNamespace=${MESH_NAMESPACE}`], 90_000);
        if (ours.code !== 0 || theirs.code !== 0) {
          console.log(
            `[cli] proxy-status round ${rounds}: ambientctl ${ours.code} ${ours.stderr}; istioctl ${theirs.code} ${theirs.stderr}`,
          );
          return undefined;
        }
        const a = parseTable(ours.stdout, columns);
        const b = parseTable(theirs.stdout, columns);
        if (JSON.stringify(a) !== JSON.stringify(b) || !ztunnels.every(z => a.some(r => r.NAME === z))) {
          console.log(
            `[cli] proxy-status round ${rounds} differs:\nambientctl:\n${ours.stdout}istioctl:\n${theirs.stdout}`,
          );
          return undefined;
        }
        return { a, b };
      },
      { timeoutMs: 240_000, intervalMs: 1000 },
    );
    expect(rows.a).toEqual(rows.b);
    for (const z of ztunnels) {
      expect(rows.a.find(r => r.NAME === z)).toMatchObject({
        CLUSTER: 'Kubernetes',
        'SUBSCRIBED TYPES': '2 (WADS,WDS)',
      });
    }
    const verbose = await ambientctl('proxy-status', '-v', '-o', 'json');
    expect(verbose.code, verbose.stderr).toBe(0);
    const states = JSON.parse(verbose.stdout) as { name: string; types: Record<string, string> }[];
    for (const z of ztunnels) {
      expect(states.find(s => s.name === z)?.types).toEqual({ WADS: 'SYNCED', WDS: 'SYNCED' });
    }
  }, 360_000);

  it('dashboard prometheus port-forwards to the Prometheus pod, prints the URL and opens it in the browser', async () => {
    const c = cluster.client;
    await c.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'cli-obs' },
    });
    // Any HTTP server labelled as Prometheus on its port 9090 stands in for it.
    await c.create('/api/v1/namespaces/cli-obs/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'prometheus-0',
        namespace: 'cli-obs',
        labels: { 'app.kubernetes.io/name': 'prometheus' },
      },
      spec: {
        nodeName: 'node-1',
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'prometheus',
            image: 'ambient-mesh/echo:0.1.0',
            env: [{ name: 'PORT', value: '9090' }],
            ports: [{ containerPort: 9090 }],
            readinessProbe: { httpGet: { path: '/', port: 9090 } },
          },
        ],
      },
    });
    await waitFor(
      'the Prometheus stand-in Ready',
      async () => {
        const p = await c.get<V1Pod>('/api/v1/namespaces/cli-obs/pods/prometheus-0');
        return p.status?.conditions?.some(x => x.type === 'Ready' && x.status === 'True') === true
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    let answer = '';
    const opened: string[] = [];
    const r = await ambientctlWith(
      {
        // The browser: given the URL, it loads the page through the forward; then "Ctrl-C".
        openUrl: url => {
          opened.push(url);
          return Promise.resolve(true);
        },
        interrupted: async () => {
          const res = await fetch(opened[0] ?? '');
          answer = `${res.status} ${await res.text()}`;
        },
      },
      'dashboard',
      'prometheus',
      '-n',
      'cli-obs',
      '--port',
      '0',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\n$/);
    expect(opened).toEqual([r.stdout.trim()]);
    expect(answer).toMatch(/^200 .*prometheus-0/s);
    await c.delete('/api/v1/namespaces/cli-obs/pods/prometheus-0', { gracePeriodSeconds: 0 });
  }, 120_000);

  it('bug-report writes one archive with the state, the logs, every ztunnel dump and the istiod sync view', async () => {
    const file = join(scratch, 'bug-report.tar.gz');
    const r = await ambientctl('bug-report', '-f', file, '--tail', '200');
    expect(r.code, r.stderr).toBe(0);
    const out = join(scratch, 'bug-report-x');
    mkdirSync(out);
    const x = spawnSync('tar', ['-xzf', file, '-C', out], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    const root = join(out, 'bug-report');
    const errors = existsSync(join(root, 'errors.txt')) ? readFileSync(join(root, 'errors.txt'), 'utf8') : '';
    expect(errors).toBe('');
    expect(r.stdout).toMatch(/^wrote .*bug-report\.tar\.gz \(\d+ files, [\d.]+ [KM]iB\)\n$/);
    const zs = await ztunnelPods(cluster.client, cluster.layout);
    for (const z of zs) {
      const dump = JSON.parse(readFileSync(join(root, 'ztunnel', z.name, 'config_dump.json'), 'utf8')) as {
        workloads?: { name?: string }[];
      };
      expect(dump.workloads?.some(w => w.name === 'echo-a')).toBe(true);
      expect(readdirSync(join(root, 'logs', MESH_NAMESPACE, z.name))).not.toEqual([]);
    }
    expect(readdirSync(join(root, 'istiod'))).toHaveLength(1);
    expect(readFileSync(join(root, 'resources', 'pods.yaml'), 'utf8')).toContain('name: echo-a');
    expect(readFileSync(join(root, 'analyze.txt'), 'utf8')).not.toBe('');
  }, 120_000);

  it('waypoint delete removes the waypoint, and says what to check for one that is gone', async () => {
    expect((await ambientctl('waypoint', 'delete', 'waypoint', '-n', NS)).code).toBe(0);
    const gone = await ambientctl('waypoint', 'delete', 'waypoint', '-n', NS);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/no waypoint .*check the name/);
  }, 60_000);

  it('analyze reports each seeded misconfiguration with its code, and nothing on a clean mesh', async () => {
    const c = cluster.client;
    // Seeds: the sample namespace still points at the deleted waypoint (AMB0003); a namespace
    // outside ambient uses a waypoint (AMB0002, and AMB0003: it has none); an ambient namespace
    // holds an HTTP-only policy without a waypoint (IST0167) and a pod bound to a node with no
    // ztunnel (AMB0001).
    await c.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'cli-plain', labels: { 'istio.io/use-waypoint': 'wp' } },
    });
    await c.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'cli-l7', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    await c.create('/apis/security.istio.io/v1/namespaces/cli-l7/authorizationpolicies', {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'get-only', namespace: 'cli-l7' },
      spec: { action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
    });
    await c.create('/api/v1/namespaces/cli-l7/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'stranded', namespace: 'cli-l7' },
      spec: {
        nodeName: 'node-without-ztunnel',
        containers: [{ name: 'echo', image: 'ambient-mesh/echo:0.1.0' }],
      },
    });
    // A waypoint whose Service cannot be made (an ExternalName without a name): istiod reports
    // it Programmed=False, which analyze turns into IST0171.
    await c.create('/apis/gateway.networking.k8s.io/v1/namespaces/cli-l7/gateways', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: {
        name: 'broken-wp',
        namespace: 'cli-l7',
        annotations: { 'networking.istio.io/service-type': 'ExternalName' },
      },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    });
    const expected = [
      "Error [AMB0001] (Namespace cli-l7) namespace cli-l7 is in the ambient data plane but node node-without-ztunnel runs its pods with no ztunnel; check the ztunnel DaemonSet's pods there",
      'Warning [AMB0002] (Namespace cli-plain) Namespace cli-plain is labelled istio.io/use-waypoint=wp but is not in the ambient data plane, so the waypoint is never used; label it (or its namespace) istio.io/dataplane-mode=ambient',
      'Error [AMB0003] (Namespace cli-plain) Namespace cli-plain uses waypoint cli-plain/wp, which does not exist; apply it (ambientctl waypoint apply -n cli-plain --name wp)',
      `Error [AMB0003] (Namespace ${NS}) Namespace ${NS} uses waypoint ${NS}/waypoint, which does not exist; apply it (ambientctl waypoint apply -n ${NS} --name waypoint)`,
      'Error [IST0171] (Gateway cli-l7/broken-wp) condition Programmed is False: Failed to assign to any requested addresses: hostname "broken-wp.cli-l7.svc.cluster.local" not found',
      "Warning [IST0167] (AuthorizationPolicy cli-l7/get-only) the policy's HTTP rules (methods) have no effect without a waypoint: ztunnel enforces L4 only; add a waypoint and target it with targetRefs",
    ].sort();
    // istiod writes the Gateway's status on its own time: analyze until every seed is reported.
    let last = '';
    const broken = await waitFor(
      'analyze to report every seeded misconfiguration',
      async () => {
        const r = await ambientctl('analyze');
        last = r.stdout;
        const lines = r.stdout.trim().split('\n').sort();
        return JSON.stringify(lines) === JSON.stringify(expected) ? r : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast analyze output:\n${last}`);
    });
    expect(broken.code).toBe(1);
    expect(broken.stdout.trim().split('\n').sort()).toEqual(expected);
    expect(broken.stderr).toMatch(/analyze found 4 error\(s\)/);
    // -n keeps one namespace's messages.
    const one = await ambientctl('analyze', '-n', 'cli-plain');
    expect(one.stdout.trim().split('\n').sort()).toEqual(
      expected.filter(l => l.includes('(Namespace cli-plain)')),
    );

    await c.delete('/apis/gateway.networking.k8s.io/v1/namespaces/cli-l7/gateways/broken-wp');
    await c.delete('/api/v1/namespaces/cli-l7/pods/stranded', { gracePeriodSeconds: 0 });
    await c.delete('/apis/security.istio.io/v1/namespaces/cli-l7/authorizationpolicies/get-only');
    await c.mergePatch('/api/v1/namespaces/cli-plain', {
      metadata: { labels: { 'istio.io/use-waypoint': null } },
    });
    await c.mergePatch(`/api/v1/namespaces/${NS}`, {
      metadata: { labels: { 'istio.io/use-waypoint': null } },
    });
    const clean = await waitFor(
      'analyze to find nothing once the seeds are gone',
      async () => {
        const r = await ambientctl('analyze');
        return r.code === 0 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    expect(clean.stdout).toBe('✔ No validation issues found when analyzing the cluster.\n');
  }, 240_000);

  it('reports an unknown namespace with what to check, exit 4', async () => {
    const r = await ambientctl('dataplane', 'enroll', 'no-such-namespace');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/namespace "no-such-namespace" does not exist; check/);
    const wp = await ambientctl('waypoint', 'list', '-n', 'no-such-namespace');
    expect(wp.code).toBe(4);
    expect(wp.stderr).toMatch(
      /namespace "no-such-namespace" does not exist; check the name \(kubectl get namespaces\)/,
    );
  });

  it('reports an unreachable cluster with what to check, exit 3', async () => {
    // The cluster's own kubeconfig, pointed at a port where nothing listens.
    const dead = join(scratch, 'unreachable.kubeconfig');
    const config = JSON.parse(readFileSync(cluster.kubeconfig, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
    };
    for (const c of config.clusters) c.cluster.server = 'https://127.0.0.1:1';
    writeFileSync(dead, JSON.stringify(config));
    let stderr = '';
    const ctx = createContext({
      out: () => undefined,
      err: t => {
        stderr += t;
      },
      cluster: (flags: ClusterFlags) => connectCluster(flags, ''),
      progress: silentProgress,
    });
    const code = await run(['--kubeconfig', dead, 'zc', 'workload'], ctx);
    expect(code).toBe(3);
    expect(stderr).toMatch(
      /the cluster did not answer; check --kubeconfig\/--context point at a running cluster/,
    );
  });

  it('reports a ztunnel whose admin port does not answer with what to check, exit 7', async () => {
    const c = cluster.client;
    // A pod that looks like a ztunnel (app=ztunnel, Running on node-0) but serves no admin port.
    // A ConfigMap controls it, so the ztunnel DaemonSet neither adopts nor replaces it.
    const owner = await c.create<{ metadata: { uid: string } }>(
      `/api/v1/namespaces/${MESH_NAMESPACE}/configmaps`,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cli-silent-owner', namespace: MESH_NAMESPACE },
      },
    );
    await c.create(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'ztunnel-silent',
        namespace: MESH_NAMESPACE,
        labels: { app: 'ztunnel' },
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            name: 'cli-silent-owner',
            uid: owner.metadata.uid,
            controller: true,
          },
        ],
      },
      spec: {
        nodeName: 'node-0',
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'echo', image: 'ambient-mesh/echo:0.1.0' }],
      },
    });
    await waitFor(
      'the silent ztunnel Running',
      async () => {
        const p = await c.get<V1Pod>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods/ztunnel-silent`);
        return p.status?.phase === 'Running' ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const r = await ambientctl('zc', 'workload', 'ztunnel-silent');
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(
      /ztunnel ztunnel-silent on node node-0 did not answer on its admin port 15000 .*check the pod is Ready \(kubectl -n istio-system get pod ztunnel-silent\) and its logs/,
    );
    await c.delete(`/api/v1/namespaces/${MESH_NAMESPACE}/configmaps/cli-silent-owner`);
    await c.delete(`/api/v1/namespaces/${MESH_NAMESPACE}/pods/ztunnel-silent`, { gracePeriodSeconds: 0 });
  }, 90_000);

  it("ztunnel-config log reads and sets the level of a node's ztunnel", async () => {
    const read = await ambientctl('zc', 'log', '--node', 'node-0');
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toMatch(/^ztunnel-\S+\.istio-system:\n.+/);
    const set = await ambientctl('zc', 'log', '--node', 'node-0', '--level', 'debug');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/debug/);
    expect((await ambientctl('zc', 'log', '--node', 'node-0', '--level', 'info')).code).toBe(0);
  });

  it('x precheck reads the Kubernetes version, Gateway API CRDs, permissions, and probes each node for nftables and its CNI configuration', async () => {
    const r = await ambientctl('x', 'precheck', '-o', 'json');
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    type Finding = { check: string; level: string; message: string };
    const findings = JSON.parse(r.stdout) as Finding[];
    expect(findings.find(f => f.check === 'kubernetes-version')?.level).toBe('ok');
    expect(findings.find(f => f.check === 'permissions')?.level).toBe('ok');
    expect(
      findings.some(
        f => f.check === 'gateway-api-crds' && f.level === 'ok' && f.message.startsWith('gateways.'),
      ),
    ).toBe(true);
    // Each node's probe ran (this machine's kernel and nft), and found the node's conflist with
    // the mesh's plugin chained.
    const nft = findings.filter(f => f.check === 'nftables');
    expect(nft.map(f => f.level)).toEqual(['ok', 'ok']);
    expect(nft[0]?.message).toMatch(/^node node-0: Linux \S+, nftables v\d+\.\d+\.\d+.*, nftables usable$/);
    const cni = findings.filter(f => f.check === 'cni-conflicts');
    expect(cni[0]).toEqual({
      check: 'cni-conflicts',
      level: 'ok',
      message: 'no known conflicting CNI configuration',
    });
    const perNode = cni.slice(1).map(f => `${f.level} ${f.message}`);
    expect(perNode).toHaveLength(2);
    ['node-0', 'node-1'].forEach((n, i) => {
      expect(perNode[i]).toMatch(
        new RegExp(`^ok node ${n}: 10-am-cli\\.conflist \\(bridge.*ambient-istio-cni\\), the mesh chained$`),
      );
    });
    // The probes leave nothing behind.
    await waitFor(
      'the precheck namespace gone',
      async () => {
        const nss = await cluster.client.list<{ metadata?: { name?: string } }>('/api/v1/namespaces');
        return nss.items.some(n => (n.metadata?.name ?? '').startsWith('ambientctl-precheck-'))
          ? undefined
          : true;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );

    // Another mesh's CNI plugin chained in a configuration node-1's kubelet would read first.
    const netd = join(nodeHostRoot(nodeLayout(cluster.layout, 1).stateDir), 'etc', 'cni', 'net.d');
    const seeded = join(netd, '05-other-mesh.conflist');
    writeFileSync(
      seeded,
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'other',
        plugins: [{ type: 'bridge' }, { type: 'linkerd-cni' }],
      }),
    );
    try {
      const bad = await ambientctl('x', 'precheck');
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(
        /cni-conflicts +✘ error +node node-1: \/etc\/cni\/net\.d\/05-other-mesh\.conflist chains Linkerd's CNI plugin \(linkerd-cni\), which captures the same pods as the mesh; uninstall it first/,
      );
      expect(bad.stdout).toMatch(/✘ 1 issue to fix before installing\.\n$/);
    } finally {
      rmSync(seeded, { force: true });
    }
  }, 360_000);
});
