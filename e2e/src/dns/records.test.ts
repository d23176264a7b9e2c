import { describe, expect, it } from 'vitest';
import { buildResponse, DnsRcode, DnsType, parseQuery } from './dns-message.ts';
import { ClusterRecords } from './records.ts';

function query(name: string, type: number = DnsType.A, id = 0x1234): Buffer {
  const labels = name.split('.').map(l => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.from([0, type >> 8, type & 0xff, 0, 1]);
  return Buffer.concat([header, ...labels, tail]);
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
    expect(records.answer({ name: 'nope.default.svc.cluster.local', type: DnsType.A, class: 1 }).rcode).toBe(
      DnsRcode.NXDomain,
    );
    expect(records.answer({ name: 'example.com', type: DnsType.A, class: 1 }).rcode).toBe(DnsRcode.Refused);
  });

  it('answers AAAA for a known name with no records (NOERROR)', () => {
    expect(records.answer({ name: 'echo.default.svc.cluster.local', type: DnsType.AAAA, class: 1 })).toEqual({
      rcode: DnsRcode.NoError,
      addresses: [],
    });
  });

  it('maps pod names a-b-c-d.<ns>.pod to the address', () => {
    expect(
      records.answer({ name: '10-244-1-3.default.pod.cluster.local', type: DnsType.A, class: 1 }).addresses,
    ).toEqual(['10.244.1.3']);
  });

  it('encodes a response that echoes the id and question and carries the A record', () => {
    const q = parseQuery(query('echo.default.svc.cluster.local', DnsType.A, 0xbeef))!;
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
