/**
 * The cluster DNS's messages, read and written with `dns-packet`: one question in, A records
 * out. This file owns only what the cluster DNS accepts as a query and how it shapes a response
 * (flags, TTL); the wire codec is the library's.
 */
import dnsPacket from 'dns-packet';
import type { RecordClass, RecordType } from 'dns-packet';

/** Response codes (RFC 1035 §4.1.1) the cluster DNS answers with. */
export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NXDomain: 3, NotImp: 4, Refused: 5 } as const;
export type DnsRcode = (typeof DnsRcode)[keyof typeof DnsRcode];

export interface DnsQuestion {
  /** Lower-cased, without the trailing dot; `.` for the root. */
  readonly name: string;
  /** The record type as `dns-packet` names it: `A`, `AAAA`, `SRV`, `PTR`, `ANY`, `UNKNOWN_<n>`... */
  readonly type: string;
  /** The class as `dns-packet` names it: `IN`, `ANY`, `UNKNOWN_<n>`... */
  readonly class: string;
}

export interface DnsQuery {
  readonly id: number;
  /** The header flags below QR (opcode, RD, ...), as `dns-packet` decodes them. */
  readonly flags: number;
  readonly question: DnsQuestion;
}

/** Opcode bits of the header flags, copied from the query into the response. */
const OPCODE_MASK = 0x7800;

/**
 * Decodes a query; undefined when the bytes are not a DNS message, are a response, or do not ask
 * exactly one question. Never throws.
 */
export function parseQuery(buf: Buffer): DnsQuery | undefined {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
  if (packet.type !== 'query') return undefined;
  const question = packet.questions?.length === 1 ? packet.questions[0] : undefined;
  if (question === undefined) return undefined;
  return {
    id: packet.id ?? 0,
    flags: packet.flags ?? 0,
    question: {
      name: question.name.toLowerCase(),
      type: question.type,
      class: question.class ?? 'IN',
    },
  };
}

/** Encodes the response: authoritative, the question echoed, then one A record per address. */
export function buildResponse(
  query: DnsQuery,
  rcode: DnsRcode,
  addresses: readonly string[],
  ttl = 5,
): Buffer {
  const flags =
    (query.flags & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED)) |
    dnsPacket.AUTHORITATIVE_ANSWER |
    dnsPacket.RECURSION_AVAILABLE |
    rcode;
  const name = query.question.name;
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags,
    // The decoded names round-trip through the library (`UNKNOWN_<n>` included).
    questions: [
      { name, type: query.question.type as RecordType, class: query.question.class as RecordClass },
    ],
    answers: addresses.map(data => ({ type: 'A' as const, class: 'IN' as const, name, ttl, data })),
  });
}
