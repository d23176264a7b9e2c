import dnsPacket, { type RecordType } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { buildResponse, DnsRcode, parseQuery } from './dns-message.ts';
import { ClusterRecords } from './records.ts';

function query(name: string, type: RecordType = 'A', id = 0x1234): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
  });
}

describe('cluster DNS records', () => {
  const records = new ClusterRecords('cluster.local');
  records.set({ name: 'echo', namespace: 'default', addresses: ['10.96.0.20'] });

  it('answers a Service name with its ClusterIP', () => {
    const q = parseQuery(query('Echo.default.svc.cluster.local'))!;
    expect(q.question.name).toBe('echo.default.svc.cluster.local');
    expect(records.answer(q.question)).toEqual({ rcode: DnsRcode.NoError, addresses: ['10.96.0.20'] });
  });

  it('answers NXDOMAIN inside the cluster domain and REFUSED outside it', () => {
    expect(records.answer({ name: 'nope.default.svc.cluster.local', type: 'A', class: 'IN' }).rcode).toBe(
      DnsRcode.NXDomain,
    );
    expect(records.answer({ name: 'example.com', type: 'A', class: 'IN' }).rcode).toBe(DnsRcode.Refused);
  });

  it('answers AAAA for a known name with no records (NOERROR)', () => {
    expect(records.answer({ name: 'echo.default.svc.cluster.local', type: 'AAAA', class: 'IN' })).toEqual({
      rcode: DnsRcode.NoError,
      addresses: [],
    });
  });

  it('maps pod names a-b-c-d.<ns>.pod to the address', () => {
    expect(
      records.answer({ name: '10-244-1-3.default.pod.cluster.local', type: 'A', class: 'IN' }).addresses,
    ).toEqual(['10.244.1.3']);
  });

  it('encodes a response that echoes the id and question and carries the A record', () => {
    const q = parseQuery(query('echo.default.svc.cluster.local', 'A', 0xbeef))!;
    const r = buildResponse(q, DnsRcode.NoError, ['10.96.0.20']);
    expect(r.readUInt16BE(0)).toBe(0xbeef);
    expect(r.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(r.readUInt16BE(6)).toBe(1);
    expect([...r.subarray(r.length - 4)]).toEqual([10, 96, 0, 20]);
  });

  it('rejects truncated and non-query packets', () => {
    expect(parseQuery(Buffer.alloc(5))).toBeUndefined();
    const resp = query('a.b');
    resp.writeUInt16BE(0x8100, 2);
    expect(parseQuery(resp)).toBeUndefined();
  });
});
