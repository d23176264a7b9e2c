export { FakeApiServer } from './fake-apiserver.ts';
export type { RecordedRequest } from './fake-apiserver.ts';
export { ManualTimers } from './manual-timers.ts';
export { until } from './until.ts';
