// Cluster tier: an egress ServiceEntry resolved by ztunnel's DNS proxy (issue 25). A pod in a
// namespace outside the mesh stands in for the external server (nothing outside this machine is
// reachable). The ServiceEntry names it `api.external.test` (resolution STATIC, its IP as the
// endpoint) and istiod allocates the VIP; with DNS capture on, the client pod resolves the host to
// that VIP, also in its search-expanded form, and reaches the server through it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { createAppNamespace, curlInPod, readyPod, type MeshPod } from '../mesh/workloads.ts';
import { DnsScenario, dnsScenarioPod } from './dns-fixture.ts';

const NS = 'dns-se';
const OUTSIDE_NS = 'dns-se-outside';
const HOST = 'api.external.test';
let cluster: Cluster;

const pods = new Map<string, MeshPod>();
let vip = '';

const scenario = new DnsScenario(NS);
const { query, pod, enrolled, inZtunnelConfig, sampleSum } = scenario;

/** The TCP connections the client's ztunnel reported to the ServiceEntry host, as the source. */
async function connectionsToHost(node: string): Promise<number> {
  return sampleSum(
    node,
    s =>
      s.name === 'istio_tcp_connections_opened_total' &&
      s.labels.reporter === 'source' &&
      s.labels.destination_service === HOST,
  );
}

describe('egress ServiceEntry through the DNS proxy, on a 2-node local cluster', () => {
  beforeAll(async () => {
    cluster = await scenario.start('dnsse', 61);
    await createAppNamespace(cluster, NS, ['client']);
    await createAppNamespace(cluster, OUTSIDE_NS, ['echo'], false);
    // The outside server: no mesh label and no `app` label, so nothing selects it.
    await cluster.client.create(
      `/api/v1/namespaces/${OUTSIDE_NS}/pods`,
      dnsScenarioPod(OUTSIDE_NS, 'echo', 'node-1', {}, {}),
    );
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod('client', 'node-0', { app: 'client' }, {}),
    );
    pods.set('client', await enrolled('client'));
    const server = (await readyPod(cluster, OUTSIDE_NS, 'echo', { enrolled: false })).ip;
    await cluster.client.create(`/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'external-api', namespace: NS },
      spec: {
        hosts: [HOST],
        location: 'MESH_EXTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
        endpoints: [{ address: server }],
      },
    });
    vip = await waitFor(
      'the VIP istiod allocates for the ServiceEntry host',
      async () => {
        const se = await cluster.client.get<{ status?: { addresses?: { value?: string; host?: string }[] } }>(
          `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries/external-api`,
        );
        return se.status?.addresses?.find(a => a.host === HOST && !(a.value ?? '').includes(':'))?.value;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await inZtunnelConfig(pods.get('client')!.ip);
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it("resolves the ServiceEntry host to istiod's allocated VIP, also in its search-expanded form", async () => {
    const client = pods.get('client')!;
    expect(vip).toMatch(/^240\.240\./);
    await waitFor(
      `${HOST} answered by ztunnel`,
      async () => ((await query(client, HOST, 'udp')).addresses[0] === vip ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(await query(client, HOST, 'tcp')).toEqual({ rcode: 0, addresses: [vip] });
    expect(await query(client, `${HOST}.${NS}.svc.cluster.local`, 'udp')).toEqual({
      rcode: 0,
      addresses: [vip],
    });
  });

  it('reaches the external server through the VIP, by name, counted with the ServiceEntry as destination service', async () => {
    const client = pods.get('client')!;
    const before = await connectionsToHost(client.node);
    const answer = await curlInPod(client, `http://${HOST}/`, {
      writeOut: '%{http_code} %{remote_ip}',
      maxTimeS: 10,
      close: false,
    });
    expect(answer).toBe(`200 ${vip}`);
    await waitFor(
      'the connection in the metrics with the ServiceEntry host as destination service',
      async () => ((await connectionsToHost(client.node)) > before ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });
});
