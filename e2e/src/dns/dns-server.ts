import dgram from 'node:dgram';
import net from 'node:net';
import { buildResponse, parseQuery } from './dns-message.ts';
import type { ClusterRecords } from './records.ts';

export interface DnsServer {
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
  close(): Promise<void>;
}

function respond(records: ClusterRecords, msg: Buffer): Buffer | undefined {
  const q = parseQuery(msg);
  if (q === undefined) return undefined;
  const a = records.answer(q.question);
  return buildResponse(q, a.rcode, a.addresses);
}

/** Serves `records` on UDP and TCP (length-prefixed) at host:port. */
export async function startDnsServer(
  records: ClusterRecords,
  host: string,
  port: number,
): Promise<DnsServer> {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const out = respond(records, msg);
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  const tcp = net.createServer(sock => {
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const out = respond(records, buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (out) {
          const prefix = Buffer.alloc(2);
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
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, () => {
      resolve();
    });
  });
  return {
    udp,
    tcp,
    close: () =>
      new Promise(resolve => {
        udp.close(() => {
          tcp.close(() => {
            resolve();
          });
        });
      }),
  };
}
