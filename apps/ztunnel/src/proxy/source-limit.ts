/**
 * Per-source connection limit of one pod's inbound listeners (15006 and 15008 together): a
 * source IP with `max` open connections has its next one closed at accept, before any TLS or
 * policy work. Upstream ztunnel has no such cap; it bounds what one peer can hold open in a pod.
 *
 * `admit` is the pure decision; `SourceLimiter` is its single-writer state (counts by source IP,
 * released when each admitted socket closes).
 */

export type Admission =
  { readonly kind: 'admit' } | { readonly kind: 'refuse'; readonly open: number; readonly max: number };

/** Whether one more connection from a source with `open` connections is allowed (`max` 0: no limit). */
export function admit(open: number, max: number): Admission {
  return max > 0 && open >= max ? { kind: 'refuse', open, max } : { kind: 'admit' };
}

/** A socket as far as the limiter needs it. */
export interface LimitedSocket {
  readonly remoteAddress?: string | undefined;
  once(event: 'close', listener: () => void): unknown;
}

export class SourceLimiter {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Counts `socket` against its source and returns `admit`, or `refuse` (nothing counted). */
  acquire(socket: LimitedSocket): Admission {
    const source = socket.remoteAddress ?? '';
    const open = this.#open.get(source) ?? 0;
    const decision = admit(open, this.#max);
    if (decision.kind === 'refuse' || this.#max <= 0) return decision;
    this.#open.set(source, open + 1);
    socket.once('close', () => {
      const now = (this.#open.get(source) ?? 1) - 1;
      if (now <= 0) this.#open.delete(source);
      else this.#open.set(source, now);
    });
    return decision;
  }

  /** Open connections of `source` (for tests and config dumps). */
  openFrom(source: string): number {
    return this.#open.get(source) ?? 0;
  }
}
