// The cluster DNS server over real sockets on loopback: queries are encoded and answers decoded
// with `dns-packet`, independently of the server's own message handling.
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from './dns-server.ts';
import { ClusterRecords } from './records.ts';

const HOST = '127.0.0.1';
/** The 4-bit response code of a decoded response. */
const rcode = (p: DecodedPacket): number => (p.flags ?? 0) & 0xf;
/** The addresses of a decoded response's A records. */
const addresses = (p: DecodedPacket | undefined): string[] =>
  (p?.answers ?? []).flatMap(a => (a.type === 'A' ? [a.data] : []));

let server: DnsServer;
let port: number;
let tcpPort: number;
const client = dgram.createSocket('udp4');

beforeAll(async () => {
  const records = new ClusterRecords('cluster.local');
  records.set({ name: 'echo', namespace: 'default', addresses: ['10.96.0.20'] });
  records.set({ name: 'headless', namespace: 'apps', addresses: ['10.244.1.5', '10.244.2.6'] });
  server = await startDnsServer(records, HOST, 0);
  // Port 0 gives UDP and TCP a free port each.
  port = server.udp.address().port;
  tcpPort = (server.tcp.address() as net.AddressInfo).port;
  await new Promise<void>(resolve => client.bind(0, HOST, resolve));
});

afterAll(async () => {
  client.close();
  await server.close();
});

/** Sends one datagram and resolves with the next datagram that carries `id`. */
function exchange(bytes: Buffer, id: number): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: Buffer): void => {
      if (msg.readUInt16BE(0) !== id) return;
      client.off('message', onMessage);
      try {
        resolve(dnsPacket.decode(msg));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    client.on('message', onMessage);
    client.send(bytes, port, HOST);
  });
}

let nextId = 0x100;
function ask(name: string, type: RecordType = 'A'): Promise<DecodedPacket> {
  const id = nextId++;
  const packet: Packet = {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
  };
  return exchange(dnsPacket.encode(packet), id);
}

/** Waits until the server has counted `n` drops (the drop has no reply to wait on). */
async function droppedReaches(n: number): Promise<void> {
  while (server.stats.dropped < n) await new Promise(resolve => setImmediate(resolve));
}

describe('cluster DNS server on UDP', () => {
  it('answers A for a Service with its ClusterIP, authoritatively, echoing id and question', async () => {
    const r = await ask('Echo.Default.svc.cluster.local');
    expect(r.type).toBe('response');
    expect(r.flag_aa).toBe(true);
    expect(r.flag_rd).toBe(true);
    expect(rcode(r)).toBe(0);
    expect(r.questions).toEqual([{ name: 'echo.default.svc.cluster.local', type: 'A', class: 'IN' }]);
    expect(r.answers).toEqual([
      expect.objectContaining({
        name: 'echo.default.svc.cluster.local',
        type: 'A',
        ttl: 5,
        data: '10.96.0.20',
      }),
    ]);
  });

  it('answers every address of a headless Service', async () => {
    const r = await ask('headless.apps.svc.cluster.local');
    expect(addresses(r)).toEqual(['10.244.1.5', '10.244.2.6']);
  });

  it('answers a pod name with the address it spells', async () => {
    const r = await ask('10-244-1-3.default.pod.cluster.local');
    expect(addresses(r)).toEqual(['10.244.1.3']);
  });

  it('answers AAAA, SRV and PTR for a known name with NOERROR and no records', async () => {
    for (const type of ['AAAA', 'SRV', 'PTR'] as const) {
      const r = await ask('echo.default.svc.cluster.local', type);
      expect(rcode(r), type).toBe(0);
      expect(r.questions?.[0]?.type).toBe(type);
      expect(r.answers).toEqual([]);
    }
  });

  it('answers NXDOMAIN for an unknown name in the cluster domain and REFUSED outside it', async () => {
    expect(rcode(await ask('nope.default.svc.cluster.local'))).toBe(3);
    expect(rcode(await ask('example.com'))).toBe(5);
  });

  it('answers a query that carries an EDNS OPT record', async () => {
    const id = nextId++;
    const r = await exchange(
      dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ name: 'echo.default.svc.cluster.local', type: 'A', class: 'IN' }],
        additionals: [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ],
      }),
      id,
    );
    expect(addresses(r)).toEqual(['10.96.0.20']);
  });

  it("serves Node's own resolver (c-ares), a client written independently of both codecs", async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${HOST}:${port}`]);
    expect(await resolver.resolve4('echo.default.svc.cluster.local')).toEqual(['10.96.0.20']);
    await expect(resolver.resolve4('nope.default.svc.cluster.local')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('drops and counts malformed messages, responses and multi-question queries, and keeps serving', async () => {
    const before = server.stats.dropped;
    const truncated = dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: 'a.b', type: 'A' }] });
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      truncated.subarray(0, truncated.length - 3),
      // A header that promises 65535 questions and carries none.
      Buffer.from([0, 8, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0]),
      // A name whose compression pointer points at itself.
      Buffer.concat([Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]), Buffer.from([0, 1, 0, 1])]),
      dnsPacket.encode({
        type: 'response',
        id: 10,
        questions: [{ name: 'echo.default.svc.cluster.local', type: 'A' }],
      }),
      dnsPacket.encode({
        type: 'query',
        id: 11,
        questions: [
          { name: 'echo.default.svc.cluster.local', type: 'A' },
          { name: 'echo.default.svc.cluster.local', type: 'AAAA' },
        ],
      }),
    ];
    for (const g of garbage) client.send(g, port, HOST);
    await droppedReaches(before + garbage.length);
    expect(server.stats.dropped).toBe(before + garbage.length);
    const r = await ask('echo.default.svc.cluster.local');
    expect(addresses(r)).toEqual(['10.96.0.20']);
  });
});

describe('cluster DNS server on TCP', () => {
  it('answers length-prefixed queries on one connection, skipping a malformed one', async () => {
    const sock = net.connect(tcpPort, HOST);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      const replies: DecodedPacket[] = [];
      let buf = Buffer.alloc(0);
      const twoReplies = new Promise<void>(resolve => {
        sock.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            replies.push(dnsPacket.streamDecode(buf) as DecodedPacket);
            buf = buf.subarray(2 + buf.readUInt16BE(0));
          }
          if (replies.length === 2) resolve();
        });
      });
      const q = (id: number, name: string): Buffer =>
        dnsPacket.streamEncode({ type: 'query', id, questions: [{ name, type: 'A', class: 'IN' }] });
      const malformed = Buffer.from([0, 3, 1, 2, 3]);
      // Written in one go, so the server must split the stream itself.
      sock.write(
        Buffer.concat([
          q(21, 'echo.default.svc.cluster.local'),
          malformed,
          q(22, 'nope.default.svc.cluster.local'),
        ]),
      );
      await twoReplies;
      expect(replies.map(r => r.id)).toEqual([21, 22]);
      expect(addresses(replies[0])).toEqual(['10.96.0.20']);
      expect(rcode(replies[1]!)).toBe(3);
    } finally {
      sock.destroy();
    }
  });
});
