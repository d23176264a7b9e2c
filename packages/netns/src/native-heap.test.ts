import { describe, expect, it } from 'vitest';
import { trimNativeHeap } from './index.ts';

describe('trimNativeHeap', () => {
  it('returns whether the C heap released memory, and can be called repeatedly', () => {
    // Fill and free some C heap (Buffers below the mmap threshold come from malloc).
    const buffers: Buffer[] = Array.from({ length: 2_000 }, () => Buffer.allocUnsafeSlow(16 * 1024));
    expect(buffers.length).toBe(2_000);
    buffers.length = 0;
    expect(typeof trimNativeHeap()).toBe('boolean');
    expect(typeof trimNativeHeap()).toBe('boolean');
  });
});
