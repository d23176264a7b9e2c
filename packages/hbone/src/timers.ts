/**
 * The timer capability the pool and the client use, injectable so tests can drive time. It is
 * @ambient-mesh/runtime's: `Timers` here is the part of runtime's `Timers` this library calls,
 * and the default is runtime's `unrefTimers` (global functions looked up at call time, so
 * vitest fake timers apply; every timer unref'd: HBONE housekeeping never keeps a process alive).
 */
import type { Timers as RuntimeTimers } from '@ambient-mesh/runtime';

export { unrefTimers as systemTimers } from '@ambient-mesh/runtime';
export type { TimerHandle } from '@ambient-mesh/runtime';

export type Timers = Pick<RuntimeTimers, 'setTimeout' | 'clearTimeout'>;
