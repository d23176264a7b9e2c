/**
 * What the DNS-proxy scenarios (dns-egress, dns-serviceentry, dual-stack) share: an A or AAAA query from inside a pod's
 * network namespace (python3, no library), the pods they run, and ztunnel's DNS and connection
 * counters of one node.
 */
import type { Cluster } from '../cluster.ts';
import { runCommand } from '../exec.ts';
import { ztunnelMetrics, type MetricSample } from '../mesh/observe.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { echoPod, inEveryZtunnelConfig, readyPod, ztunnelOn, type MeshPod } from '../mesh/workloads.ts';

/** A DNS client (python3, no library): one A or AAAA query over UDP or TCP; prints `rcode ip ip ...`. */
const DNS_QUERY = String.raw`
import socket, struct, sys, random
server, name, proto = sys.argv[1], sys.argv[2], sys.argv[3]
qtype = 28 if len(sys.argv) > 4 and sys.argv[4] == 'AAAA' else 1
qid = random.randrange(65536)
q = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0)
for label in name.strip('.').split('.'):
    q += bytes([len(label)]) + label.encode()
q += b'\x00' + struct.pack('!HH', qtype, 1)
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
    if rtype == 28: ips.append(socket.inet_ntop(socket.AF_INET6, r[i:i+16]))
    i += rdlen
print(flags & 0xF, *ips)
`;

export interface DnsResult {
  readonly rcode: number;
  readonly addresses: readonly string[];
}

/**
 * One A (or AAAA) query for `name` sent from `from`'s netns to the pod's nameserver (the cluster
 * DNS Service IP) on port 53, as the pod's resolver does.
 */
export async function dnsQuery(
  c: Cluster,
  from: { readonly netns: string },
  name: string,
  proto: 'udp' | 'tcp',
  type: 'A' | 'AAAA' = 'A',
): Promise<DnsResult> {
  const r = await runCommand(
    ['ip', 'netns', 'exec', from.netns, 'python3', '-c', DNS_QUERY, c.layout.dnsServiceIp, name, proto, type],
    { allowFailure: true },
  );
  const [rcode = '-1', ...addresses] = r.stdout.trim().split(/\s+/);
  if (r.stdout.trim() === '') throw new Error(`no DNS answer for ${name} over ${proto}: ${r.stderr.trim()}`);
  return { rcode: Number(rcode), addresses };
}

/**
 * A pod of the echo image: `client` (service account `client`, idle on PORT 9090) or a server
 * (service account `echo`, serving 8080).
 */
export function dnsScenarioPod(
  namespace: string,
  name: string,
  node: string,
  labels: Record<string, string>,
  annotations: Record<string, string>,
): object {
  return echoPod(name, {
    namespace,
    node,
    labels,
    annotations,
    ...(name === 'client'
      ? { serviceAccount: 'client', env: { PORT: '9090' } }
      : { serviceAccount: 'echo', containerPorts: [8080] }),
  });
}

/** The sum of the samples of the ztunnel on `node` that `keep` selects. */
export async function ztunnelSampleSum(
  c: Cluster,
  node: string,
  keep: (s: MetricSample) => boolean,
): Promise<number> {
  const z = await ztunnelOn(c, node);
  if (z === undefined) throw new Error(`no ztunnel on ${node}`);
  return (await ztunnelMetrics(z)).filter(keep).reduce((sum, s) => sum + s.value, 0);
}

/**
 * One DNS scenario file's cluster and app namespace, with the helpers bound to them (a file may
 * take them apart: `const { query, pod } = scenario`).
 */
export class DnsScenario {
  readonly ns: string;
  private cluster: Cluster | undefined;

  constructor(ns: string) {
    this.ns = ns;
  }

  /** Starts the file's 2-node cluster (its own name and slot) with the mesh installed. */
  readonly start = async (name: string, slot: number): Promise<Cluster> => {
    ({ cluster: this.cluster } = await startMeshCluster({ name, slot, nodes: 2 }));
    return this.cluster;
  };

  readonly kube = (): Cluster => {
    if (this.cluster === undefined) throw new Error('the cluster did not start (see beforeAll)');
    return this.cluster;
  };

  readonly query = (from: MeshPod, name: string, proto: 'udp' | 'tcp'): Promise<DnsResult> =>
    dnsQuery(this.kube(), from, name, proto);

  /** See `dnsScenarioPod`; in the app namespace. */
  readonly pod = (
    name: string,
    node: string,
    labels: Record<string, string>,
    annotations: Record<string, string>,
  ): object => dnsScenarioPod(this.ns, name, node, labels, annotations);

  readonly enrolled = (name: string): Promise<MeshPod> => readyPod(this.kube(), this.ns, name);

  readonly inZtunnelConfig = (ip: string): Promise<void> => inEveryZtunnelConfig(this.kube(), ip);

  readonly sampleSum = (node: string, keep: (s: MetricSample) => boolean): Promise<number> =>
    ztunnelSampleSum(this.kube(), node, keep);
}
