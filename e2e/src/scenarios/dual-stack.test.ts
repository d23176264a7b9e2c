// Cluster tier: the L4 ambient mesh on a dual-stack local cluster (IPv4 primary, IPv6 secondary;
// own name and slot). Two ambient pods on different nodes talk over IPv6 through HBONE (counted
// as mutual TLS at the destination ztunnel), and an AuthorizationPolicy DENY on the client's IPv6
// address is enforced while its IPv4 traffic still passes.
//
// Traffic is sent by curl inside the client pod's network namespace: the in-pod rules capture it
// on both families, as they capture the pod's own traffic.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { mtlsConnections, ztunnelMetrics, ztunnelPods, type MetricSample } from '../mesh/observe.ts';
import { dnsQuery } from './dns-fixture.ts';
import { createAppNamespace, echoPod, httpCode, inEveryZtunnelConfig, readyPod } from '../mesh/workloads.ts';

const NS = 'dual-stack';
const TD = 'spiffe://cluster.local';
let cluster: Cluster;
const started = Date.now();

interface DualPod {
  readonly name: string;
  readonly netns: string;
  readonly node: string;
  readonly ip4: string;
  readonly ip6: string;
}
let client: DualPod;
let server: DualPod;
let serviceIp6 = '';

const url = (ip: string, port: number): string =>
  ip.includes(':') ? `http://[${ip}]:${port}/` : `http://${ip}:${port}/`;

/** A Ready, enrolled pod with one address of each family. */
async function dualPod(name: string): Promise<DualPod> {
  const ready = await readyPod(cluster, NS, name);
  const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${name}`);
  const ips = (p.status?.podIPs ?? []).map(i => i.ip);
  const ip4 = ips.find(ip => !ip.includes(':'));
  const ip6 = ips.find(ip => ip.includes(':'));
  if (ip4 === undefined || ip6 === undefined) {
    throw new Error(`pod ${NS}/${name} is not dual-stack: podIPs ${JSON.stringify(ips)}`);
  }
  return { name, netns: ready.netns, node: ready.node, ip4, ip6 };
}

/** The echo's JSON answer to a GET from the client (its `remote` is the source it saw). */
async function echoFromClient(target: string): Promise<{ remote?: string } | undefined> {
  const r = await runCommand(
    ['ip', 'netns', 'exec', client.netns, 'curl', '-s', '--max-time', '5', '-H', 'Connection: close', target],
    { allowFailure: true },
  );
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as { remote?: string };
  } catch {
    return undefined;
  }
}

async function allMetrics(): Promise<MetricSample[][]> {
  const out: MetricSample[][] = [];
  for (const z of await ztunnelPods(cluster.client, cluster.layout)) out.push(await ztunnelMetrics(z));
  return out;
}

/** Connections the destination ztunnel counted as mutual TLS from the client to the server. */
function mtlsToServer(all: MetricSample[][]): number {
  let n = 0;
  for (const samples of all) {
    for (const s of mtlsConnections(samples)) {
      if (
        s.labels.reporter === 'destination' &&
        s.labels.destination_workload === 'server' &&
        s.labels.source_principal === `${TD}/ns/${NS}/sa/client` &&
        s.labels.connection_security_policy === 'mutual_tls'
      )
        n += s.value;
    }
  }
  return n;
}

describe('the L4 ambient mesh on a dual-stack local cluster', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({
      name: 'dualst',
      slot: 144,
      nodes: 2,
      ipFamilies: ['IPv4', 'IPv6'],
    }));
    await createAppNamespace(cluster, NS, ['server', 'client']);
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'server', namespace: NS },
      spec: {
        selector: { app: 'server' },
        ipFamilyPolicy: 'RequireDualStack',
        ipFamilies: ['IPv4', 'IPv6'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    });
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('server', { namespace: NS, node: 'node-1', containerName: 'echo', containerPorts: [8080] }),
    );
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('client', { namespace: NS, node: 'node-0', containerName: 'client', env: { PORT: '9090' } }),
    );
    server = await dualPod('server');
    client = await dualPod('client');
    for (const ip of [server.ip4, server.ip6, client.ip4, client.ip6])
      await inEveryZtunnelConfig(cluster, ip);
    const svc = await cluster.client.get<{ spec?: { clusterIPs?: string[] } }>(
      `/api/v1/namespaces/${NS}/services/server`,
    );
    serviceIp6 = (svc.spec?.clusterIPs ?? []).find(ip => ip.includes(':')) ?? '';
    console.log(
      `[dual-stack] client ${client.ip4} ${client.ip6} on ${client.node}, server ${server.ip4} ${server.ip6} on ${server.node}, service ${serviceIp6}; setup took ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
    console.log(`[dual-stack] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('gives the pods, the nodes and a RequireDualStack Service an address of each family', () => {
    expect(client.node).not.toBe(server.node);
    expect(server.ip6).toMatch(/^fd00:10:244:/);
    expect(serviceIp6).toMatch(/^fd00:10:96:/);
    for (const n of cluster.nodes) expect(n.address6).toMatch(/^fd00:10:211:144::/);
  });

  it("carries pod-to-pod IPv6 across nodes through HBONE: mutual TLS at the destination, the client's IPv6 source kept", async () => {
    const before = mtlsToServer(await allMetrics());
    for (let i = 0; i < 3; i++) {
      const answer = await echoFromClient(url(server.ip6, 8080));
      expect(answer?.remote).toBe(client.ip6);
    }
    const counted = await waitFor(
      'the destination ztunnel to count 3 mutual-TLS connections',
      async () => {
        const n = mtlsToServer(await allMetrics()) - before;
        return n >= 3 ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    console.log(`[dual-stack] ${counted} mutual-TLS connections counted for 3 IPv6 requests`);
    expect(counted).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it('carries traffic to the IPv6 Service VIP through the mesh', async () => {
    expect(serviceIp6).not.toBe('');
    const before = mtlsToServer(await allMetrics());
    const answer = await echoFromClient(url(serviceIp6, 80));
    expect(answer?.remote).toBe(client.ip6);
    await waitFor(
      'the Service-VIP connection counted as mutual TLS',
      async () => (mtlsToServer(await allMetrics()) > before ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 90_000);

  it("answers A and AAAA for the dual-stack Service from the pod's DNS (ztunnel's DNS proxy)", async () => {
    const name = `server.${NS}.svc.cluster.local`;
    const aaaa = await dnsQuery(cluster, client, name, 'udp', 'AAAA');
    expect(aaaa).toEqual({ rcode: 0, addresses: [serviceIp6] });
    const a = await dnsQuery(cluster, client, name, 'udp', 'A');
    expect(a.rcode).toBe(0);
    expect(a.addresses).toHaveLength(1);
    expect(a.addresses[0]).not.toContain(':');
  }, 60_000);

  it("enforces a DENY on the client's IPv6 address while its IPv4 traffic still passes", async () => {
    const path = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;
    await cluster.client.create(path, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-client-v6', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'server' } },
        action: 'DENY',
        rules: [{ from: [{ source: { ipBlocks: [`${client.ip6}/128`] } }] }],
      },
    });
    await waitFor(
      "the DENY to refuse the client's IPv6 connection",
      async () => ((await httpCode(client, url(server.ip6, 8080))) === 0 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // Denied every time, while IPv4 from the same pod is allowed.
    for (let i = 0; i < 3; i++) {
      expect(await httpCode(client, url(server.ip6, 8080))).toBe(0);
      expect(await httpCode(client, url(server.ip4, 8080))).toBe(200);
    }
    const denied = (await allMetrics())
      .flatMap(samples => samples)
      .filter(
        s =>
          s.name === 'istio_tcp_connections_opened_total' &&
          s.labels.reporter === 'destination' &&
          s.labels.destination_workload === 'server' &&
          s.labels.response_flags === 'DENY',
      )
      .reduce((n, s) => n + s.value, 0);
    expect(denied).toBeGreaterThanOrEqual(3);
    await cluster.client.delete(`${path}/deny-client-v6`);
    await waitFor(
      'IPv6 allowed again once the policy is gone',
      async () => ((await httpCode(client, url(server.ip6, 8080))) === 200 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 180_000);
});
