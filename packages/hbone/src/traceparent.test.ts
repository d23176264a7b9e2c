import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HboneInvalidHeaderError } from './errors.ts';
import { TRACEPARENT_LENGTH, buildTraceparent, newTraceparent, parseTraceparent } from './traceparent.ts';

describe('traceparent', () => {
  it('builds 00-<trace>-<parent>-00 of length 55 from random IDs', () => {
    const text = buildTraceparent(newTraceparent());
    expect(text).toHaveLength(TRACEPARENT_LENGTH);
    expect(text).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('gives distinct IDs across refills of its pooled random bytes', () => {
    // 1,000 IDs draw the 4,080-byte pool about six times over.
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const tp = newTraceparent();
      seen.add(tp.traceId);
      seen.add(tp.parentId);
    }
    expect(seen.size).toBe(2000);
  });

  it('uses the injected random source and skips all-zero IDs', () => {
    let call = 0;
    const tp = newTraceparent(size =>
      call++ === 0 ? new Uint8Array(size) : new Uint8Array(size).fill(0xab),
    );
    expect(tp).toEqual({ traceId: 'ab'.repeat(16), parentId: 'ab'.repeat(8), flags: 0 });
    expect(() => newTraceparent(size => new Uint8Array(size))).toThrow(HboneInvalidHeaderError);
  });

  it('parses a valid header', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      ok: true,
      traceparent: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', flags: 1 },
    });
  });

  it.each([
    ['uppercase', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
    ['version ff', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['zero trace', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['zero parent', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['trailing data', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x'],
    ['wrong separators', '00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01'],
  ])('rejects %s', (_name, header) => {
    expect(parseTraceparent(header).ok).toBe(false);
  });

  it('round-trips and never throws (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.integer({ min: 0, max: 255 }),
        (bytes, flags) => {
          const traceId = Buffer.from(bytes.subarray(0, 16)).toString('hex');
          const parentId = Buffer.from(bytes.subarray(16)).toString('hex');
          fc.pre(!/^0+$/.test(traceId) && !/^0+$/.test(parentId));
          const parsed = parseTraceparent(buildTraceparent({ traceId, parentId, flags }));
          expect(parsed).toEqual({ ok: true, traceparent: { traceId, parentId, flags } });
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), header => {
        expect(typeof parseTraceparent(header).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
