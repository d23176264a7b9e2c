/**
 * Namespaced tier (root): the DNS proxy in a real pod network namespace with the pod's in-pod
 * capture rules (DNS capture on), and a fake upstream resolver (python3) in a second namespace.
 * The "app" sends its queries to the resolver's address on port 53, as its resolv.conf says; the
 * rules redirect them to 15053. Known names are answered from WDS state built here (a Service, a
 * ServiceEntry host with an allocated VIP, a wildcard ServiceEntry host); an unknown name is
 * forwarded, once, from a marked socket the rules let through.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { Registry } from 'prom-client';
import { connectInNetns, createUdpSocket, netnsInode } from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';
import { MetricName } from '@ambient-mesh/mesh-api';
import { silentLogger } from '@ambient-mesh/runtime';
import { createProxyState } from '../state/proxy-state.ts';
import { encodeQuery } from '../testing/dns.ts';
import { createTestNode } from '../testing/node-netns.ts';
import type { TestNode, TestPod } from '../testing/node-netns.ts';
import { ip4, serviceAddress, workloadAddress } from '../testing/wire-fixtures.ts';
import { DnsProxy } from './dns-proxy.ts';
import { netnsDnsSockets } from './dns-sockets.ts';
import { DnsForwarder } from './forwarder.ts';
import { DNS_DROPPED_METRIC, DnsMetrics } from './metrics.ts';
import { parseResolvConf } from './resolv-conf.ts';

/** A UDP+TCP resolver on port 53: 192.0.2.53 for any A question, NXDOMAIN under `nx.`; prints each name. */
const RESOLVER = String.raw`
import socket, struct, threading
def name_of(q):
    labels, i = [], 12
    while q[i]:
        n = q[i]; labels.append(q[i+1:i+1+n].decode()); i += 1 + n
    return '.'.join(labels), i + 5
def answer(q):
    name, end = name_of(q)
    qtype = struct.unpack('!H', q[end-4:end-2])[0]
    nx = name.startswith('nx.')
    flags = 0x8180 | (3 if nx else 0)
    an = 0 if nx or qtype != 1 else 1
    out = q[:2] + struct.pack('!HHHHH', flags, 1, an, 0, 0) + q[12:end]
    if an:
        out += b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + socket.inet_aton('192.0.2.53')
    print('asked', name, flush=True)
    return out
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', 53)); s.listen(16)
    while True:
        c, _ = s.accept()
        size = struct.unpack('!H', c.recv(2))[0]
        q = b''
        while len(q) < size: q += c.recv(size - len(q))
        r = answer(q); c.sendall(struct.pack('!H', len(r)) + r); c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 53))
threading.Thread(target=tcp, daemon=True).start()
print('ready', flush=True)
while True:
    q, addr = u.recvfrom(2048)
    u.sendto(answer(q), addr)
`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startResolver(pod: TestPod): Promise<{ readonly asked: () => string[] }> {
  const child: ChildProcessWithoutNullStreams = spawn(
    'ip',
    ['netns', 'exec', pod.netns, 'python3', '-u', '-c', RESOLVER],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the fake resolver did not start: ${out}`));
    }, 10_000);
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', code => {
      clearTimeout(timer);
      reject(new Error(`the fake resolver exited ${String(code)}`));
    });
  });
  return {
    asked: () => [...out.matchAll(/^asked (\S+)$/gm)].map(m => m[1] ?? ''),
  };
}

/** A query sent the way the app would: an unmarked UDP socket in the pod, to the resolver's port 53. */
async function appQueryUdp(pod: TestPod, resolverIp: string, packet: Buffer): Promise<DecodedPacket> {
  const socket: dgram.Socket = await createUdpSocket(pod.fd, { host: '0.0.0.0', port: 0 });
  try {
    return await new Promise<DecodedPacket>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('no DNS reply within 5 s'));
      }, 5_000);
      socket.once('message', (msg, rinfo) => {
        clearTimeout(timer);
        // The reply appears to come from the resolver the app asked (conntrack undoes the redirect).
        expect(`${rinfo.address}:${rinfo.port}`).toBe(`${resolverIp}:53`);
        resolve(dnsPacket.decode(msg));
      });
      socket.send(packet, 53, resolverIp);
    });
  } finally {
    socket.close();
  }
}

async function appQueryTcp(pod: TestPod, resolverIp: string, packet: Buffer): Promise<DecodedPacket> {
  const socket = connectInNetns(pod.fd, { host: resolverIp, port: 53 });
  try {
    return await new Promise<DecodedPacket>((resolve, reject) => {
      let buffered: Buffer = Buffer.alloc(0);
      const timer = setTimeout(() => {
        reject(new Error('no DNS reply over TCP within 5 s'));
      }, 5_000);
      socket.once('error', reject);
      socket.once('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(packet.length);
        socket.write(Buffer.concat([length, packet]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          clearTimeout(timer);
          resolve(dnsPacket.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        }
      });
    });
  } finally {
    socket.destroy();
  }
}

function dataOf(packet: DecodedPacket): unknown[] {
  return (packet.answers ?? []).map(a => [a.type, 'data' in a ? a.data : undefined]);
}

async function counter(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter(v => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('DnsProxy in a pod netns with DNS capture (namespaced tier)', () => {
  it('answers from WDS, forwards an unknown name once past the capture, over UDP and TCP, and counts a malformed packet', async () => {
    const node: TestNode = createTestNode('dns', ['app', 'resolver']);
    cleanups.push(() => {
      node.remove();
    });
    const [app, resolverPod] = node.pods;
    if (app === undefined || resolverPod === undefined) throw new Error('test node without pods');
    const resolver = await startResolver(resolverPod);
    await new InpodRedirection(netnsExecutor({ name: app.netns }), { dnsCapture: true, ipv6: false }).apply();

    const { state, mutator } = createProxyState();
    const client = workloadAddress({
      name: 'app',
      namespace: 'shop',
      addresses: [ip4(app.ip)],
      canonicalName: 'app',
    });
    mutator.applyAddresses(
      [
        client,
        serviceAddress({
          name: 'cart',
          namespace: 'shop',
          hostname: 'cart.shop.svc.cluster.local',
          addresses: [{ network: '', address: ip4('10.96.0.40') }],
        }),
        serviceAddress({
          name: 'payments',
          namespace: 'shop',
          hostname: 'payments.example.com',
          addresses: [{ network: '', address: ip4('240.240.0.7') }],
        }),
        serviceAddress({
          name: 'cdn',
          namespace: 'shop',
          hostname: '*.cdn.example.com',
          addresses: [{ network: '', address: ip4('240.240.0.8') }],
        }),
      ],
      [],
    );
    const registry = new Registry();
    const sockets = netnsDnsSockets({
      netns: { inode: String(netnsInode(app.fd)), fd: app.fd, close: () => undefined },
      mark: 0x539,
    });
    const proxy = await DnsProxy.start({
      sockets,
      forwarder: new DnsForwarder(
        parseResolvConf(`nameserver ${resolverPod.ip}\noptions timeout:2 attempts:1\n`),
        sockets,
      ),
      state,
      client: () => Promise.resolve(client.workload),
      clusterDomain: 'cluster.local',
      metrics: new DnsMetrics(registry),
      logger: silentLogger(),
    });
    cleanups.push(() => {
      proxy.close();
    });

    // A Service, as the pod's resolver sends it after applying its search list.
    expect(
      dataOf(await appQueryUdp(app, resolverPod.ip, encodeQuery('cart.shop.svc.cluster.local'))),
    ).toEqual([['A', '10.96.0.40']]);
    // A ServiceEntry host with its allocated VIP, and its search-expanded form.
    expect(dataOf(await appQueryUdp(app, resolverPod.ip, encodeQuery('payments.example.com')))).toEqual([
      ['A', '240.240.0.7'],
    ]);
    expect(
      dataOf(
        await appQueryUdp(app, resolverPod.ip, encodeQuery('payments.example.com.shop.svc.cluster.local')),
      ),
    ).toEqual([
      ['CNAME', 'payments.example.com'],
      ['A', '240.240.0.7'],
    ]);
    // A wildcard ServiceEntry host, over TCP.
    expect(dataOf(await appQueryTcp(app, resolverPod.ip, encodeQuery('img.cdn.example.com')))).toEqual([
      ['A', '240.240.0.8'],
    ]);
    expect(resolver.asked()).toEqual([]);

    // Unknown names go to the resolver exactly once (the proxy's own query is not captured again).
    expect(dataOf(await appQueryUdp(app, resolverPod.ip, encodeQuery('www.outside.test')))).toEqual([
      ['A', '192.0.2.53'],
    ]);
    const nx = await appQueryTcp(app, resolverPod.ip, encodeQuery('nx.outside.test'));
    expect((nx.flags ?? 0) & 0xf).toBe(3);
    expect(resolver.asked()).toEqual(['www.outside.test', 'nx.outside.test']);
    expect(await counter(registry, MetricName.dnsUpstreamRequests)).toBe(2);
    expect(await counter(registry, MetricName.dnsRequests, { source_canonical_service: 'app' })).toBe(6);

    // A malformed packet is dropped and counted; the proxy keeps answering.
    const garbage = Buffer.from('definitely not dns');
    const raw = await createUdpSocket(app.fd, { host: '0.0.0.0', port: 0 });
    await new Promise<void>(resolve => {
      raw.send(garbage, 53, resolverPod.ip, () => {
        resolve();
      });
    });
    raw.close();
    const deadline = Date.now() + 5_000;
    while ((await counter(registry, DNS_DROPPED_METRIC, { reason: 'malformed' })) < 1) {
      if (Date.now() > deadline) throw new Error('the malformed packet was not counted');
      await new Promise(resolve => setImmediate(resolve));
    }
    expect(
      dataOf(await appQueryUdp(app, resolverPod.ip, encodeQuery('cart.shop.svc.cluster.local'))),
    ).toEqual([['A', '10.96.0.40']]);
  });
});
