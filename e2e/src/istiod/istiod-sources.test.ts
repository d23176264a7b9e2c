// Differential check of istiod's non-pod sources (issue 25): our istiod and upstream istiod (the
// oracle) on the same local cluster, with a selector-less Service and a manual EndpointSlice, a
// headless Service, ServiceEntries (STATIC with addresses, DNS, auto-allocated, NONE, selecting a
// WorkloadEntry) and a WorkloadEntry selected by a Service. The whole WDS of both is compared,
// except the differences listed in known-differences.ts (each explained in docs/compatibility.md).
// Its own cluster (name and slot), so it runs beside istiod.test.ts.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { createZtunnelIdentity, type ZtunnelIdentity } from '../upstream/istiod.ts';
import type { DeltaXdsClient } from '../xds-client/delta-client.ts';
import type { KubeClient } from '@ambient-mesh/kube';
import {
  compareWithUpstream,
  ourXdsClient,
  runCleanups,
  startIstiodCluster,
  startOurIstiodOn,
  type Cleanup,
} from './istiod-harness.ts';
import type { OurIstiod } from './our-istiod.ts';

const NS = 'sources';
const MANUAL_VIP = '10.96.101.10';
const VMS_VIP = '10.96.101.11';
const OPAQUE_IP = '10.99.0.7';

let cluster: Cluster;
let ours: OurIstiod;
let ztunnel: ZtunnelIdentity;
const cleanups: Cleanup[] = [];

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
    cluster = await startIstiodCluster('srcdiff', 63, cleanups);
    await createFixture(cluster.client, cluster.nodes[0]!.name);
    ztunnel = await createZtunnelIdentity(cluster.client, cluster.nodes[0]!.name);
    ours = await startOurIstiodOn(cluster, 'istiod-sources-', cleanups);
  }, 900_000);

  afterAll(async () => {
    await runCleanups(cleanups);
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
    const mine = ourXdsClient(ours, ztunnel, cleanups);
    await mine.waitFor('our istiod to settle', settled, { timeoutMs: 60_000 });
    const { undocumented, theirsSettled } = await compareWithUpstream({
      cluster,
      ztunnelNodeName: cluster.nodes[0]!.name,
      ztunnel,
      mine,
      settled,
      workDirPrefix: 'istiod-sources-upstream-',
      cleanups,
    });
    expect(undocumented).toEqual([]);
    expect(theirsSettled).toBe(true);
    expect(mine.decodeErrors).toEqual([]);
  }, 600_000);
});
