// Server
export { HboneServer, createHboneServer } from './connect-server.ts';
export type {
  ConnectDecision,
  ConnectHook,
  ConnectObserver,
  ConnectRequest,
  HboneListener,
  HboneServerOptions,
  SocketAddressInfo,
} from './connect-server.ts';
export { connectUpstream } from './upstream.ts';
export type { UpstreamOptions } from './upstream.ts';

// Client and pool
export { HboneClient, createHboneClient } from './connect-client.ts';
export type { HboneClientOptions, HboneConnectOptions } from './connect-client.ts';
export { H2Connection, defaultSocketFactory } from './h2-connection.ts';
export type { SocketFactory, SocketFactoryRequest } from './h2-connection.ts';
export { TunnelPool, poolKeyString } from './tunnel-pool.ts';
export type { Lease, PoolConnection, PoolKey, PoolStats, TunnelPoolOptions } from './tunnel-pool.ts';
export { relay, relayedBytes } from './relay.ts';
export type { RelayOptions, RelayResult } from './relay.ts';

// Identity
export {
  checkIdentity,
  parseIdentityId,
  presentsExpectedIdentity,
  spiffeIds,
  tlsContextOptions,
  uriSans,
} from './identity.ts';
export type { CheckedIdentity, HboneIdentity, SpiffeIdLike } from './identity.ts';

// Headers and authority
export {
  MAX_AUTHORITY_LENGTH,
  canonicalIpv6,
  formatAuthority,
  formatSocketAddress,
  parseAuthority,
} from './authority.ts';
export type { Authority, AuthorityResult } from './authority.ts';
export {
  BAGGAGE_WORKLOAD_TYPES,
  MAX_BAGGAGE_LENGTH,
  MAX_BAGGAGE_MEMBERS,
  buildBaggage,
  parseBaggage,
} from './baggage.ts';
export type { Baggage, BaggageResult, BaggageWorkloadType } from './baggage.ts';
export {
  MAX_FORWARDED_ELEMENTS,
  MAX_FORWARDED_LENGTH,
  MAX_FORWARDED_PAIRS,
  buildForwarded,
  parseForwarded,
  parseForwardedHost,
} from './forwarded.ts';
export type { ForwardedElement, ForwardedResult } from './forwarded.ts';
export { TRACEPARENT_LENGTH, buildTraceparent, newTraceparent, parseTraceparent } from './traceparent.ts';
export type { RandomBytes, Traceparent, TraceparentResult } from './traceparent.ts';

// Settings, counters, timers
export {
  CLIENT_MAX_HEADER_LIST_SIZE,
  CLIENT_MAX_STREAMS_PER_CONNECTION,
  CONNECTION_WINDOW_SIZE,
  HBONE_PORT,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_FRAME_SIZE,
  POOL_IDLE_TIMEOUT_MS,
  SERVER_MAX_CONCURRENT_STREAMS,
  SERVER_MAX_HEADER_LIST_SIZE,
  STREAM_WINDOW_SIZE,
  TLS_CIPHERS,
} from './settings.ts';
export { createCounters } from './counters.ts';
export type { HboneCounters } from './counters.ts';
export { systemTimers } from './timers.ts';
export type { TimerHandle, Timers } from './timers.ts';

// Errors
export {
  HboneClosedError,
  HboneConnectFailedError,
  HboneConnectHookError,
  HboneConnectRejectedError,
  HboneConnectTimeoutError,
  HboneHandshakeError,
  HboneIdentityMismatchError,
  HboneInvalidAuthorityError,
  HboneInvalidHeaderError,
  HboneIdleSessionError,
  HboneKeepaliveTimeoutError,
  HboneListenerError,
  HbonePeerIdentityError,
  HbonePeerRejectedError,
  HboneServerFailureError,
  HboneSessionClosedError,
  HboneSessionError,
  HboneStreamError,
  HboneStreamRefusedError,
  HboneTlsConfigError,
  HboneUpstreamConnectError,
} from './errors.ts';
export type { HboneServerError } from './errors.ts';
