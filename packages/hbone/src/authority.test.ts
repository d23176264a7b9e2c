import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_AUTHORITY_LENGTH, canonicalIpv6, formatAuthority, parseAuthority } from './authority.ts';
import { HboneInvalidAuthorityError } from './errors.ts';

describe('parseAuthority', () => {
  it('parses IPv4, bracketed IPv6 and hostname authorities', () => {
    expect(parseAuthority('10.244.0.2:8080')).toEqual({
      ok: true,
      authority: { kind: 'ip', ip: '10.244.0.2', family: 4, port: 8080 },
    });
    expect(parseAuthority('[2001:DB8:0::1]:443')).toEqual({
      ok: true,
      authority: { kind: 'ip', ip: '2001:db8::1', family: 6, port: 443 },
    });
    expect(parseAuthority('reviews.bookinfo.svc.cluster.local:9080')).toEqual({
      ok: true,
      authority: { kind: 'hostname', hostname: 'reviews.bookinfo.svc.cluster.local', port: 9080 },
    });
  });

  it.each([
    ['', 'empty'],
    ['10.0.0.1', 'no port'],
    ['10.0.0.1:', 'empty port'],
    ['10.0.0.1:0', 'port 0'],
    ['10.0.0.1:65536', 'port out of range'],
    ['10.0.0.1:080', 'leading zero in port'],
    ['10.0.0.1:+80', 'signed port'],
    ['010.0.0.1:80', 'leading zero in IPv4'],
    ['10.0.0.256:80', 'IPv4 octet out of range'],
    ['1.2.3:80', 'short IPv4'],
    ['::1:80', 'unbracketed IPv6'],
    ['[::1]80', 'bracket without colon'],
    ['[fe80::1%eth0]:80', 'zone id'],
    ['[::1', 'unterminated bracket'],
    ['user@host:80', 'userinfo'],
    ['host/path:80', 'path'],
    ['ho st:80', 'space'],
    ['-bad.example:80', 'label starting with a hyphen'],
    [`${'a'.repeat(250)}.com:80`, 'longer than 255'],
  ])('rejects %j (%s)', value => {
    const result = parseAuthority(value);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toBeInstanceOf(HboneInvalidAuthorityError);
  });

  it('never throws and never accepts more than 255 characters (fuzz)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), value => {
        const result = parseAuthority(value);
        if (result.ok) expect(value.length).toBeLessThanOrEqual(MAX_AUTHORITY_LENGTH);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips every formatted IP authority (fuzz)', () => {
    const ip = fc.oneof(fc.ipV4(), fc.ipV6());
    fc.assert(
      fc.property(ip, fc.integer({ min: 1, max: 65535 }), (address, port) => {
        const text = formatAuthority({
          kind: 'ip',
          ip: address,
          family: address.includes(':') ? 6 : 4,
          port,
        });
        const parsed = parseAuthority(text);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(formatAuthority(parsed.authority)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('formatAuthority', () => {
  it('writes IPv6 in the canonical bracketed form, like a Rust SocketAddr', () => {
    expect(formatAuthority({ kind: 'ip', ip: '0:0:0:0:0:0:0:1', family: 6, port: 15008 })).toBe(
      '[::1]:15008',
    );
    expect(canonicalIpv6('::FFFF:10.1.2.3')).toBe('::ffff:10.1.2.3');
    expect(formatAuthority({ kind: 'hostname', hostname: 'Svc.NS.svc', port: 80 })).toBe('svc.ns.svc:80');
  });

  it('refuses values it cannot put on the wire', () => {
    expect(() => formatAuthority({ kind: 'ip', ip: 'nope', family: 4, port: 80 })).toThrow(
      HboneInvalidAuthorityError,
    );
    expect(() => formatAuthority({ kind: 'ip', ip: '1.2.3.4', family: 4, port: 0 })).toThrow(/out of range/);
    expect(() => formatAuthority({ kind: 'hostname', hostname: 'a b', port: 80 })).toThrow(
      HboneInvalidAuthorityError,
    );
  });
});
