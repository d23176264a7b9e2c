// Cluster tier: ztunnel's DNS proxy with DNS capture on, on a 2-node local cluster (own name and
// slot). The client pod asks for DNS capture with its annotation (`ambient.istio.io/dns-capture`),
// so this file holds whatever the cni-agent's default is.
//
// Queries are sent from the client pod's network namespace to the pod's nameserver (the cluster
// DNS Service IP) on port 53, as the pod's resolver does; the in-pod rules redirect them to
// ztunnel's proxy on 15053. A name only WDS knows (`<svc>.<ns>`, which the cluster DNS refuses)
// proves the answer comes from ztunnel; a name only the cluster DNS knows (a pod A record) proves
// forwarding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import {
  createAppNamespace,
  createEchoService,
  curlInPod,
  serviceClusterIp,
  type MeshPod,
} from '../mesh/workloads.ts';
import { DnsScenario } from './dns-fixture.ts';

const NS = 'dns-egress';
let cluster: Cluster;

const pods = new Map<string, MeshPod>();
let serviceIp = '';

const scenario = new DnsScenario(NS);
const { query, pod, enrolled, inZtunnelConfig, sampleSum } = scenario;

/** The client's ztunnel's DNS samples of `name` from the client workload. */
async function dnsCount(node: string, name: string): Promise<number> {
  return sampleSum(node, s => s.name === name && s.labels.source_canonical_service === 'client');
}

describe('DNS proxy with capture on, on a 2-node local cluster', () => {
  beforeAll(async () => {
    cluster = await scenario.start('dnsegr', 59);
    await createAppNamespace(cluster, NS, ['echo', 'client']);
    await createEchoService(cluster, NS);
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod('echo', 'node-1', { app: 'echo' }, {}));
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod('client', 'node-0', { app: 'client' }, { 'ambient.istio.io/dns-capture': 'true' }),
    );
    for (const name of ['echo', 'client']) pods.set(name, await enrolled(name));
    for (const p of pods.values()) await inZtunnelConfig(p.ip);
    serviceIp = await serviceClusterIp(cluster, NS, 'echo');
  }, 600_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('answers a Service and its short form from WDS, over UDP and TCP', async () => {
    const client = pods.get('client')!;
    const before = await dnsCount(client.node, 'istio_dns_requests_total');
    expect(await query(client, `echo.${NS}.svc.cluster.local`, 'udp')).toEqual({
      rcode: 0,
      addresses: [serviceIp],
    });
    expect(await query(client, `echo.${NS}.svc.cluster.local`, 'tcp')).toEqual({
      rcode: 0,
      addresses: [serviceIp],
    });
    // The cluster DNS refuses `<svc>.<ns>` (not in its zone): only ztunnel answers it.
    expect(await query(client, `echo.${NS}`, 'udp')).toEqual({ rcode: 0, addresses: [serviceIp] });
    expect(await dnsCount(client.node, 'istio_dns_requests_total')).toBe(before + 3);
  });

  it('forwards a name WDS does not know to the cluster DNS, and relays its NXDOMAIN', async () => {
    const client = pods.get('client')!;
    const echo = pods.get('echo')!;
    const before = await dnsCount(client.node, 'istio_dns_upstream_requests_total');
    const podName = `${echo.ip.replaceAll('.', '-')}.${NS}.pod.cluster.local`;
    expect(await query(client, podName, 'udp')).toEqual({ rcode: 0, addresses: [echo.ip] });
    expect(await query(client, `nothing.${NS}.svc.cluster.local`, 'udp')).toEqual({
      rcode: 3,
      addresses: [],
    });
    expect(await dnsCount(client.node, 'istio_dns_upstream_requests_total')).toBe(before + 2);
    expect(await dnsCount(client.node, 'istio_dns_upstream_failures_total')).toBe(0);
  });

  it('lets the pod reach the Service by name through the mesh', async () => {
    const client = pods.get('client')!;
    // curl resolves through the namespace's resolv.conf; whatever nameserver it names, port 53 is captured.
    const answer = await curlInPod(client, `http://echo.${NS}.svc.cluster.local/`, {
      writeOut: '%{http_code} %{remote_ip}',
      maxTimeS: 10,
      close: false,
    });
    expect(answer).toBe(`200 ${serviceIp}`);
  });
});
