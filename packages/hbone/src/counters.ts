/**
 * Traffic counters of an HBONE server or client, as plain numbers that ztunnel turns into its
 * `istio_tcp_*` metrics (`istio_tcp_sent_bytes_total`, `istio_tcp_received_bytes_total`,
 * `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`).
 *
 * Bytes are tunnel payload bytes (not TLS or HTTP/2 framing), counted by `relay()`: `bytesSent`
 * went into tunnels, `bytesReceived` came out of them. Streams are CONNECT streams; connections
 * are TLS/HTTP/2 sessions. Counters only grow; take differences for rates.
 */
export interface HboneCounters {
  bytesSent: number;
  bytesReceived: number;
  streamsOpened: number;
  streamsClosed: number;
  /** CONNECTs answered with something other than 200 (server) or rejected (client). */
  streamsRejected: number;
  /** CONNECTs the peer did not process (REFUSED_STREAM, GOAWAY) and the client sent again. */
  streamsRetried: number;
  connectionsOpened: number;
  connectionsClosed: number;
  /** Sessions that ended with an error (TLS failure, protocol abuse, keepalive timeout). */
  connectionErrors: number;
}

export function createCounters(): HboneCounters {
  return {
    bytesSent: 0,
    bytesReceived: 0,
    streamsOpened: 0,
    streamsClosed: 0,
    streamsRejected: 0,
    streamsRetried: 0,
    connectionsOpened: 0,
    connectionsClosed: 0,
    connectionErrors: 0,
  };
}
