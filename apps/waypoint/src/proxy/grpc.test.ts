import { describe, expect, it } from 'vitest';
import { GrpcMessageCounter, grpcPercentEncode, parseGrpcTimeout, requestTimeoutMs } from './grpc.ts';

function message(payload: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

describe('GrpcMessageCounter', () => {
  it('counts messages in one chunk, empty messages included', () => {
    const c = new GrpcMessageCounter();
    c.write(
      Buffer.concat([message(Buffer.from('a')), message(Buffer.alloc(0)), message(Buffer.from('xyz'), true)]),
    );
    expect(c.count).toBe(3);
  });

  it('counts messages split anywhere across chunks, byte by byte included', () => {
    const body = Buffer.concat([
      message(Buffer.alloc(300, 1)),
      message(Buffer.alloc(70_000, 2)),
      message(Buffer.from('end')),
    ]);
    const bytewise = new GrpcMessageCounter();
    for (const b of body) bytewise.write(Buffer.from([b]));
    expect(bytewise.count).toBe(3);
    for (const size of [2, 5, 7, 4096]) {
      const c = new GrpcMessageCounter();
      for (let i = 0; i < body.length; i += size) c.write(body.subarray(i, i + size));
      expect(c.count).toBe(3);
    }
  });

  it('counts a message once its prefix arrived, before its payload', () => {
    const c = new GrpcMessageCounter();
    c.write(message(Buffer.alloc(100)).subarray(0, 5));
    expect(c.count).toBe(1);
    c.write(Buffer.alloc(100));
    expect(c.count).toBe(1);
  });
});

describe('grpc-timeout', () => {
  it('parses every unit and rejects malformed values', () => {
    expect(parseGrpcTimeout('2H')).toBe(7_200_000);
    expect(parseGrpcTimeout('3M')).toBe(180_000);
    expect(parseGrpcTimeout('10S')).toBe(10_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBeCloseTo(1.5);
    expect(parseGrpcTimeout('2000000n')).toBeCloseTo(2);
    for (const bad of [undefined, '', '10', 'S', '123456789S', '1.5S', '-1S', '10s'])
      expect(parseGrpcTimeout(bad)).toBeUndefined();
  });

  it('max_grpc_timeout (replace): the deadline replaces the route timeout, capped unless the cap is 0', () => {
    const route = { timeoutMs: 0, grpcTimeout: { mode: 'replace' as const, maxMs: 0 } };
    expect(requestTimeoutMs(route, true, '300m')).toBe(300);
    expect(requestTimeoutMs(route, true, undefined)).toBe(0);
    const capped = { timeoutMs: 2_000, grpcTimeout: { mode: 'replace' as const, maxMs: 2_000 } };
    expect(requestTimeoutMs(capped, true, '300m')).toBe(300);
    expect(requestTimeoutMs(capped, true, '10S')).toBe(2_000);
    expect(requestTimeoutMs(capped, true, undefined)).toBe(2_000);
    // Not gRPC: the route timeout.
    expect(requestTimeoutMs(capped, false, '300m')).toBe(2_000);
  });

  it('grpc_timeout_header_max (limit): a sent deadline limits the request, the route timeout still applies', () => {
    const route = { timeoutMs: 1_000, grpcTimeout: { mode: 'limit' as const, maxMs: 0 } };
    expect(requestTimeoutMs(route, true, '300m')).toBe(300);
    expect(requestTimeoutMs(route, true, '5S')).toBe(1_000);
    expect(requestTimeoutMs(route, true, undefined)).toBe(1_000);
    expect(requestTimeoutMs({ timeoutMs: 0, grpcTimeout: { mode: 'limit', maxMs: 100 } }, true, '5S')).toBe(
      100,
    );
  });

  it('a route that does not read grpc-timeout keeps its timeout', () => {
    expect(requestTimeoutMs({ timeoutMs: 0, grpcTimeout: undefined }, true, '1S')).toBe(0);
  });
});

describe('grpcPercentEncode', () => {
  it('escapes only non-printable bytes and %, as gRPC and Envoy do (spaces and / stay)', () => {
    expect(
      grpcPercentEncode('upstream connect error or disconnect/reset before headers. reset reason: overflow'),
    ).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow');
    expect(grpcPercentEncode('100% sure\n')).toBe('100%25 sure%0A');
    expect(grpcPercentEncode('café')).toBe('caf%C3%A9');
  });
});
