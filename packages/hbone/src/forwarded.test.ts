import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HboneInvalidHeaderError } from './errors.ts';
import { MAX_FORWARDED_LENGTH, buildForwarded, parseForwarded, parseForwardedHost } from './forwarded.ts';

describe('forwarded', () => {
  it('builds for= quoted and host= when service-addressed', () => {
    expect(buildForwarded('10.0.0.1:43210')).toBe('for="10.0.0.1:43210"');
    expect(buildForwarded('[::1]:5000', 'reviews.ns.svc.cluster.local')).toBe(
      'for="[::1]:5000";host=reviews.ns.svc.cluster.local',
    );
  });

  it('parses elements, pairs, quoted strings and escapes', () => {
    const parsed = parseForwarded('For="[2001:db8::1]:80";HOST="a\\"b", for=1.2.3.4');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.elements.map(e => Object.fromEntries(e))).toEqual([
      { for: '[2001:db8::1]:80', host: 'a"b' },
      { for: '1.2.3.4' },
    ]);
  });

  it('reads host= from the first element only', () => {
    expect(parseForwardedHost('for="1.2.3.4:5";host=svc.ns.svc.cluster.local')).toBe(
      'svc.ns.svc.cluster.local',
    );
    expect(parseForwardedHost('for="1.2.3.4:5", host=other')).toBeUndefined();
    expect(parseForwardedHost('host="unterminated')).toBeUndefined();
  });

  it.each([
    ['repeated parameter', 'host=a;host=b'],
    ['missing value', 'host='],
    ['missing equals', 'host'],
    ['unterminated quote', 'for="1.2.3.4'],
    ['control character', 'for="a\u0000b"'],
    ['garbage after value', 'for=a b'],
    ['too long', `host=${'a'.repeat(MAX_FORWARDED_LENGTH)}`],
    ['too many elements', Array.from({ length: 20 }, () => 'for=a').join(',')],
  ])('rejects %s', (_name, header) => {
    expect(parseForwarded(header).ok).toBe(false);
  });

  it('refuses to build a value with control characters', () => {
    expect(() => buildForwarded('1.2.3.4:5', 'a\nb')).toThrow(HboneInvalidHeaderError);
  });

  it('round-trips printable hosts and never throws on arbitrary input (fuzz)', () => {
    const printable = fc.string({
      minLength: 1,
      maxLength: 60,
      unit: fc.integer({ min: 0x20, max: 0x7e }).map(c => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(printable, printable, (source, host) => {
        expect(parseForwardedHost(buildForwarded(source, host))).toBe(host);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), header => {
        expect(typeof parseForwarded(header).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
