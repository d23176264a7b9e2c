// Cluster tier: the L4 ambient mesh end to end on a 2-node local cluster (own name and slot, so
// it never clashes with the other cluster tests). One cluster is shared by the whole file.
//
// Traffic is sent by curl run inside the client pod's network namespace: the in-pod redirection
// rules capture every process of that netns, so this is the pod's own traffic.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { mtlsConnections, ztunnelMetrics, ztunnelPods, type MetricSample } from '../mesh/observe.ts';
import {
  createAppNamespace,
  createEchoService,
  echoPod,
  httpCode,
  inEveryZtunnelConfig,
  readyPod,
  serviceClusterIp,
} from '../mesh/workloads.ts';

const NS = 'l4-scenarios';
const TD = 'spiffe://cluster.local';
let cluster: Cluster;
const started = Date.now();

interface PodInfo {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}
const pods = new Map<string, PodInfo>();
let serviceIp = '';

async function apply(path: string, body: object): Promise<void> {
  await cluster.client.create(path, body);
}

function echo(name: string, node: string): object {
  return echoPod(name, {
    namespace: NS,
    node,
    serviceAccount: 'echo',
    labels: { app: 'echo', version: 'v1' },
    containerName: 'echo',
    containerPorts: [8080],
  });
}

/** Waits until the pod is enrolled (`enabled`, not `pending`) and Ready, and returns where it is. */
const enrolled = (name: string): Promise<PodInfo> => readyPod(cluster, NS, name);
/** Waits until every ztunnel has the workload of `ip` in its config (admin /config_dump). */
const inZtunnelConfig = (ip: string): Promise<void> => inEveryZtunnelConfig(cluster, ip);
/** An HTTP GET from the client pod; the HTTP code (0 when the connection failed). */
const get = (from: PodInfo, target: string): Promise<number> => httpCode(from, target);

async function allMetrics(): Promise<{ node: string; samples: MetricSample[] }[]> {
  const out = [];
  for (const z of await ztunnelPods(cluster.client, cluster.layout)) {
    out.push({ node: z.node, samples: await ztunnelMetrics(z) });
  }
  return out;
}

/** The mTLS connection count the destination ztunnel reported for client -> `workload`. */
function mtlsTo(all: { samples: MetricSample[] }[], workload: string): number {
  let n = 0;
  for (const { samples } of all) {
    for (const s of mtlsConnections(samples)) {
      if (
        s.labels.reporter === 'destination' &&
        s.labels.destination_workload === workload &&
        s.labels.source_principal === `${TD}/ns/${NS}/sa/client`
      )
        n += s.value;
    }
  }
  return n;
}

describe('the L4 ambient mesh on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'l4scen', slot: 9, nodes: 2 }));
    await createAppNamespace(cluster, NS, ['echo', 'client']);
    await createEchoService(cluster, NS);
    await apply(`/api/v1/namespaces/${NS}/pods`, echo('echo-same', 'node-0'));
    await apply(`/api/v1/namespaces/${NS}/pods`, echo('echo-cross', 'node-1'));
    // An idle process keeps the pod running; the test sends from its netns.
    await apply(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('client', { namespace: NS, node: 'node-0', containerName: 'client', env: { PORT: '9090' } }),
    );
    for (const name of ['echo-same', 'echo-cross', 'client']) pods.set(name, await enrolled(name));
    for (const p of pods.values()) await inZtunnelConfig(p.ip);
    serviceIp = await serviceClusterIp(cluster, NS, 'echo');
    console.log(`[scenarios] setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
    console.log(`[scenarios] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('carries pod-IP traffic over mTLS on the same node and across nodes, with both identities in the metrics', async () => {
    const client = pods.get('client')!;
    const same = pods.get('echo-same')!;
    const cross = pods.get('echo-cross')!;
    expect(same.node).toBe(client.node);
    expect(cross.node).not.toBe(client.node);
    const before = await allMetrics();
    for (let i = 0; i < 3; i++) {
      expect(await get(client, `http://${same.ip}:8080/`)).toBe(200);
      expect(await get(client, `http://${cross.ip}:8080/`)).toBe(200);
    }
    const after = await waitFor(
      'the destination ztunnels to count the connections',
      async () => {
        const m = await allMetrics();
        return mtlsTo(m, 'echo-same') - mtlsTo(before, 'echo-same') >= 3 &&
          mtlsTo(m, 'echo-cross') - mtlsTo(before, 'echo-cross') >= 3
          ? m
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    const sample = after
      .flatMap(m => mtlsConnections(m.samples))
      .find(s => s.labels.reporter === 'destination' && s.labels.destination_workload === 'echo-cross');
    expect(sample?.labels).toMatchObject({
      source_principal: `${TD}/ns/${NS}/sa/client`,
      destination_principal: `${TD}/ns/${NS}/sa/echo`,
      source_workload_namespace: NS,
      destination_workload_namespace: NS,
      connection_security_policy: 'mutual_tls',
      request_protocol: 'tcp',
    });
  }, 60_000);

  it('carries service-VIP traffic over mTLS to both endpoints (same node and cross node)', async () => {
    const client = pods.get('client')!;
    const before = await allMetrics();
    // kube-proxy-free: ztunnel picks the endpoint; enough requests reach both (bounded).
    let reachedBoth = false;
    for (let i = 0; i < 40 && !reachedBoth; i++) {
      expect(await get(client, `http://${serviceIp}/`)).toBe(200);
      const m = await allMetrics();
      reachedBoth =
        mtlsTo(m, 'echo-same') > mtlsTo(before, 'echo-same') &&
        mtlsTo(m, 'echo-cross') > mtlsTo(before, 'echo-cross');
    }
    expect(reachedBoth).toBe(true);
    const source = (await allMetrics())
      .flatMap(m => mtlsConnections(m.samples))
      .find(s => s.labels.reporter === 'source' && s.labels.destination_service_name === 'echo');
    expect(source?.labels).toMatchObject({
      destination_service: `echo.${NS}.svc.cluster.local`,
      destination_service_namespace: NS,
      source_principal: `${TD}/ns/${NS}/sa/client`,
    });
  }, 120_000);

  it('exports the L4 telemetry metric names with Istio labels', async () => {
    const names = new Set((await allMetrics()).flatMap(m => m.samples.map(s => s.name)));
    for (const name of [
      'istio_tcp_connections_opened_total',
      'istio_tcp_connections_closed_total',
      'istio_tcp_received_bytes_total',
      'istio_tcp_sent_bytes_total',
      'istio_build',
    ]) {
      expect(names, name).toContain(name);
    }
    const closed = (await allMetrics())
      .flatMap(m => m.samples)
      .find(s => s.name === 'istio_tcp_connections_closed_total' && s.labels.reporter === 'destination');
    expect(Object.keys(closed?.labels ?? {})).toEqual(
      expect.arrayContaining([
        'reporter',
        'source_workload',
        'source_principal',
        'destination_workload',
        'destination_principal',
        'destination_service',
        'request_protocol',
        'response_flags',
        'connection_security_policy',
      ]),
    );
  }, 60_000);

  it('PeerAuthentication PERMISSIVE accepts plaintext from an uncaptured pod; STRICT refuses it', async () => {
    const plainNs = 'l4-plain';
    await apply('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plainNs } });
    await apply(`/api/v1/namespaces/${plainNs}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'outsider', namespace: plainNs },
      spec: {
        nodeName: 'node-1',
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'c', image: 'ambient-mesh/echo:0.1.0', env: [{ name: 'PORT', value: '9090' }] }],
      },
    });
    const outsider = await waitFor(
      'the uncaptured pod Running',
      async () => {
        const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${plainNs}/pods/outsider`);
        return p.status?.phase === 'Running' && p.status.podIP !== undefined
          ? {
              name: 'outsider',
              ip: p.status.podIP,
              netns: podNetnsName(cluster.layout, p.metadata?.uid ?? ''),
              node: 'node-1',
            }
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const target = `http://${pods.get('echo-same')!.ip}:8080/`;
    // Default (no policy) is PERMISSIVE: plaintext is accepted.
    expect(await get(outsider, target)).toBe(200);
    const paPath = `/apis/security.istio.io/v1/namespaces/${NS}/peerauthentications`;
    await apply(paPath, {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: NS },
      spec: { mtls: { mode: 'STRICT' } },
    });
    await waitFor(
      'STRICT to refuse plaintext',
      async () => ((await get(outsider, target)) === 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    // Mesh traffic still flows under STRICT.
    expect(await get(pods.get('client')!, target)).toBe(200);
    await cluster.client.mergePatch(`${paPath}/default`, { spec: { mtls: { mode: 'PERMISSIVE' } } });
    await waitFor(
      'PERMISSIVE to accept plaintext again',
      async () => ((await get(outsider, target)) === 200 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await cluster.client.delete(`${paPath}/default`);
  }, 180_000);
});
