/**
 * The DNS messages the proxy reads and writes, through `dns-packet`: a query is accepted only if it
 * decodes, is a standard query (QR 0, opcode QUERY) and asks exactly one question; anything else is
 * a `DnsDrop` the server counts. Answers are encoded here; forwarded queries travel as the
 * client's own bytes.
 */
import dnsPacket from 'dns-packet';
import type { Answer, RecordClass, RecordType } from 'dns-packet';
import type { DnsAnswer } from './resolve.ts';
import { DNS_ANSWER_TTL_SECONDS, normalizeName } from './resolve.ts';

/**
 * The largest query the proxy reads. A question is at most 255 octets of name plus header and an
 * EDNS OPT record; 1232 octets (the EDNS payload size of DNS Flag Day 2020) leaves generous room.
 */
export const MAX_QUERY_BYTES = 1232;
/** The UDP response size a client without EDNS accepts (RFC 1035). */
export const CLASSIC_UDP_PAYLOAD = 512;
/** The largest UDP response the proxy sends, whatever the client's EDNS offers. */
export const MAX_UDP_PAYLOAD = 4096;

export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NXDomain: 3, NotImp: 4, Refused: 5 } as const;
export type DnsRcode = (typeof DnsRcode)[keyof typeof DnsRcode];

export type DnsProtocol = 'udp' | 'tcp';

/** Why a packet was dropped without an answer (the `reason` of the drop counter). */
export type DnsDropReason = 'oversized' | 'malformed' | 'not-a-query';

export interface DnsQuery {
  readonly id: number;
  /** The header flags below QR, as `dns-packet` decodes them. */
  readonly flags: number;
  /** The name as asked (case kept: some resolvers randomise it and check the echo). */
  readonly name: string;
  readonly type: string;
  readonly class: string;
  /** The UDP payload the client accepts (its EDNS OPT record, else 512). */
  readonly udpPayload: number;
}

export type ParsedQuery =
  { readonly ok: true; readonly query: DnsQuery } | { readonly ok: false; readonly reason: DnsDropReason };

const OPCODE_MASK = 0x7800;

/** Reads one query; never throws. */
export function parseQuery(buf: Buffer): ParsedQuery {
  if (buf.length > MAX_QUERY_BYTES) return { ok: false, reason: 'oversized' };
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(buf);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const flags = packet.flags ?? 0;
  if (packet.type !== 'query' || (flags & OPCODE_MASK) !== 0) return { ok: false, reason: 'not-a-query' };
  const questions = packet.questions ?? [];
  const question = questions.length === 1 ? questions[0] : undefined;
  if (question === undefined) return { ok: false, reason: 'malformed' };
  const opt = (packet.additionals ?? []).find(r => r.type === 'OPT');
  const offered = opt !== undefined && 'udpPayloadSize' in opt ? opt.udpPayloadSize : undefined;
  const udpPayload = Math.min(MAX_UDP_PAYLOAD, Math.max(CLASSIC_UDP_PAYLOAD, offered ?? CLASSIC_UDP_PAYLOAD));
  return {
    ok: true,
    query: {
      id: packet.id ?? 0,
      flags,
      name: question.name,
      type: question.type,
      class: question.class ?? 'IN',
      udpPayload,
    },
  };
}

function toRecord(answer: DnsAnswer, query: DnsQuery): Answer {
  // Records named after the question keep the question's spelling.
  const name = answer.name === normalizeName(query.name) ? query.name : answer.name;
  return { type: answer.type, class: 'IN', name, ttl: DNS_ANSWER_TTL_SECONDS, data: answer.data };
}

/**
 * Encodes a response to `query`. Over UDP, a response larger than the client accepts is sent
 * without records and with TC set, so the client retries over TCP.
 */
export function encodeResponse(
  query: DnsQuery,
  options: {
    readonly rcode: DnsRcode;
    readonly answers: readonly DnsAnswer[];
    readonly authoritative: boolean;
    readonly protocol: DnsProtocol;
  },
): Buffer {
  const base =
    (query.flags & dnsPacket.RECURSION_DESIRED) |
    dnsPacket.RECURSION_AVAILABLE |
    (options.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
    options.rcode;
  const questions = [{ name: query.name, type: query.type as RecordType, class: query.class as RecordClass }];
  const full = dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: base,
    questions,
    answers: options.answers.map(a => toRecord(a, query)),
  });
  if (options.protocol === 'tcp' || full.length <= query.udpPayload) return full;
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: base | dnsPacket.TRUNCATED_RESPONSE,
    questions,
    answers: [],
  });
}

/** The query type as the metrics label it (`a`, `aaaa`, `mx`, ...). */
export function queryTypeLabel(type: string): string {
  return type.toLowerCase();
}
