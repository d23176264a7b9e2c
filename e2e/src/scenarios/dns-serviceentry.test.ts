// Cluster tier: an egress ServiceEntry resolved by ztunnel's DNS proxy (issue 25). A pod in a
// namespace outside the mesh stands in for the external server (nothing outside this machine is
// reachable). The ServiceEntry names it `api.external.test` (resolution STATIC, its IP as the
// endpoint) and istiod allocates the VIP; with DNS capture on, the client pod resolves the host to
// that VIP, also in its search-expanded form, and reaches the server through it.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { ztunnelConfigDump, ztunnelMetrics, ztunnelPods, type MetricSample } from '../mesh/observe.ts';

const NS = 'dns-se';
const OUTSIDE_NS = 'dns-se-outside';
const HOST = 'api.external.test';
let cluster: Cluster;

interface PodInfo {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}
const pods = new Map<string, PodInfo>();
let vip = '';

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

/** The TCP connections the client's ztunnel reported to the ServiceEntry host, as the source. */
async function connectionsToHost(node: string): Promise<number> {
  const z = (await ztunnelPods(cluster.client, cluster.layout)).find(p => p.node === node);
  if (z === undefined) throw new Error(`no ztunnel on ${node}`);
  const samples: MetricSample[] = await ztunnelMetrics(z);
  return samples
    .filter(
      s =>
        s.name === 'istio_tcp_connections_opened_total' &&
        s.labels.reporter === 'source' &&
        s.labels.destination_service === HOST,
    )
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

describe('egress ServiceEntry through the DNS proxy, on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'dnsse', slot: 61, nodes: 2 }));
    await cluster.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    await cluster.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: OUTSIDE_NS },
    });
    for (const [ns, sa] of [
      [NS, 'client'],
      [OUTSIDE_NS, 'echo'],
    ] as const) {
      await cluster.client.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: ns },
      });
    }
    const outside = {
      ...pod('echo', 'node-1', { app: 'outside' }, {}),
      metadata: { name: 'echo', namespace: OUTSIDE_NS },
    };
    await cluster.client.create(`/api/v1/namespaces/${OUTSIDE_NS}/pods`, outside);
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod('client', 'node-0', { app: 'client' }, {}),
    );
    pods.set('client', await enrolled('client'));
    const server = await waitFor(
      'the outside server running',
      async () => {
        const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${OUTSIDE_NS}/pods/echo`);
        const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
        return ready && p.status?.podIP !== undefined ? p.status.podIP : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
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
        `http://${HOST}/`,
      ],
      { allowFailure: true },
    );
    expect(r.stdout.trim()).toBe(`200 ${vip}`);
    await waitFor(
      'the connection in the metrics with the ServiceEntry host as destination service',
      async () => ((await connectionsToHost(client.node)) > before ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });
});
