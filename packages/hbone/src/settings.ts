/**
 * HTTP/2 and TLS settings of HBONE (docs/protocols.md#hbone-transport, #hbone-http2-settings) as node:http2 / node:tls options.
 *
 * Window sizes matter more than anything else for throughput in Node: the nghttp2 defaults
 * (64 KiB per stream and per connection) cap a tunnel near 170 MiB/s on loopback. The stream
 * window is a SETTINGS value; the connection window can only be raised with
 * `session.setLocalWindowSize()` once the session exists (see `tuneSession`).
 */
import type { ClientSessionOptions, Http2Session, SecureServerOptions, Settings } from 'node:http2';

export const HBONE_PORT = 15008;
export const STREAM_WINDOW_SIZE = 4 * 1024 * 1024;
export const CONNECTION_WINDOW_SIZE = 16 * 1024 * 1024;
export const MAX_FRAME_SIZE = 1024 * 1024;
export const SERVER_MAX_CONCURRENT_STREAMS = 200;
export const CLIENT_MAX_STREAMS_PER_CONNECTION = 100;
export const CLIENT_MAX_HEADER_LIST_SIZE = 16 * 1024;
export const SERVER_MAX_HEADER_LIST_SIZE = 64 * 1024;
export const KEEPALIVE_INTERVAL_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;
export const POOL_IDLE_TIMEOUT_MS = 5 * 60_000;
/** An unused connection while its key has another one (ours; upstream keeps each for 5 min). */
export const POOL_SURPLUS_IDLE_TIMEOUT_MS = 15_000;
/** Upstream TCP connect timeout on the server side (ztunnel: 10 s, then 503). */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** TCP + TLS + HTTP/2 setup towards a next hop. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** TLS 1.3 only, the FIPS-compatible AES-GCM pair, ALPN h2 (ztunnel `TLS_VERSIONS`, cipher list). */
export const TLS_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
export const ALPN_PROTOCOLS = ['h2'];

/**
 * nghttp2 session memory cap, in MB. The default (10) resets streams with ENHANCE_YOUR_CALM at
 * about 1000 concurrent streams; 4 MiB windows on 200 streams need more headroom than that.
 */
const MAX_SESSION_MEMORY_MB = 256;

export const CLIENT_SETTINGS: Settings = {
  enablePush: false,
  initialWindowSize: STREAM_WINDOW_SIZE,
  maxFrameSize: MAX_FRAME_SIZE,
  maxHeaderListSize: CLIENT_MAX_HEADER_LIST_SIZE,
};

export const SERVER_SETTINGS: Settings = {
  enablePush: false,
  initialWindowSize: STREAM_WINDOW_SIZE,
  maxFrameSize: MAX_FRAME_SIZE,
  maxConcurrentStreams: SERVER_MAX_CONCURRENT_STREAMS,
  maxHeaderListSize: SERVER_MAX_HEADER_LIST_SIZE,
};

/** node:http2 options of an outbound HBONE session (without TLS, which the socket carries). */
export const CLIENT_SESSION_OPTIONS: ClientSessionOptions = {
  settings: CLIENT_SETTINGS,
  maxSessionMemory: MAX_SESSION_MEMORY_MB,
  maxHeaderListPairs: 64,
  maxOutstandingPings: 4,
  maxReservedRemoteStreams: 0,
  peerMaxConcurrentStreams: CLIENT_MAX_STREAMS_PER_CONNECTION,
};

/** node:http2 options of the inbound HBONE server (TLS options are added by the server). */
export const SERVER_SESSION_OPTIONS: SecureServerOptions = {
  settings: SERVER_SETTINGS,
  maxSessionMemory: MAX_SESSION_MEMORY_MB,
  maxHeaderListPairs: 128,
  maxOutstandingPings: 4,
  maxSettings: 32,
  maxSessionInvalidFrames: 100,
  maxSessionRejectedStreams: 100,
  // HBONE has no HTTP/1.1 fallback.
  allowHTTP1: false,
  // A client that never sends its preface is dropped after this long.
  unknownProtocolTimeout: 10_000,
};

/** Raises the connection-level receive window; call once the session exists. */
export function tuneSession(session: Http2Session): void {
  try {
    session.setLocalWindowSize(CONNECTION_WINDOW_SIZE);
  } catch {
    // The session was destroyed before it could be tuned: nothing to do, its users see the close.
  }
}
