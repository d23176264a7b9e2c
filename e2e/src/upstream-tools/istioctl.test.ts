// Cluster tier: upstream istioctl (built from the Go module proxy by tools/install-deps.d/istioctl.sh)
// reading our mesh on a 2-node local cluster: `ztunnel-config` on a dump file of our ztunnel's
// /config_dump and live (port-forward to the ztunnel pod), and `version`. One cluster (own name and
// slot) is shared by the whole file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { ztunnelConfigDump, ztunnelPods, type ZtunnelPod } from '../mesh/observe.ts';
import { GATEWAY_PATH, readyWaypoint, waypointGateway } from '../mesh/waypoint.ts';
import { GATEWAY_API_VERSION } from './gateway-api.ts';
import { ensureIstioctl, istioctlRunner, parseTable } from './istioctl.ts';

const NS = 'tools-istioctl';
/** A second ambient namespace whose Service and pod use a waypoint (`istio.io/waypoint-for: all`). */
const WP_NS = 'tools-istioctl-wp';
const POLICY = 'echo-from-client';
let cluster: Cluster;
let istioctl: ReturnType<typeof istioctlRunner>;
let scratch = '';
let dumpFile = '';
let ztunnelOnNode0: ZtunnelPod | undefined;
const ips = new Map<string, string>();
let serviceIp = '';
const WORKLOAD_COLUMNS = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'];
const SERVICE_COLUMNS = ['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'];
const POLICY_COLUMNS = ['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'];
const WAYPOINT_COLUMNS = ['NAMESPACE', 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'];

interface DumpView {
  workloads?: { name?: string; namespace?: string; waypoint?: unknown }[];
  services?: { name?: string; namespace?: string; waypoint?: unknown }[];
}

function pod(name: string, app: string, sa: string, node: string, namespace = NS): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app } },
    spec: {
      nodeName: node,
      serviceAccountName: sa,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: app, image: 'ambient-mesh/echo:0.1.0', ports: [{ containerPort: 8080 }] }],
    },
  };
}

async function enrolledIp(name: string, namespace = NS): Promise<string> {
  return waitFor(
    `pod ${namespace}/${name} enrolled and Ready`,
    async () => {
      const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`);
      const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
      return p.metadata?.annotations?.['ambient.istio.io/redirection'] === 'enabled' && ready
        ? p.status?.podIP
        : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/**
 * istioctl for commands that reach the cluster (port-forwards, API reads): retried while it exits
 * non-zero, as a port-forward on a loaded machine may fail once. The last failure is reported.
 */
async function istioctlLive(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return waitFor(
    `istioctl ${args.join(' ')} to succeed`,
    async () => {
      const r = await istioctl(args);
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
      return r;
    },
    { timeoutMs: 90_000, intervalMs: 2_000 },
  );
}

describe('upstream istioctl against the ambient mesh on a local cluster', () => {
  beforeAll(async () => {
    const binary = await ensureIstioctl(l => {
      console.log(l);
    });
    ({ cluster } = await startMeshCluster({ name: 'tools17', slot: 24, nodes: 2 }));
    istioctl = istioctlRunner(binary, cluster.kubeconfig);
    const c = cluster.client;
    await c.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    for (const sa of ['echo', 'client']) {
      await c.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: NS },
      });
    }
    await c.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    await c.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: POLICY, namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'echo' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/client`] } }] }],
      },
    });
    await c.create(`/api/v1/namespaces/${NS}/pods`, pod('echo', 'echo', 'echo', 'node-1'));
    await c.create(`/api/v1/namespaces/${NS}/pods`, pod('client', 'client', 'client', 'node-0'));
    // The waypoint namespace: every Service and pod in it uses the waypoint `waypoint`.
    await c.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: WP_NS,
        labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' },
      },
    });
    await c.create(`/api/v1/namespaces/${WP_NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'backend', namespace: WP_NS },
    });
    await c.create(`/api/v1/namespaces/${WP_NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'backend', namespace: WP_NS },
      spec: { selector: { app: 'backend' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    const gateway = waypointGateway(WP_NS) as { metadata: { labels: Record<string, string> } };
    gateway.metadata.labels['istio.io/waypoint-for'] = 'all';
    await c.create(GATEWAY_PATH(WP_NS), gateway);
    await c.create(`/api/v1/namespaces/${WP_NS}/pods`, pod('backend', 'backend', 'backend', 'node-1', WP_NS));
    for (const name of ['echo', 'client']) ips.set(name, await enrolledIp(name));
    await enrolledIp('backend', WP_NS);
    await readyWaypoint(c, cluster.layout, WP_NS, 'waypoint', 180_000);
    const svc = await c.get<{ spec?: { clusterIP?: string } }>(`/api/v1/namespaces/${NS}/services/echo`);
    serviceIp = svc.spec?.clusterIP ?? '';
    // The node-0 ztunnel's dump, once it holds both workloads, the service and the policy, and
    // the waypoint namespace's Service and pod bound to their waypoint.
    const dump = await waitFor(
      'the node-0 ztunnel to hold the workloads, the services, the policy and the waypoint binding',
      async () => {
        ztunnelOnNode0 = (await ztunnelPods(c, cluster.layout)).find(z => z.node === 'node-0');
        if (ztunnelOnNode0 === undefined) return undefined;
        const d = (await ztunnelConfigDump(ztunnelOnNode0)) as DumpView | undefined;
        const text = JSON.stringify(d ?? {});
        const bound = (
          list: { name?: string; namespace?: string; waypoint?: unknown }[] | undefined,
        ): boolean =>
          list?.some(x => x.namespace === WP_NS && x.name === 'backend' && x.waypoint !== undefined) === true;
        return [...ips.values(), serviceIp, POLICY].every(s => text.includes(s)) &&
          bound(d?.workloads) &&
          bound(d?.services) &&
          d?.services?.some(x => x.namespace === WP_NS && x.name === 'waypoint') === true
          ? d
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    scratch = mkdtempSync(join(tmpdir(), 'tools17-'));
    dumpFile = join(scratch, 'ztunnel-config-dump.json');
    writeFileSync(dumpFile, JSON.stringify(dump));
  }, 900_000);

  afterAll(async () => {
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
    await cluster.stop();
  }, 180_000);

  it('istioctl ztunnel-config workload -f: our workloads with protocol HBONE and their node', async () => {
    const r = await istioctl(['ztunnel-config', 'workload', '-f', dumpFile]);
    expect(r.code, r.stderr).toBe(0);
    const rows = parseTable(r.stdout, WORKLOAD_COLUMNS).filter(w => w.NAMESPACE === NS);
    expect(rows.map(w => w['POD NAME']).sort()).toEqual(['client', 'echo']);
    const byName = new Map(rows.map(w => [w['POD NAME'], w]));
    expect(byName.get('echo')).toMatchObject({ ADDRESS: ips.get('echo'), NODE: 'node-1', PROTOCOL: 'HBONE' });
    expect(byName.get('client')).toMatchObject({
      ADDRESS: ips.get('client'),
      NODE: 'node-0',
      PROTOCOL: 'HBONE',
    });
    for (const w of rows) expect(w.WAYPOINT).toBe('None');
    // The waypoint namespace's pod: its waypoint by name (istioctl matches the waypoint's
    // `destination` against the dump's services).
    const backend = parseTable(r.stdout, WORKLOAD_COLUMNS).find(
      w => w.NAMESPACE === WP_NS && w['POD NAME'] === 'backend',
    );
    expect(backend, r.stdout).toMatchObject({ NODE: 'node-1', WAYPOINT: 'waypoint', PROTOCOL: 'HBONE' });
  }, 60_000);

  it('istioctl ztunnel-config service -f: the echo service with its VIP and endpoint', async () => {
    const r = await istioctl(['ztunnel-config', 'service', '-f', dumpFile]);
    expect(r.code, r.stderr).toBe(0);
    const echo = parseTable(r.stdout, SERVICE_COLUMNS).find(
      s => s.NAMESPACE === NS && s['SERVICE NAME'] === 'echo',
    );
    expect(echo, r.stdout).toBeDefined();
    expect(echo?.['SERVICE VIP']).toContain(serviceIp);
    expect(echo?.WAYPOINT).toBe('None');
    expect(echo?.ENDPOINTS).toBe('1/1');
    const backend = parseTable(r.stdout, SERVICE_COLUMNS).find(
      row => row.NAMESPACE === WP_NS && row['SERVICE NAME'] === 'backend',
    );
    expect(backend, r.stdout).toMatchObject({ WAYPOINT: 'waypoint', ENDPOINTS: '1/1' });
  }, 60_000);

  it('istioctl ztunnel-config policy -f: our AuthorizationPolicy', async () => {
    const r = await istioctl(['ztunnel-config', 'policy', '-f', dumpFile]);
    expect(r.code, r.stderr).toBe(0);
    const p = parseTable(r.stdout, POLICY_COLUMNS).find(
      row => row.NAMESPACE === NS && row['POLICY NAME'] === POLICY,
    );
    expect(p, r.stdout).toMatchObject({ ACTION: 'Allow', SCOPE: `WorkloadSelector` });
  }, 60_000);

  it('istioctl ztunnel-config certificate and all -f read the same dump', async () => {
    const certs = await istioctl(['ztunnel-config', 'certificate', '-f', dumpFile]);
    expect(certs.code, certs.stderr).toBe(0);
    expect(certs.stdout).toContain(`spiffe://cluster.local/ns/${NS}/sa/client`);
    // Certificates only for in-mesh workloads, as upstream: none for istiod, the CNI agent or the
    // waypoint, which run on these nodes too but are not captured.
    const identities = new Set(certs.stdout.match(/spiffe:\/\/\S+/g) ?? []);
    expect([...identities].filter(id => !/\/ns\/tools-istioctl(-wp)?\/sa\//.test(id))).toEqual([]);
    const all = await istioctl(['ztunnel-config', 'all', '-f', dumpFile]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(ips.get('echo'));
    expect(all.stdout).toContain(POLICY);
  }, 60_000);

  it('istioctl ztunnel-config connections -f reads the same dump', async () => {
    const r = await istioctl(['ztunnel-config', 'connections', '-f', dumpFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^WORKLOAD\s+DIRECTION\s+LOCAL\s+REMOTE\s+REMOTE TARGET\s+PROTOCOL/);
  }, 60_000);

  it('istioctl ztunnel-config workload live, through a port-forward to the ztunnel pod', async () => {
    const z = ztunnelOnNode0!;
    const r = await istioctlLive([
      'ztunnel-config',
      'workload',
      `${z.name}.${MESH_NAMESPACE}`,
      `--istioNamespace=${MESH_NAMESPACE}`,
    ]);
    const echo = parseTable(r.stdout, WORKLOAD_COLUMNS).find(
      w => w.NAMESPACE === NS && w['POD NAME'] === 'echo',
    );
    expect(echo).toMatchObject({ ADDRESS: ips.get('echo'), NODE: 'node-1', PROTOCOL: 'HBONE' });
  }, 120_000);

  it('istioctl ztunnel-config service, policy, certificate, connections and all, live', async () => {
    const target = [`${ztunnelOnNode0!.name}.${MESH_NAMESPACE}`, `--istioNamespace=${MESH_NAMESPACE}`];
    const service = await istioctlLive(['ztunnel-config', 'service', ...target]);
    expect(
      parseTable(service.stdout, SERVICE_COLUMNS).find(
        s => s.NAMESPACE === WP_NS && s['SERVICE NAME'] === 'backend',
      ),
      service.stdout,
    ).toMatchObject({ WAYPOINT: 'waypoint' });
    const policy = await istioctlLive(['ztunnel-config', 'policy', ...target]);
    expect(
      parseTable(policy.stdout, POLICY_COLUMNS).find(p => p.NAMESPACE === NS && p['POLICY NAME'] === POLICY),
    ).toMatchObject({ ACTION: 'Allow', SCOPE: 'WorkloadSelector' });
    const certs = await istioctlLive(['ztunnel-config', 'certificate', ...target]);
    expect(certs.stdout).toContain(`spiffe://cluster.local/ns/${NS}/sa/client`);
    const connections = await istioctlLive(['ztunnel-config', 'connections', ...target]);
    expect(connections.stdout).toMatch(/^WORKLOAD\s+DIRECTION\s+LOCAL\s+REMOTE\s+REMOTE TARGET\s+PROTOCOL/);
    const all = await istioctlLive(['ztunnel-config', 'all', ...target]);
    expect(all.stdout).toContain(ips.get('echo'));
  }, 600_000);

  it('istioctl ztunnel-config log reads, sets and resets the ztunnel log level', async () => {
    const z = `${ztunnelOnNode0!.name}.${MESH_NAMESPACE}`;
    const ns = `--istioNamespace=${MESH_NAMESPACE}`;
    const list = await istioctlLive(['ztunnel-config', 'log', z, ns]);
    expect(list.stdout).toContain(`${z}:\ncurrent log level is info\n`);
    const set = await istioctlLive(['ztunnel-config', 'log', z, ns, '--level', 'debug']);
    expect(set.stdout).toContain('current log level is debug\n');
    const reset = await istioctlLive(['ztunnel-config', 'log', z, ns, '--reset']);
    expect(reset.stdout).toContain('current log level is info\n');
  }, 300_000);

  it('istioctl x precheck finds no issues with our mesh installed', async () => {
    const r = await istioctlLive(['x', 'precheck', `--istioNamespace=${MESH_NAMESPACE}`]);
    expect(r.stdout + r.stderr).toContain('No issues found');
  }, 120_000);

  it('istioctl analyze reports no errors or warnings for the ambient namespace', async () => {
    const r = await istioctl(['analyze', '-n', NS, `--istioNamespace=${MESH_NAMESPACE}`]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // IST0176 comes from the 1.30 development istioctl, which wants Gateway API CRDs >= 1.5.0; Istio
    // 1.27, our target, takes the v1.4.1 bundle we pin (docs/compatibility.md). Nothing else may show.
    const findings = (r.stdout + r.stderr)
      .split('\n')
      .filter(l => /^(Error|Warning) \[/.test(l) && !l.startsWith('Warning [IST0176]'));
    expect(findings).toEqual([]);
  }, 120_000);

  it('istioctl waypoint list: our waypoint, programmed, and none where there is none', async () => {
    const r = await istioctlLive(['waypoint', 'list', '-A']);
    expect(parseTable(r.stdout, WAYPOINT_COLUMNS)).toEqual([
      { NAMESPACE: WP_NS, NAME: 'waypoint', REVISION: 'default', 'TRAFFIC TYPE': 'all', PROGRAMMED: 'True' },
    ]);
    const none = await istioctlLive(['waypoint', 'list', '-n', NS]);
    expect(none.stdout).toContain('No waypoints found.');
  }, 200_000);

  it('the cluster runs the pinned Gateway API CRDs: v1.4.1, experimental channel (HTTPRoute retry)', async () => {
    interface Crd {
      metadata: { annotations?: Record<string, string> };
      spec: { versions: { name: string; schema?: { openAPIV3Schema?: unknown } }[] };
    }
    const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
    for (const name of ['gateways', 'gatewayclasses', 'httproutes']) {
      const crd = await cluster.client.get<Crd>(`${path}/${name}.gateway.networking.k8s.io`);
      expect(crd.metadata.annotations, name).toMatchObject({
        'gateway.networking.k8s.io/bundle-version': GATEWAY_API_VERSION,
        'gateway.networking.k8s.io/channel': 'experimental',
      });
    }
    const routes = await cluster.client.get<Crd>(`${path}/httproutes.gateway.networking.k8s.io`);
    const v1 = routes.spec.versions.find(v => v.name === 'v1');
    expect(JSON.stringify(v1?.schema?.openAPIV3Schema)).toContain('"retry"');
  }, 60_000);

  it('istioctl version reports the client', async () => {
    const r = await istioctl(['version', '--remote=false']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/client version: \d+\.\d+/);
  }, 60_000);
});
