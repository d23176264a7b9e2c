// Test and benchmark helpers: a hand-driven ADS call and a scripted ADS server. Not for production.
export { RawAdsStream, RawDeltaStream, RawSotwStream } from './raw-ads-stream.ts';
export type { RawAdsStreamOptions } from './raw-ads-stream.ts';
export { TestAdsServer } from './test-ads-server.ts';
export type { TestAdsServerOptions } from './test-ads-server.ts';
