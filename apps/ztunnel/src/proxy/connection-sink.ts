/**
 * ztunnel's side of the connection manager's sink: one connection's description (the parties for
 * the §6.2 traffic labels, the §6.3 access-log ends) and how it is reported to `ZtunnelMetrics`
 * and the `AccessLog`. The manager calls it once per event, so each connection is counted and
 * logged exactly once.
 */
import type { ConnectionSink } from '@ambient-mesh/proxy-core';
import type { AccessLog, ConnectionEnds } from '../access-log.ts';
import type { TrafficLabels, ZtunnelMetrics } from '../metrics.ts';
import { connectionLabels } from './traffic-labels.ts';
import type { ConnectionParties } from './traffic-labels.ts';

export interface ZtunnelConnection {
  readonly parties: ConnectionParties;
  readonly ends: ConnectionEnds;
}

export function ztunnelConnectionSink(
  metrics: ZtunnelMetrics,
  accessLog: AccessLog,
): ConnectionSink<ZtunnelConnection> {
  /** The labels of an established connection, computed once when it opens. */
  const opened = new WeakMap<ZtunnelConnection, TrafficLabels>();
  return {
    opened(connection) {
      const labels = connectionLabels(connection.parties);
      opened.set(connection, labels);
      metrics.connectionOpened(labels);
      accessLog.opened(connection.ends);
    },
    completed(connection, outcome) {
      let labels = opened.get(connection);
      if (labels === undefined) {
        // Refused: counted as opened and closed with its response flag.
        labels = connectionLabels(connection.parties, outcome.refused);
        metrics.connectionOpened(labels);
      }
      const { fromClient, toClient } = outcome;
      metrics.connectionClosed(labels, { fromClient, toClient });
      // The access log counts from this hop: outbound sends the request, inbound the response.
      const outbound = connection.ends.direction === 'outbound';
      accessLog.complete(connection.ends, {
        bytesSent: outbound ? fromClient : toClient,
        bytesRecv: outbound ? toClient : fromClient,
        durationMs: outcome.durationMs,
        error: outcome.error,
      });
    },
    failed(addresses, error) {
      accessLog.failed(
        { 'src.addr': addresses.src, 'dst.addr': addresses.dst, direction: addresses.direction },
        error,
      );
    },
  };
}
