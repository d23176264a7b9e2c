/**
 * The time and backoff the server (debounce) and the client (reconnect) use. They are
 * @ambient-mesh/runtime's, re-exported under this package's public names: `Timers` here is the
 * part of runtime's `Timers` the library calls, so a test fake needs only those three members.
 */
import type { BackoffOptions as RuntimeBackoffOptions, Timers as RuntimeTimers } from '@ambient-mesh/runtime';

export { Backoff, systemTimers } from '@ambient-mesh/runtime';
export type { TimerHandle } from '@ambient-mesh/runtime';

export type Timers = Pick<RuntimeTimers, 'setTimeout' | 'clearTimeout' | 'now'>;

/** Reconnect backoff; every field is optional, the rest come from `DEFAULT_CLIENT_BACKOFF`. */
export type BackoffOptions = Partial<RuntimeBackoffOptions>;

/** ztunnel's xDS client: 10 ms doubling to 15 s, up to 20 % taken off at random. */
export const DEFAULT_CLIENT_BACKOFF: RuntimeBackoffOptions = { initialMs: 10, maxMs: 15_000, jitter: 0.2 };
