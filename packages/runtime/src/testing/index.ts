// Test helpers of @ambient-mesh/runtime: hand-driven time and in-memory logs.
export { FakeTimers } from './fake-timers.ts';
export { captureLogs } from './log-capture.ts';
