// Differential check of istiod's non-pod sources (issue 25): our istiod and upstream istiod (the
// oracle) on the same local cluster, with a selector-less Service and a manual EndpointSlice, a
// headless Service, ServiceEntries (STATIC with addresses, DNS, auto-allocated, NONE, selecting a
// WorkloadEntry) and a WorkloadEntry selected by a Service. The whole WDS of both is compared,
// except the differences listed in known-differences.ts (each explained in docs/compatibility.md).
// Its own cluster (name and slot), so it runs beside istiod.test.ts.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { applyCrds } from '../upstream/crds.ts';
import { ensureUpstreamIstio } from '../upstream/install.ts';
import {
  createZtunnelIdentity,
  prepareIstioSystem,
  startUpstreamIstiod,
  type ZtunnelIdentity,
} from '../upstream/istiod.ts';
import { DeltaXdsClient } from '../xds-client/delta-client.ts';
import { ztunnelNode } from '../xds-client/node.ts';
import { diffNormalized, normalizeSnapshot } from '../xds-client/normalize.ts';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';
import { KNOWN_DIFFERENCES } from './known-differences.ts';
import { startOurIstiod, type OurIstiod } from './our-istiod.ts';

const NS = 'sources';
const MANUAL_VIP = '10.96.101.10';
const VMS_VIP = '10.96.101.11';
const OPAQUE_IP = '10.99.0.7';

let cluster: Cluster;
let ours: OurIstiod;
let ztunnel: ZtunnelIdentity;
const cleanups: (() => Promise<void> | void)[] = [];

async function createFixture(client: KubeClient, node: string): Promise<string> {
  const create = (path: string, body: object): Promise<unknown> => client.create(path, body);
  await create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  await client.ensure(`/api/v1/namespaces/${NS}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: NS },
  });
  await create(`/api/v1/namespaces/${NS}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'backend', namespace: NS, labels: { role: 'backend' } },
    spec: {
      nodeName: node,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: 'ambient-mesh/shell:0.1.0', command: ['sleep', '86400'] }],
    },
  });
  const backend = await waitFor(
    'the backend pod IP',
    async () => {
      const p = await client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/backend`);
      const ip = p.status?.podIP;
      return ip === undefined || ip === '' ? undefined : { ip, uid: p.metadata?.uid ?? '' };
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const backendIp = backend.ip;
  const services = [
    { name: 'manual', clusterIP: MANUAL_VIP, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    { name: 'hl', clusterIP: 'None', selector: { role: 'backend' }, ports: [{ name: 'tcp', port: 9000 }] },
    {
      name: 'vms',
      clusterIP: VMS_VIP,
      selector: { app: 'vm' },
      ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    },
  ];
  for (const { name, ...spec } of services)
    await create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NS },
      spec,
    });
  await create(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'manual-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'manual' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [
      {
        addresses: [backendIp],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', namespace: NS, name: 'backend', uid: backend.uid },
      },
      { addresses: [OPAQUE_IP], conditions: { ready: true } },
    ],
  });
  const entries: [string, object][] = [
    [
      'static-se',
      {
        hosts: ['static.example.com'],
        addresses: ['240.0.10.1'],
        ports: [{ name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 }],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        endpoints: [
          { address: '10.99.1.1', ports: { http: 9090 }, serviceAccount: 'ext', locality: 'r1/z1' },
        ],
      },
    ],
    [
      'dns-se',
      {
        hosts: ['dns.example.com'],
        addresses: ['240.0.10.2'],
        ports: [{ name: 'tls', number: 443, protocol: 'TLS' }],
        location: 'MESH_EXTERNAL',
        resolution: 'DNS',
      },
    ],
    [
      'auto-se',
      {
        hosts: ['auto.example.com'],
        ports: [{ name: 'http', number: 80, protocol: 'HTTP' }],
        location: 'MESH_EXTERNAL',
        resolution: 'DNS',
      },
    ],
    [
      'none-se',
      {
        hosts: ['none.example.com'],
        addresses: ['240.0.10.3'],
        ports: [{ name: 'tcp', number: 5432, protocol: 'TCP' }],
        location: 'MESH_EXTERNAL',
        resolution: 'NONE',
      },
    ],
    [
      'sel-se',
      {
        hosts: ['sel.example.com'],
        addresses: ['240.0.10.4'],
        ports: [{ name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 }],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        workloadSelector: { labels: { app: 'vm' } },
      },
    ],
  ];
  for (const [name, spec] of entries)
    await create(`/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name, namespace: NS },
      spec,
    });
  await create(`/apis/networking.istio.io/v1/namespaces/${NS}/workloadentries`, {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: 'vm-1', namespace: NS, labels: { app: 'vm' } },
    spec: { address: '10.99.2.1', serviceAccount: 'vm-sa', ports: { http: 8081 }, locality: 'r1/z2' },
  });
  return backendIp;
}

/** True once the client holds every fixture resource in its final form. */
function settled(c: DeltaXdsClient): boolean {
  const auto = c.addresses.get(`${NS}/auto.example.com`)?.service;
  return (
    c.synced &&
    (auto?.addresses.length ?? 0) === 2 &&
    c.addresses.has(`Kubernetes/discovery.k8s.io/EndpointSlice/${NS}/manual-1/${OPAQUE_IP}`) &&
    c.addresses.has(`Kubernetes/networking.istio.io/WorkloadEntry/${NS}/vm-1`) &&
    c.addresses.has(`Kubernetes/networking.istio.io/ServiceEntry/${NS}/static-se/10.99.1.1`) &&
    c.addresses.has(`Kubernetes/networking.istio.io/ServiceEntry/${NS}/dns-se/dns.example.com`) &&
    ['static', 'dns', 'none', 'sel'].every(h => c.addresses.has(`${NS}/${h}.example.com`)) &&
    Object.keys(c.addresses.get(`Kubernetes//Pod/${NS}/backend`)?.workload?.services ?? {}).length === 2
  );
}

describe('istiod non-pod sources against upstream istiod', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'srcdiff',
      slot: 63,
      nodes: 2,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
    cleanups.push(() => cluster.stop());
    const crdDir = join(repoRoot(), 'deploy', 'crds');
    await applyCrds(
      cluster.client,
      readdirSync(crdDir)
        .filter(f => f.endsWith('.yaml'))
        .map(f => join(crdDir, f)),
    );
    await prepareIstioSystem(cluster.client);
    await createFixture(cluster.client, cluster.nodes[0]!.name);
    ztunnel = await createZtunnelIdentity(cluster.client, cluster.nodes[0]!.name);
    const workDir = mkdtempSync(join(tmpdir(), 'istiod-sources-'));
    cleanups.push(() => {
      rmSync(workDir, { recursive: true, force: true });
    });
    ours = await startOurIstiod({ kubeconfig: cluster.kubeconfig, workDir });
    cleanups.push(() => ours.stop());
  }, 900_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 180_000);

  it('allocates VIPs for the DNS entry without addresses into its status', async () => {
    interface WithStatus {
      status?: { addresses?: { host: string; value: string }[] };
    }
    const status = await waitFor(
      'status.addresses of auto-se',
      async () =>
        (
          await cluster.client.get<WithStatus>(
            `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries/auto-se`,
          )
        ).status?.addresses,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(status.map(a => a.host)).toEqual(['auto.example.com', 'auto.example.com']);
    expect(status[0]?.value).toMatch(/^240\.240\.\d+\.\d+$/);
    expect(status[1]?.value).toMatch(/^2001:2::/);
  });

  it('serves the same WDS as upstream istiod, except the documented differences', async () => {
    const node = ztunnelNode({
      ip: ztunnel.ip,
      podName: ztunnel.podName,
      namespace: ztunnel.namespace,
      nodeName: ztunnel.nodeName,
    });
    const mine = new DeltaXdsClient({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token: ztunnel.token,
      node,
    });
    cleanups.push(() => mine.close());
    mine.start();
    await mine.waitFor('our istiod to settle', settled, { timeoutMs: 60_000 });

    const progress = (line: string): void => {
      console.log(`[upstream] ${line}`);
    };
    const istio = await ensureUpstreamIstio(progress);
    const workDir = mkdtempSync(join(tmpdir(), 'istiod-sources-upstream-'));
    cleanups.push(() => {
      rmSync(workDir, { recursive: true, force: true });
    });
    const upstream = await startUpstreamIstiod({
      cluster,
      istio,
      workDir,
      ztunnelNode: cluster.nodes[0]!.name,
      progress,
    });
    cleanups.push(() => upstream.stop());
    const theirs = new DeltaXdsClient({
      address: upstream.xdsAddress,
      rootCert: upstream.rootCert,
      token: upstream.ztunnel.token,
      node,
    });
    cleanups.push(() => theirs.close());
    theirs.start();
    // A fixture resource upstream never sends shows up in the diff below, which says more than a timeout.
    const theirsSettled = await theirs
      .waitFor('upstream istiod to settle', settled, { timeoutMs: 120_000 })
      .then(
        () => true,
        () => false,
      );

    const pods = await cluster.client.get<KubeList<V1Pod>>('/api/v1/pods');
    const ipAliases = new Map(
      pods.items
        .filter(p => (p.status?.podIP ?? '') !== '' && p.spec?.hostNetwork !== true)
        .map(p => [p.status?.podIP ?? '', `pod:${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`]),
    );
    const left = normalizeSnapshot(mine, { ipAliases });
    const right = normalizeSnapshot(theirs, { ipAliases });
    const differences = diffNormalized(left, right);
    if (process.env.DIFF_OUT !== undefined)
      writeFileSync(
        process.env.DIFF_OUT,
        JSON.stringify({ upstream: istio.version, differences, left, right }, null, 2),
      );
    const undocumented = differences.filter(d => !KNOWN_DIFFERENCES.some(k => k.matches(d)));
    expect(undocumented).toEqual([]);
    expect(theirsSettled).toBe(true);
    expect(mine.decodeErrors).toEqual([]);
  }, 600_000);
});
