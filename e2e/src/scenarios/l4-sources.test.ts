// Cluster tier: non-pod sources through the L4 mesh (issue 25). A selector-less Service whose
// manual EndpointSlice points at a pod, and a WorkloadEntry standing for a VM (a pod in a
// namespace outside the mesh), both reached from an ambient client pod through its ztunnel.
//
// Traffic is sent by curl inside the client pod's network namespace (see l4-mesh.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { waitFor } from '../exec.ts';
import {
  mtlsConnections,
  ztunnelConfigDump,
  ztunnelMetrics,
  ztunnelPods,
  type MetricSample,
} from '../mesh/observe.ts';
import { createAppNamespace, echoPod, httpCode, readyPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'l4-sources';
const VM_NS = 'l4-sources-vm';
const TD = 'spiffe://cluster.local';
const WE_UID = `Kubernetes/networking.istio.io/WorkloadEntry/${NS}/vm-1`;
let cluster: Cluster;

type PodInfo = MeshPod;

function echo(name: string, namespace: string, node: string, labels: Record<string, string>): object {
  return echoPod(name, {
    namespace,
    node,
    labels,
    serviceAccount: namespace === NS ? 'echo' : 'default',
    containerName: 'echo',
    containerPorts: [8080],
  });
}

/** Waits until the pod is Ready (and, in the mesh namespace, enrolled) and returns where it is. */
const ready = (namespace: string, name: string, enrolled: boolean): Promise<PodInfo> =>
  readyPod(cluster, namespace, name, { enrolled });

const get = (from: PodInfo, target: string): Promise<number> => httpCode(from, target, { close: false });

async function allSamples(): Promise<MetricSample[]> {
  const out: MetricSample[] = [];
  for (const z of await ztunnelPods(cluster.client, cluster.layout)) out.push(...(await ztunnelMetrics(z)));
  return out;
}

interface DumpLike {
  readonly workloads?: {
    uid?: string;
    serviceAccount?: string;
    namespace?: string;
    workloadIps?: string[];
    protocol?: string;
  }[];
  readonly services?: { hostname?: string; endpoints?: Record<string, unknown> }[];
}

/** Every ztunnel's config dump once `ready` holds for all of them. */
async function dumpsWhere(what: string, ok: (d: DumpLike) => boolean): Promise<DumpLike[]> {
  return waitFor(
    what,
    async () => {
      const zs = await ztunnelPods(cluster.client, cluster.layout);
      if (zs.length < 2) return undefined;
      const dumps: DumpLike[] = [];
      for (const z of zs) {
        const d = (await ztunnelConfigDump(z)) as DumpLike | undefined;
        if (d === undefined || !ok(d)) return undefined;
        dumps.push(d);
      }
      return dumps;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

let client: PodInfo;
let backend: PodInfo;
let vm: PodInfo;

describe('non-pod sources (EndpointSlice, WorkloadEntry) through the mesh', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'srcs62', slot: 62, nodes: 2 }));
    const create = (path: string, body: object): Promise<unknown> => cluster.client.create(path, body);
    await createAppNamespace(cluster, NS, ['echo', 'client', 'vm-sa']);
    await createAppNamespace(cluster, VM_NS, [], false);
    // No Service selects the backend: only the manual EndpointSlice ties it to `manual`.
    await create(`/api/v1/namespaces/${NS}/pods`, echo('echo-backend', NS, 'node-1', { role: 'backend' }));
    await create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('client', {
        namespace: NS,
        node: 'node-0',
        labels: { app: 'client' },
        containerName: 'client',
        env: { PORT: '9090' },
      }),
    );
    // The "VM": a pod outside the mesh, known to the mesh only through a WorkloadEntry.
    await create(`/api/v1/namespaces/${VM_NS}/pods`, echo('vm', VM_NS, 'node-1', { app: 'vm' }));
    client = await ready(NS, 'client', true);
    backend = await ready(NS, 'echo-backend', true);
    vm = await ready(VM_NS, 'vm', false);

    await create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'manual', namespace: NS },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    await create(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'manual-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'manual' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: [backend.ip],
          conditions: { ready: true },
          targetRef: { kind: 'Pod', namespace: NS, name: 'echo-backend', uid: backend.uid },
        },
      ],
    });
    await create(`/apis/networking.istio.io/v1/namespaces/${NS}/workloadentries`, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'vm-1', namespace: NS, labels: { app: 'vm' } },
      spec: { address: vm.ip, serviceAccount: 'vm-sa', ports: { http: 8080 } },
    });
    await create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'vms', namespace: NS },
      spec: { selector: { app: 'vm' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    });
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('reaches a selector-less Service through its manual EndpointSlice, over mTLS to the pod', async () => {
    const svc = await cluster.client.get<{ spec?: { clusterIP?: string } }>(
      `/api/v1/namespaces/${NS}/services/manual`,
    );
    // Both pods' own workloads first (the client's ztunnel needs it to send), then the Service.
    await dumpsWhere('the client and backend workloads in every ztunnel', d =>
      [client.ip, backend.ip].every(ip =>
        (d.workloads ?? []).some(w => w.workloadIps?.includes(ip) === true),
      ),
    );
    // The echo server listens a moment after its container starts (the pod has no readiness probe).
    await waitFor(
      'the backend answering on its pod IP',
      async () => ((await get(client, `http://${backend.ip}:8080/`)) === 200 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await dumpsWhere('the backend listed by the manual Service in every ztunnel', d =>
      (d.services ?? []).some(
        s =>
          s.hostname === `manual.${NS}.svc.cluster.local` &&
          Object.keys(s.endpoints ?? {}).some(k => k.endsWith(`/Pod/${NS}/echo-backend`)),
      ),
    );
    expect(await get(client, `http://${svc.spec?.clusterIP ?? ''}/`)).toBe(200);
    const sample = await waitFor(
      'the destination ztunnel to count the connection',
      async () =>
        mtlsConnections(await allSamples()).find(
          s =>
            s.labels.reporter === 'destination' &&
            s.labels.destination_workload === 'echo-backend' &&
            s.value > 0,
        ),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(sample.labels).toMatchObject({
      source_principal: `${TD}/ns/${NS}/sa/client`,
      destination_principal: `${TD}/ns/${NS}/sa/echo`,
      connection_security_policy: 'mutual_tls',
    });
  }, 120_000);

  it('publishes the WorkloadEntry with its identity and reaches it through the Service selecting it', async () => {
    const dumps = await dumpsWhere('the WorkloadEntry in every ztunnel', d =>
      (d.workloads ?? []).some(w => w.uid === WE_UID),
    );
    const w = dumps[0]!.workloads!.find(x => x.uid === WE_UID)!;
    expect(w).toMatchObject({
      namespace: NS,
      serviceAccount: 'vm-sa',
      workloadIps: [vm.ip],
      protocol: 'TCP',
    });
    const svc = await cluster.client.get<{ spec?: { clusterIP?: string } }>(
      `/api/v1/namespaces/${NS}/services/vms`,
    );
    await dumpsWhere('the WorkloadEntry behind Service vms', d =>
      (d.services ?? []).some(
        s =>
          s.hostname === `vms.${NS}.svc.cluster.local` &&
          Object.keys(s.endpoints ?? {}).some(k => k.includes(WE_UID)),
      ),
    );
    expect(await get(client, `http://${svc.spec?.clusterIP ?? ''}/`)).toBe(200);
  }, 120_000);
});
