// Cluster tier: ztunnel's DNS proxy with DNS capture on, on a 2-node local cluster (own name and
// slot). The client pod asks for DNS capture with its annotation (`ambient.istio.io/dns-capture`),
// so this file holds whatever the cni-agent's default is.
//
// Queries are sent from the client pod's network namespace to the pod's nameserver (the cluster
// DNS Service IP) on port 53, as the pod's resolver does; the in-pod rules redirect them to
// ztunnel's proxy on 15053. A name only WDS knows (`<svc>.<ns>`, which the cluster DNS refuses)
// proves the answer comes from ztunnel; a name only the cluster DNS knows (a pod A record) proves
// forwarding.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods, type MetricSample } from '../mesh/observe.ts';

const NS = 'dns-egress';
let cluster: Cluster;

interface PodInfo {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}
const pods = new Map<string, PodInfo>();
let serviceIp = '';

/** A DNS client (python3, no library): one A query over UDP or TCP; prints `rcode ip ip ...`. */
const DNS_QUERY = String.raw`
import socket, struct, sys, random
server, name, proto = sys.argv[1], sys.argv[2], sys.argv[3]
qid = random.randrange(65536)
q = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0)
for label in name.strip('.').split('.'):
    q += bytes([len(label)]) + label.encode()
q += b'\x00' + struct.pack('!HH', 1, 1)
if proto == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.sendto(q, (server, 53)); r, _ = s.recvfrom(4096)
else:
    s = socket.create_connection((server, 53), timeout=5)
    s.sendall(struct.pack('!H', len(q)) + q)
    size = struct.unpack('!H', s.recv(2))[0]; r = b''
    while len(r) < size: r += s.recv(size - len(r))
rid, flags, qd, an = struct.unpack('!HHHH', r[:8])
assert rid == qid, 'id mismatch'
i = 12
def skip_name(i):
    while True:
        n = r[i]
        if n == 0: return i + 1
        if n & 0xC0 == 0xC0: return i + 2
        i += 1 + n
for _ in range(qd): i = skip_name(i) + 4
ips = []
for _ in range(an):
    i = skip_name(i)
    rtype, _, _, rdlen = struct.unpack('!HHIH', r[i:i+10]); i += 10
    if rtype == 1: ips.append(socket.inet_ntoa(r[i:i+4]))
    i += rdlen
print(flags & 0xF, *ips)
`;

interface DnsResult {
  readonly rcode: number;
  readonly addresses: readonly string[];
}

async function query(from: PodInfo, name: string, proto: 'udp' | 'tcp'): Promise<DnsResult> {
  const r = await runCommand(
    ['ip', 'netns', 'exec', from.netns, 'python3', '-c', DNS_QUERY, cluster.layout.dnsServiceIp, name, proto],
    { allowFailure: true },
  );
  const [rcode = '-1', ...addresses] = r.stdout.trim().split(/\s+/);
  if (r.stdout.trim() === '') throw new Error(`no DNS answer for ${name} over ${proto}: ${r.stderr.trim()}`);
  return { rcode: Number(rcode), addresses };
}

async function enrolled(name: string): Promise<PodInfo> {
  return waitFor(
    `pod ${name} enrolled and Ready`,
    async () => {
      const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${name}`);
      const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
      if (p.metadata?.annotations?.['ambient.istio.io/redirection'] !== 'enabled' || !ready) return undefined;
      return {
        name,
        ip: p.status?.podIP ?? '',
        netns: podNetnsName(cluster.layout, p.metadata.uid ?? ''),
        node: p.spec?.nodeName ?? '',
      };
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

async function inZtunnelConfig(ip: string): Promise<void> {
  await waitFor(
    `workload ${ip} in every ztunnel's config`,
    async () => {
      const zs = await ztunnelPods(cluster.client, cluster.layout);
      if (zs.length < 2) return undefined;
      for (const z of zs) {
        const dump = await ztunnelConfigDump(z);
        const workloads = (dump?.workloads ?? []) as { workloadIps?: string[] }[];
        if (!workloads.some(w => w.workloadIps?.includes(ip) === true)) return undefined;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

/** The client's ztunnel's DNS samples of `name` from the client workload. */
async function dnsCount(node: string, name: string): Promise<number> {
  const z = (await ztunnelPods(cluster.client, cluster.layout)).find(p => p.node === node);
  if (z === undefined) throw new Error(`no ztunnel on ${node}`);
  const samples: MetricSample[] = await ztunnelMetrics(z);
  return samples
    .filter(s => s.name === name && s.labels.source_canonical_service === 'client')
    .reduce((sum, s) => sum + s.value, 0);
}

function pod(
  name: string,
  node: string,
  labels: Record<string, string>,
  annotations: Record<string, string>,
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels, annotations },
    spec: {
      nodeName: node,
      serviceAccountName: name === 'client' ? 'client' : 'echo',
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'ambient-mesh/echo:0.1.0',
          ...(name === 'client'
            ? { env: [{ name: 'PORT', value: '9090' }] }
            : { ports: [{ containerPort: 8080 }] }),
        },
      ],
    },
  };
}

describe('DNS proxy with capture on, on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'dnsegr', slot: 59, nodes: 2 }));
    await cluster.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    for (const sa of ['echo', 'client']) {
      await cluster.client.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: NS },
      });
    }
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod('echo', 'node-1', { app: 'echo' }, {}));
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod('client', 'node-0', { app: 'client' }, { 'ambient.istio.io/dns-capture': 'true' }),
    );
    for (const name of ['echo', 'client']) pods.set(name, await enrolled(name));
    for (const p of pods.values()) await inZtunnelConfig(p.ip);
    const svc = await cluster.client.get<{ spec?: { clusterIP?: string } }>(
      `/api/v1/namespaces/${NS}/services/echo`,
    );
    serviceIp = svc.spec?.clusterIP ?? '';
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
    const r = await runCommand(
      [
        'ip',
        'netns',
        'exec',
        client.netns,
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{remote_ip}',
        '--max-time',
        '10',
        `http://echo.${NS}.svc.cluster.local/`,
      ],
      { allowFailure: true },
    );
    expect(r.stdout.trim()).toBe(`200 ${serviceIp}`);
  });
});
