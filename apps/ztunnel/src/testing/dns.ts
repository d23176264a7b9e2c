/**
 * Test helpers of the DNS proxy: a fake upstream resolver (UDP and TCP, one address per name, or
 * NXDOMAIN for names under `nx.`), and a client that sends one query over UDP or TCP.
 */
import dgram from 'node:dgram';
import { createServer, connect } from 'node:net';
import type { Server } from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, RecordType } from 'dns-packet';

export const FAKE_UPSTREAM_ANSWER = '192.0.2.53';

export interface FakeUpstream {
  readonly port: number;
  /** Names asked, in order. */
  readonly asked: string[];
  close(): Promise<void>;
}

function answer(query: Buffer): Buffer {
  const packet = dnsPacket.decode(query);
  const question = packet.questions?.[0];
  const name = question?.name ?? '';
  const nx = name.startsWith('nx.');
  return dnsPacket.encode({
    type: 'response',
    id: packet.id ?? 0,
    flags: dnsPacket.RECURSION_AVAILABLE | (nx ? 3 : 0),
    questions: packet.questions ?? [],
    answers:
      nx || question?.type !== 'A'
        ? []
        : [{ type: 'A', class: 'IN', name, ttl: 60, data: FAKE_UPSTREAM_ANSWER }],
  });
}

/** Attempts at finding a port free for both UDP and TCP: the kernel picks the UDP port, TCP may hold it already. */
const PORT_ATTEMPTS = 20;

/** Binds `udp` to a kernel-chosen port and `tcp` to the same port, retrying when TCP has it in use. */
async function bindBoth(udpFactory: () => dgram.Socket, tcp: Server, host: string): Promise<dgram.Socket> {
  for (let attempt = 1; ; attempt++) {
    const udp = udpFactory();
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const listened = await new Promise<NodeJS.ErrnoException | null>(resolve => {
      const onError = (err: NodeJS.ErrnoException): void => {
        resolve(err);
      };
      tcp.once('error', onError);
      tcp.listen(port, host, () => {
        tcp.off('error', onError);
        resolve(null);
      });
    });
    if (listened === null) return udp;
    udp.close();
    if (listened.code !== 'EADDRINUSE' || attempt >= PORT_ATTEMPTS) throw listened;
  }
}

/** A resolver on `host` (UDP and TCP on one port). */
export async function startFakeUpstream(host = '127.0.0.1'): Promise<FakeUpstream> {
  const asked: string[] = [];
  const tcp: Server = createServer(socket => {
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      const query = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      asked.push(dnsPacket.decode(query).questions?.[0]?.name ?? '');
      const reply = answer(query);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      socket.end(Buffer.concat([length, reply]));
    });
  });
  const udp = await bindBoth(
    () => {
      const socket = dgram.createSocket('udp4');
      socket.on('message', (msg, rinfo) => {
        asked.push(dnsPacket.decode(msg).questions?.[0]?.name ?? '');
        socket.send(answer(msg), rinfo.port, rinfo.address);
      });
      return socket;
    },
    tcp,
    host,
  );
  const port = udp.address().port;
  return {
    port,
    asked,
    close: async () => {
      udp.close();
      await new Promise<void>(resolve =>
        tcp.close(() => {
          resolve();
        }),
      );
    },
  };
}

export function encodeQuery(name: string, type: RecordType = 'A', id = 4242): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, class: 'IN', name }],
  });
}

/** Sends `packet` over UDP and resolves the decoded reply, or undefined after `timeoutMs`. */
export function udpExchange(
  host: string,
  port: number,
  packet: Buffer,
  timeoutMs = 2_000,
): Promise<DecodedPacket | undefined> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.once('error', err => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
    socket.once('message', msg => {
      clearTimeout(timer);
      socket.close();
      resolve(dnsPacket.decode(msg));
    });
    socket.send(packet, port, host);
  });
}

/** Sends one datagram and does not wait for a reply. */
export async function udpSend(host: string, port: number, packet: Buffer): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.send(packet, port, host, err => {
      if (err) reject(err);
      else resolve();
    });
  }).finally(() => socket.close());
}

/** Sends `packets` over one TCP connection and resolves the decoded replies in arrival order. */
export function tcpExchange(
  host: string,
  port: number,
  packets: readonly Buffer[],
): Promise<DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const replies: DecodedPacket[] = [];
    let buffered: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${replies.length} of ${packets.length} tcp replies`));
    }, 5_000);
    socket.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (replies.length < packets.length) reject(new Error('the server closed the connection'));
    });
    socket.on('connect', () => {
      for (const packet of packets) {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(packet.length);
        socket.write(Buffer.concat([length, packet]));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const size = buffered.readUInt16BE(0);
        replies.push(dnsPacket.decode(buffered.subarray(2, 2 + size)));
        buffered = buffered.subarray(2 + size);
      }
      if (replies.length === packets.length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(replies);
      }
    });
  });
}
