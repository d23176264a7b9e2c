/**
 * The cluster DNS server: answers {@link ClusterRecords} on UDP and on TCP (RFC 1035 §4.2.2
 * length-prefixed messages). Messages that are not a single-question query are dropped and
 * counted; nothing a client sends can throw out of a socket handler.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { buildResponse, parseQuery } from './dns-message.ts';
import type { ClusterRecords } from './records.ts';

/** What the server has done since it started. */
export interface DnsServerStats {
  /** Queries answered (any rcode). */
  readonly answered: number;
  /** Messages dropped because they were not a well-formed single-question query. */
  readonly dropped: number;
}

export interface DnsServer {
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
  readonly stats: DnsServerStats;
  close(): Promise<void>;
}

/** Each TCP message is preceded by its length, two bytes big-endian. */
const LENGTH_PREFIX_BYTES = 2;

/** Serves `records` on UDP and TCP (length-prefixed) at host:port. */
export async function startDnsServer(
  records: ClusterRecords,
  host: string,
  port: number,
): Promise<DnsServer> {
  const stats = { answered: 0, dropped: 0 };
  const respond = (msg: Buffer): Buffer | undefined => {
    const q = parseQuery(msg);
    if (q === undefined) {
      stats.dropped++;
      return undefined;
    }
    const a = records.answer(q.question);
    stats.answered++;
    return buildResponse(q, a.rcode, a.addresses);
  };

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const out = respond(msg);
    // A send that fails (the client went away) is the client's problem, not the server's.
    if (out) udp.send(out, rinfo.port, rinfo.address, () => undefined);
  });
  const connections = new Set<net.Socket>();
  const tcp = net.createServer(sock => {
    connections.add(sock);
    sock.on('close', () => connections.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= LENGTH_PREFIX_BYTES) {
        const len = buf.readUInt16BE(0);
        if (buf.length < LENGTH_PREFIX_BYTES + len) break;
        const out = respond(buf.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + len));
        buf = buf.subarray(LENGTH_PREFIX_BYTES + len);
        if (out) {
          const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
          prefix.writeUInt16BE(out.length);
          sock.write(Buffer.concat([prefix, out]));
        }
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  // After the bind, a socket error must not take the process down.
  udp.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  tcp.on('error', () => undefined);
  return {
    udp,
    tcp,
    stats: {
      get answered() {
        return stats.answered;
      },
      get dropped() {
        return stats.dropped;
      },
    },
    close: () =>
      new Promise(resolve => {
        udp.close(() => {
          for (const sock of connections) sock.destroy();
          tcp.close(() => {
            resolve();
          });
        });
      }),
  };
}
