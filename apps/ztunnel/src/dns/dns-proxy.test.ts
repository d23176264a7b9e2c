import { afterEach, describe, expect, it } from 'vitest';
import type { DecodedPacket } from 'dns-packet';
import { Registry } from 'prom-client';
import { silentLogger } from '@ambient-mesh/runtime';
import { MetricName } from '@ambient-mesh/mesh-api';
import { createProxyState } from '../state/proxy-state.ts';
import type { Workload } from '../state/types.ts';
import {
  FAKE_UPSTREAM_ANSWER,
  encodeQuery,
  startFakeUpstream,
  tcpExchange,
  udpExchange,
  udpSend,
} from '../testing/dns.ts';
import type { FakeUpstream } from '../testing/dns.ts';
import { ip4, serviceAddress, workloadAddress } from '../testing/wire-fixtures.ts';
import { DnsProxy } from './dns-proxy.ts';
import { loopbackDnsSockets } from './dns-sockets.ts';
import { DnsForwarder } from './forwarder.ts';
import { DnsRcode } from './message.ts';
import { DNS_DROPPED_METRIC, DnsMetrics } from './metrics.ts';
import { parseResolvConf } from './resolv-conf.ts';

const HOST = '127.0.0.1';

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

function rcodeOf(packet: DecodedPacket | undefined): number | undefined {
  return packet === undefined ? undefined : (packet.flags ?? 0) & 0xf;
}

/** Polls an async condition (bounded), never a fixed sleep. */
async function waitForAsync(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

interface Harness {
  readonly proxy: DnsProxy;
  readonly registry: Registry;
  readonly upstream: FakeUpstream;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(
  options: { client?: Workload | undefined; nameservers?: string } = {},
): Promise<Harness> {
  const upstream = await startFakeUpstream(HOST);
  cleanups.push(() => upstream.close());
  const { state, mutator } = createProxyState();
  const client = workloadAddress({
    namespace: 'bookinfo',
    canonicalName: 'productpage',
    canonicalRevision: 'v1',
  });
  mutator.applyAddresses(
    [
      client,
      serviceAddress({
        name: 'reviews',
        namespace: 'bookinfo',
        hostname: 'reviews.bookinfo.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.20') }],
      }),
      serviceAddress({
        name: 'api',
        namespace: 'egress',
        hostname: 'api.example.com',
        addresses: [{ network: '', address: ip4('240.240.0.1') }],
      }),
    ],
    [],
  );
  const registry = new Registry();
  const sockets = loopbackDnsSockets(HOST);
  const resolvers = parseResolvConf(
    options.nameservers ?? `nameserver ${HOST}\noptions timeout:1 attempts:1\n`,
  );
  const upstreamResolvers = {
    ...resolvers,
    nameservers: resolvers.nameservers.map(n => ({ ...n, port: upstream.port })),
  };
  const proxy = await DnsProxy.start({
    sockets,
    forwarder: new DnsForwarder(upstreamResolvers, sockets),
    state,
    client: () => Promise.resolve('client' in options ? options.client : client.workload),
    clusterDomain: 'cluster.local',
    metrics: new DnsMetrics(registry),
    logger: silentLogger(),
    port: 0,
  });
  cleanups.push(() => {
    proxy.close();
  });
  return { proxy, registry, upstream };
}

describe('DnsProxy (loopback)', () => {
  it('answers a Service and a ServiceEntry host from WDS over UDP, authoritative, with upstream metrics labels', async () => {
    const { proxy, registry, upstream } = await start();
    const reply = await udpExchange(HOST, proxy.ports.udp, encodeQuery('reviews.bookinfo.svc.cluster.local'));
    expect(rcodeOf(reply)).toBe(DnsRcode.NoError);
    expect(reply?.flag_aa).toBe(true);
    expect(reply?.id).toBe(4242);
    expect(reply?.answers?.map(a => ('data' in a ? a.data : undefined))).toEqual(['10.96.0.20']);
    const se = await udpExchange(
      HOST,
      proxy.ports.udp,
      encodeQuery('api.example.com.bookinfo.svc.cluster.local'),
    );
    expect(se?.answers?.map(a => [a.type, 'data' in a ? a.data : undefined])).toEqual([
      ['CNAME', 'api.example.com'],
      ['A', '240.240.0.1'],
    ]);
    expect(upstream.asked).toEqual([]);
    expect(
      await counter(registry, MetricName.dnsRequests, {
        request_query_type: 'a',
        request_protocol: 'udp',
        source_canonical_service: 'productpage',
        source_canonical_revision: 'v1',
      }),
    ).toBe(2);
    expect(await counter(registry, MetricName.dnsUpstreamRequests)).toBe(0);
  });

  it('forwards an unknown name to the upstream resolver and relays its answer and its NXDOMAIN', async () => {
    const { proxy, registry, upstream } = await start();
    const reply = await udpExchange(HOST, proxy.ports.udp, encodeQuery('www.unknown.test'));
    expect(reply?.answers?.map(a => ('data' in a ? a.data : undefined))).toEqual([FAKE_UPSTREAM_ANSWER]);
    expect(reply?.flag_aa).toBe(false);
    const nx = await udpExchange(HOST, proxy.ports.udp, encodeQuery('nx.unknown.test'));
    expect(rcodeOf(nx)).toBe(DnsRcode.NXDomain);
    expect(upstream.asked).toEqual(['www.unknown.test', 'nx.unknown.test']);
    expect(await counter(registry, MetricName.dnsUpstreamRequests, { request_protocol: 'udp' })).toBe(2);
    expect(await counter(registry, MetricName.dnsRequests)).toBe(2);
    const histogram = await registry.getSingleMetricAsString(MetricName.dnsUpstreamRequestDuration);
    expect(histogram).toMatch(/_count\{[^}]*request_protocol="udp"[^}]*\} 2$/m);
  });

  it('answers and forwards over TCP, several queries on one connection', async () => {
    const { proxy, registry, upstream } = await start();
    const replies = await tcpExchange(HOST, proxy.ports.tcp, [
      encodeQuery('reviews', 'A', 1),
      encodeQuery('tcp.unknown.test', 'A', 2),
    ]);
    const byId = new Map(replies.map(r => [r.id, r]));
    expect(byId.get(1)?.answers?.map(a => ('data' in a ? a.data : undefined))).toEqual(['10.96.0.20']);
    expect(byId.get(2)?.answers?.map(a => ('data' in a ? a.data : undefined))).toEqual([
      FAKE_UPSTREAM_ANSWER,
    ]);
    expect(upstream.asked).toEqual(['tcp.unknown.test']);
    expect(await counter(registry, MetricName.dnsRequests, { request_protocol: 'tcp' })).toBe(2);
  });

  it('answers SERVFAIL and counts an upstream failure when no upstream is configured', async () => {
    const registry = new Registry();
    const sockets = loopbackDnsSockets(HOST);
    const proxy = await DnsProxy.start({
      sockets,
      forwarder: new DnsForwarder(parseResolvConf(''), sockets),
      state: createProxyState().state,
      client: () => Promise.resolve(workloadAddress().workload),
      clusterDomain: 'cluster.local',
      metrics: new DnsMetrics(registry),
      logger: silentLogger(),
      port: 0,
    });
    cleanups.push(() => {
      proxy.close();
    });
    const reply = await udpExchange(HOST, proxy.ports.udp, encodeQuery('www.unknown.test'));
    expect(rcodeOf(reply)).toBe(DnsRcode.ServFail);
    expect(await counter(registry, MetricName.dnsUpstreamFailures)).toBe(1);
  });

  it('answers SERVFAIL when the querying pod has no WDS workload', async () => {
    const { proxy, registry, upstream } = await start({ client: undefined });
    const reply = await udpExchange(HOST, proxy.ports.udp, encodeQuery('reviews'));
    expect(rcodeOf(reply)).toBe(DnsRcode.ServFail);
    expect(upstream.asked).toEqual([]);
    expect(await counter(registry, MetricName.dnsRequests, { source_canonical_service: 'unknown' })).toBe(1);
  });

  it('drops and counts malformed, oversized and non-query packets, and keeps answering', async () => {
    const { proxy, registry } = await start();
    const { udp, tcp } = proxy.ports;
    const garbage = Buffer.from('this is not a dns message at all');
    const truncated = encodeQuery('reviews').subarray(0, 15);
    const response = Buffer.from(encodeQuery('reviews'));
    response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
    const oversized = Buffer.alloc(1500, 7);
    for (const packet of [garbage, truncated, response, oversized]) await udpSend(HOST, udp, packet);
    await waitForAsync(async () => (await counter(registry, DNS_DROPPED_METRIC)) === 4, 'four drops counted');
    expect(
      await counter(registry, DNS_DROPPED_METRIC, { reason: 'malformed', request_protocol: 'udp' }),
    ).toBe(2);
    expect(await counter(registry, DNS_DROPPED_METRIC, { reason: 'not-a-query' })).toBe(1);
    expect(await counter(registry, DNS_DROPPED_METRIC, { reason: 'oversized' })).toBe(1);
    // An oversized TCP frame closes that connection only.
    const huge = Buffer.alloc(4000, 1);
    await expect(tcpExchange(HOST, tcp, [huge])).rejects.toThrow();
    expect(
      await counter(registry, DNS_DROPPED_METRIC, { reason: 'oversized', request_protocol: 'tcp' }),
    ).toBe(1);
    const still = await udpExchange(HOST, udp, encodeQuery('reviews'));
    expect(still?.answers?.length).toBe(1);
  });
});

describe('parseResolvConf', () => {
  it('reads nameservers, timeout, attempts and search, and lists bad lines', () => {
    const parsed = parseResolvConf(
      '# comment\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nnameserver dns.example\nsearch a.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:2 attempts:3\n',
    );
    expect(parsed.nameservers).toEqual([
      { host: '10.96.0.10', port: 53 },
      { host: 'fe80::1', port: 53 },
    ]);
    expect(parsed.timeoutMs).toBe(2_000);
    expect(parsed.attempts).toBe(3);
    expect(parsed.search).toEqual(['a.svc.cluster.local', 'svc.cluster.local']);
    expect(parsed.problems).toEqual(["line 4: nameserver 'dns.example' is not an IP address"]);
    expect(parseResolvConf('')).toMatchObject({ nameservers: [], timeoutMs: 5_000, attempts: 2 });
  });
});
