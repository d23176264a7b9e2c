// The process under test of the DNS storm (dns-storm.ts), so its RSS is its own. Two modes:
// - `proxy`: ztunnel's DNS proxy as ztunnel composes it for one pod (DnsProxy, ProxyState with
//   1,000 Services and the ServiceEntry hosts, DnsMetrics, DnsForwarder), its listeners made in
//   the pod's netns with mark 0x539 on 127.0.0.1:15053, where the pod's capture rules send port 53;
// - `baseline`: a plain dns-packet responder on 0.0.0.0:53 in a namespace, one A record for any
//   question (also the proxy's upstream for names it forwards).
// Env: DNS_BENCH_MODE, DNS_BENCH_NETNS (path), DNS_BENCH_UPSTREAM (proxy mode: nameserver IP).
// IPC: 'stats' → {rss, heapUsed, cpuMs}, 'gc' → {ok}, 'quit'.
import dnsPacket from 'dns-packet';
import { Registry } from 'prom-client';
import { createUdpSocket, netnsInode, openNetns } from '@ambient-mesh/netns';
import { Logs } from '@ambient-mesh/runtime';
import {
  createProxyState,
  DnsForwarder,
  DnsMetrics,
  DnsProxy,
  netnsDnsSockets,
  parseResolvConf,
} from '@ambient-mesh/ztunnel';
import type { Address, Service, Workload } from '@ambient-mesh/ztunnel';

const mode = process.env.DNS_BENCH_MODE ?? 'proxy';
const netnsPath = process.env.DNS_BENCH_NETNS ?? '';
const fd = openNetns(netnsPath);

function service(name: string, namespace: string, hostname: string, vip: string): Service {
  return {
    name,
    namespace,
    hostname,
    key: `${namespace}/${hostname}`,
    addresses: [{ network: '', address: vip }],
    ports: [{ servicePort: 80, targetPort: 8080 }],
    subjectAltNames: [],
    waypoint: undefined,
    loadBalancing: undefined,
    ipFamilies: 'IPV4_ONLY',
  };
}

const client: Workload = {
  uid: 'Kubernetes//Pod/bench/app',
  name: 'app',
  namespace: 'bench',
  addresses: ['10.0.0.2'],
  hostname: '',
  network: '',
  tunnelProtocol: 'HBONE',
  trustDomain: 'cluster.local',
  serviceAccount: 'app',
  identity: 'spiffe://cluster.local/ns/bench/sa/app',
  waypoint: undefined,
  networkGateway: undefined,
  node: 'node-1',
  canonicalName: 'app',
  canonicalRevision: 'v1',
  workloadType: 'pod',
  workloadName: 'app',
  nativeTunnel: false,
  applicationTunnel: undefined,
  services: {},
  authorizationPolicies: [],
  status: 'HEALTHY',
  clusterId: 'Kubernetes',
  locality: { region: '', zone: '', subzone: '' },
  networkMode: 'STANDARD',
};

if (mode === 'baseline') {
  const socket = await createUdpSocket(fd, { host: '0.0.0.0', port: 53 });
  socket.on('message', (msg, rinfo) => {
    let packet: dnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = packet.questions?.[0];
    const reply = dnsPacket.encode({
      type: 'response',
      id: packet.id ?? 0,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: packet.questions ?? [],
      answers:
        question === undefined
          ? []
          : [{ type: 'A', class: 'IN', name: question.name, ttl: 30, data: '192.0.2.1' }],
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
} else {
  const { state, mutator } = createProxyState();
  const addresses: Address[] = [{ kind: 'workload', workload: client }];
  for (let i = 0; i < 1_000; i++) {
    const ns = `ns${i % 50}`;
    addresses.push({
      kind: 'service',
      service: service(
        `svc${i}`,
        ns,
        `svc${i}.${ns}.svc.cluster.local`,
        `10.96.${Math.floor(i / 250)}.${i % 250}`,
      ),
    });
  }
  addresses.push({
    kind: 'service',
    service: service('reviews', 'bench', 'reviews.bench.svc.cluster.local', '10.96.9.1'),
  });
  addresses.push({ kind: 'service', service: service('api', 'egress', 'api.example.com', '240.240.0.1') });
  addresses.push({ kind: 'service', service: service('cdn', 'egress', '*.cdn.example.com', '240.240.0.2') });
  mutator.applyAddresses(addresses, []);
  const sockets = netnsDnsSockets({
    netns: { inode: String(netnsInode(fd)), fd, close: () => undefined },
    mark: 0x539,
  });
  await DnsProxy.start({
    sockets,
    forwarder: new DnsForwarder(
      parseResolvConf(`nameserver ${process.env.DNS_BENCH_UPSTREAM ?? ''}\noptions timeout:2 attempts:1\n`),
      sockets,
    ),
    state,
    client: () => Promise.resolve(client),
    clusterDomain: 'cluster.local',
    metrics: new DnsMetrics(new Registry()),
    logger: new Logs({ format: 'json', level: 'warn' }).for('dns'),
  });
}

process.on('message', (message: unknown) => {
  if (message === 'stats') {
    const { rss, heapUsed } = process.memoryUsage();
    const cpu = process.cpuUsage();
    process.send?.({ rss, heapUsed, cpuMs: (cpu.user + cpu.system) / 1000 });
  } else if (message === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ ok: true });
  } else if (message === 'quit') {
    process.exit(0);
  }
});
process.send?.({ started: true });
