/**
 * The L4 scenario, written once for every mesh it runs on (the direct install of
 * `scenarios/l4-mesh.test.ts`, the operator's of `operator/operator.test.ts`): an ambient namespace
 * with Service `echo` over two echo pods, `echo-same` beside the client on node-0 and `echo-cross`
 * on node-1, and the checks a file runs on it as its cases, in order: pod-IP and service-VIP
 * traffic over mTLS with both identities in ztunnel's metrics, the L4 telemetry names and labels,
 * and PeerAuthentication PERMISSIVE/STRICT against a pod outside the mesh.
 *
 * Traffic is sent by curl run inside the client pod's network namespace: the in-pod redirection
 * rules capture every process of that netns, so this is the pod's own traffic.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { mtlsConnections, ztunnelMetrics, ztunnelPods, type MetricSample } from './observe.ts';
import {
  createAppNamespace,
  createEchoService,
  echoPod,
  httpCode,
  inEveryZtunnelConfig,
  readyPod,
  serviceClusterIp,
  type MeshPod,
} from './workloads.ts';

const TD = 'spiffe://cluster.local';

/** What `setUpL4Scenario` made: the checks run on it. */
export interface L4Scenario {
  readonly cluster: Cluster;
  /** The ambient namespace of the pods and Service `echo`. */
  readonly namespace: string;
  /** A namespace outside the mesh for the PeerAuthentication check's plaintext pod. */
  readonly plainNamespace: string;
  /** `client`, `echo-same`, `echo-cross`. */
  readonly pods: ReadonlyMap<string, MeshPod>;
  readonly serviceIp: string;
}

/**
 * Creates the ambient namespace with service accounts `echo` and `client`, Service `echo`, the
 * pods `echo-same` (node-0), `echo-cross` (node-1) and `client` (node-0, an idle echo on 9090 the
 * checks send from); waits for each Ready, enrolled and in every ztunnel's config.
 */
export async function setUpL4Scenario(
  cluster: Cluster,
  namespace: string,
  plainNamespace: string,
): Promise<L4Scenario> {
  await createAppNamespace(cluster, namespace, ['echo', 'client']);
  await createEchoService(cluster, namespace);
  const podsPath = `/api/v1/namespaces/${namespace}/pods`;
  for (const [name, node] of [
    ['echo-same', 'node-0'],
    ['echo-cross', 'node-1'],
  ] as const) {
    await cluster.client.create(
      podsPath,
      echoPod(name, {
        namespace,
        node,
        serviceAccount: 'echo',
        labels: { app: 'echo', version: 'v1' },
        containerName: 'echo',
        containerPorts: [8080],
      }),
    );
  }
  await cluster.client.create(
    podsPath,
    echoPod('client', { namespace, node: 'node-0', containerName: 'client', env: { PORT: '9090' } }),
  );
  const pods = new Map<string, MeshPod>();
  for (const name of ['echo-same', 'echo-cross', 'client'])
    pods.set(name, await readyPod(cluster, namespace, name));
  for (const p of pods.values()) await inEveryZtunnelConfig(cluster, p.ip);
  const serviceIp = await serviceClusterIp(cluster, namespace, 'echo');
  return { cluster, namespace, plainNamespace, pods, serviceIp };
}

function pod(s: L4Scenario, name: string): MeshPod {
  const p = s.pods.get(name);
  if (p === undefined) throw new Error(`pod ${name} was not set up`);
  return p;
}

async function allMetrics(s: L4Scenario): Promise<{ node: string; samples: MetricSample[] }[]> {
  const out = [];
  for (const z of await ztunnelPods(s.cluster.client, s.cluster.layout)) {
    out.push({ node: z.node, samples: await ztunnelMetrics(z) });
  }
  return out;
}

/** The mTLS connection count the destination ztunnel reported for client -> `workload`. */
function mtlsTo(s: L4Scenario, all: { samples: MetricSample[] }[], workload: string): number {
  let n = 0;
  for (const { samples } of all) {
    for (const m of mtlsConnections(samples)) {
      if (
        m.labels.reporter === 'destination' &&
        m.labels.destination_workload === workload &&
        m.labels.destination_workload_namespace === s.namespace &&
        m.labels.source_principal === `${TD}/ns/${s.namespace}/sa/client`
      )
        n += m.value;
    }
  }
  return n;
}

async function podIpOverMtls(s: L4Scenario): Promise<void> {
  const ns = s.namespace;
  const client = pod(s, 'client');
  const same = pod(s, 'echo-same');
  const cross = pod(s, 'echo-cross');
  expect(same.node).toBe(client.node);
  expect(cross.node).not.toBe(client.node);
  const before = await allMetrics(s);
  for (let i = 0; i < 3; i++) {
    expect(await httpCode(client, `http://${same.ip}:8080/`)).toBe(200);
    expect(await httpCode(client, `http://${cross.ip}:8080/`)).toBe(200);
  }
  const after = await waitFor(
    'the destination ztunnels to count the connections',
    async () => {
      const m = await allMetrics(s);
      return mtlsTo(s, m, 'echo-same') - mtlsTo(s, before, 'echo-same') >= 3 &&
        mtlsTo(s, m, 'echo-cross') - mtlsTo(s, before, 'echo-cross') >= 3
        ? m
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
  const sample = after
    .flatMap(m => mtlsConnections(m.samples))
    .find(
      m =>
        m.labels.reporter === 'destination' &&
        m.labels.destination_workload === 'echo-cross' &&
        m.labels.destination_workload_namespace === ns,
    );
  expect(sample?.labels).toMatchObject({
    source_principal: `${TD}/ns/${ns}/sa/client`,
    destination_principal: `${TD}/ns/${ns}/sa/echo`,
    source_workload_namespace: ns,
    destination_workload_namespace: ns,
    connection_security_policy: 'mutual_tls',
    request_protocol: 'tcp',
  });
}

async function serviceVipOverMtls(s: L4Scenario): Promise<void> {
  const ns = s.namespace;
  const client = pod(s, 'client');
  const before = await allMetrics(s);
  // kube-proxy-free: ztunnel picks the endpoint; enough requests reach both (bounded).
  let reachedBoth = false;
  for (let i = 0; i < 40 && !reachedBoth; i++) {
    expect(await httpCode(client, `http://${s.serviceIp}/`)).toBe(200);
    const m = await allMetrics(s);
    reachedBoth =
      mtlsTo(s, m, 'echo-same') > mtlsTo(s, before, 'echo-same') &&
      mtlsTo(s, m, 'echo-cross') > mtlsTo(s, before, 'echo-cross');
  }
  expect(reachedBoth).toBe(true);
  const source = (await allMetrics(s))
    .flatMap(m => mtlsConnections(m.samples))
    .find(
      m =>
        m.labels.reporter === 'source' &&
        m.labels.destination_service_name === 'echo' &&
        m.labels.destination_service_namespace === ns,
    );
  expect(source?.labels).toMatchObject({
    destination_service: `echo.${ns}.svc.cluster.local`,
    destination_service_namespace: ns,
    source_principal: `${TD}/ns/${ns}/sa/client`,
  });
}

async function telemetryNames(s: L4Scenario): Promise<void> {
  const names = new Set((await allMetrics(s)).flatMap(m => m.samples.map(x => x.name)));
  for (const name of [
    'istio_tcp_connections_opened_total',
    'istio_tcp_connections_closed_total',
    'istio_tcp_received_bytes_total',
    'istio_tcp_sent_bytes_total',
    'istio_build',
  ]) {
    expect(names, name).toContain(name);
  }
  const closed = (await allMetrics(s))
    .flatMap(m => m.samples)
    .find(x => x.name === 'istio_tcp_connections_closed_total' && x.labels.reporter === 'destination');
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
}

async function peerAuthentication(s: L4Scenario): Promise<void> {
  const { client } = s.cluster;
  const plainNs = s.plainNamespace;
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: plainNs },
  });
  await client.create(`/api/v1/namespaces/${plainNs}/pods`, {
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
      const p = await client.get<V1Pod>(`/api/v1/namespaces/${plainNs}/pods/outsider`);
      return p.status?.phase === 'Running' && p.status.podIP !== undefined
        ? { netns: podNetnsName(s.cluster.layout, p.metadata?.uid ?? '') }
        : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const target = `http://${pod(s, 'echo-same').ip}:8080/`;
  // Default (no policy) is PERMISSIVE: plaintext is accepted.
  expect(await httpCode(outsider, target)).toBe(200);
  const paPath = `/apis/security.istio.io/v1/namespaces/${s.namespace}/peerauthentications`;
  await client.create(paPath, {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'default', namespace: s.namespace },
    spec: { mtls: { mode: 'STRICT' } },
  });
  await waitFor(
    'STRICT to refuse plaintext',
    async () => ((await httpCode(outsider, target)) === 0 ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  // Mesh traffic still flows under STRICT.
  expect(await httpCode(pod(s, 'client'), target)).toBe(200);
  await client.mergePatch(`${paPath}/default`, { spec: { mtls: { mode: 'PERMISSIVE' } } });
  await waitFor(
    'PERMISSIVE to accept plaintext again',
    async () => ((await httpCode(outsider, target)) === 200 ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  await client.delete(`${paPath}/default`);
}

/** One check of the scenario: a file runs each as a case, in this order. */
export interface L4Check {
  readonly name: string;
  readonly timeoutMs: number;
  readonly run: (s: L4Scenario) => Promise<void>;
}

export const L4_CHECKS: readonly L4Check[] = [
  {
    name: 'carries pod-IP traffic over mTLS on the same node and across nodes, with both identities in the metrics',
    timeoutMs: 60_000,
    run: podIpOverMtls,
  },
  {
    name: 'carries service-VIP traffic over mTLS to both endpoints (same node and cross node)',
    timeoutMs: 120_000,
    run: serviceVipOverMtls,
  },
  { name: 'exports the L4 telemetry metric names with Istio labels', timeoutMs: 60_000, run: telemetryNames },
  {
    name: 'PeerAuthentication PERMISSIVE accepts plaintext from an uncaptured pod; STRICT refuses it',
    timeoutMs: 180_000,
    run: peerAuthentication,
  },
];
