import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { SourceLimiter, admit } from './source-limit.ts';

class FakeSocket extends EventEmitter {
  readonly remoteAddress: string;
  constructor(remoteAddress: string) {
    super();
    this.remoteAddress = remoteAddress;
  }
}

describe('per-source connection limit', () => {
  it('admits below the limit, refuses at it, and never limits with 0', () => {
    expect(admit(2, 3)).toEqual({ kind: 'admit' });
    expect(admit(3, 3)).toEqual({ kind: 'refuse', open: 3, max: 3 });
    expect(admit(1_000_000, 0)).toEqual({ kind: 'admit' });
  });

  it('counts per source IP and frees a slot when an admitted socket closes', () => {
    const limiter = new SourceLimiter(2);
    const a1 = new FakeSocket('10.0.0.1');
    const a2 = new FakeSocket('10.0.0.1');
    expect(limiter.acquire(a1).kind).toBe('admit');
    expect(limiter.acquire(a2).kind).toBe('admit');
    expect(limiter.acquire(new FakeSocket('10.0.0.1')).kind).toBe('refuse');
    expect(limiter.acquire(new FakeSocket('10.0.0.2')).kind).toBe('admit');
    a1.emit('close');
    expect(limiter.openFrom('10.0.0.1')).toBe(1);
    expect(limiter.acquire(new FakeSocket('10.0.0.1')).kind).toBe('admit');
    expect(limiter.acquire(new FakeSocket('10.0.0.1')).kind).toBe('refuse');
  });
});
