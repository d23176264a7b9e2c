/** Minimal DNS wire format (RFC 1035) for the cluster DNS: one question in, A records out. */

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  ANY: 255,
} as const;
export type DnsType = (typeof DnsType)[keyof typeof DnsType];

export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NXDomain: 3, NotImp: 4, Refused: 5 } as const;
export type DnsRcode = (typeof DnsRcode)[keyof typeof DnsRcode];

export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface DnsQuery {
  readonly id: number;
  readonly flags: number;
  readonly question: DnsQuestion;
}

/** Parses a query; undefined when it is not a well-formed single-question query. */
export function parseQuery(buf: Buffer): DnsQuery | undefined {
  if (buf.length < 12) return undefined;
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return undefined; // a response, not a query
  if (buf.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (let i = 0; i < 128; i++) {
    const len = buf[off];
    if (len === undefined) return undefined;
    off++;
    if (len === 0) break;
    if (len > 63 || off + len > buf.length) return undefined;
    labels.push(buf.toString('latin1', off, off + len));
    off += len;
  }
  if (off + 4 > buf.length) return undefined;
  return {
    id,
    flags,
    question: {
      name: labels.join('.').toLowerCase(),
      type: buf.readUInt16BE(off),
      class: buf.readUInt16BE(off + 2),
    },
  };
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean);
  return Buffer.concat([
    ...parts.map(p => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])),
    Buffer.from([0]),
  ]);
}

/** Builds the response: the question echoed, then one A record per address. */
export function buildResponse(
  query: DnsQuery,
  rcode: DnsRcode,
  addresses: readonly string[],
  ttl = 5,
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  // QR=1, opcode copied, AA=1, RD copied, RA=1
  const flags = 0x8000 | (query.flags & 0x7800) | 0x0400 | (query.flags & 0x0100) | 0x0080 | rcode;
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const q = Buffer.concat([encodeName(query.question.name), Buffer.alloc(4)]);
  q.writeUInt16BE(query.question.type, q.length - 4);
  q.writeUInt16BE(query.question.class, q.length - 2);
  const answers = addresses.map(addr => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(DnsType.A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    addr.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
    return rr;
  });
  return Buffer.concat([header, q, ...answers]);
}
