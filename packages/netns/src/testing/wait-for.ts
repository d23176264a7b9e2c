import { once } from 'node:events';
import type { EventEmitter } from 'node:events';

/** Resolves with the first emission of `event`, or rejects after `ms` (never a fixed sleep). */
export async function nextEvent<T extends unknown[]>(
  emitter: EventEmitter,
  event: string,
  ms = 5_000,
): Promise<T> {
  return (await once(emitter, event, { signal: AbortSignal.timeout(ms) })) as T;
}
