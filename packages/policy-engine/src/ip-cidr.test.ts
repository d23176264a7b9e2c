import { describe, expect, it } from 'vitest';
import { cidrContains, parseCidr, parseIp } from './ip-cidr.ts';

describe('parseIp', () => {
  it.each([
    ['1.2.3.4', [1, 2, 3, 4]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ['::ffff:10.0.0.1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]],
    ['2001:db8:0:0:0:0:0:1', [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
  ])('parses %s', (text, bytes) => {
    expect([...parseIp(text)!]).toEqual(bytes);
  });

  it.each(['1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1::2::3', 'fe80::1%eth0', '12345::', '', 'x'])(
    'rejects %s',
    text => {
      expect(parseIp(text)).toBeUndefined();
    },
  );
});

describe('cidr', () => {
  it('defaults the prefix to the family width and rejects longer ones', () => {
    expect(parseCidr('10.0.0.1')?.length).toBe(32);
    expect(parseCidr('::1')?.length).toBe(128);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0/08')).toBeUndefined();
  });

  it('masks partial bytes and keeps families apart', () => {
    const c = parseCidr('10.0.0.0/7')!;
    expect(cidrContains(c.address, c.length, parseIp('11.255.0.1')!)).toBe(true);
    expect(cidrContains(c.address, c.length, parseIp('12.0.0.1')!)).toBe(false);
    expect(cidrContains(c.address, c.length, parseIp('::ffff:10.0.0.1')!)).toBe(false);
    expect(cidrContains(new Uint8Array(4), 0, parseIp('200.1.1.1')!)).toBe(true);
  });
});
