/**
 * ztunnel's side of the connection manager's sink: one connection's description (the parties for
 * the docs/protocols.md#ztunnel-metrics traffic labels, the docs/protocols.md#ztunnel-access-log access-log ends) and how it is reported to `ZtunnelMetrics`
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

/** One open connection as upstream's `/config_dump` `workloadState[uid].connections` lists it. */
export interface LiveConnection {
  readonly src: string;
  readonly originalDst: string;
  readonly actualDst: string;
  readonly protocol: 'HBONE' | 'TCP';
}

/** The open connections of one pod, split by direction. */
export interface LiveConnections {
  readonly inbound: readonly LiveConnection[];
  readonly outbound: readonly LiveConnection[];
}

/** The connection as the dump lists it: the original destination is the CONNECT authority, if any. */
export function liveConnection(ends: ConnectionEnds, mtls: boolean): LiveConnection {
  return {
    src: ends['src.addr'],
    originalDst: ends['dst.hbone_addr'] ?? ends['dst.addr'],
    actualDst: ends['dst.addr'],
    protocol: mtls ? 'HBONE' : 'TCP',
  };
}

/** The established connections a sink has seen open and not yet complete. */
export class LiveConnectionSet {
  readonly #open = new Set<ZtunnelConnection>();

  add(connection: ZtunnelConnection): void {
    this.#open.add(connection);
  }

  delete(connection: ZtunnelConnection): void {
    this.#open.delete(connection);
  }

  snapshot(): LiveConnections {
    const inbound: LiveConnection[] = [];
    const outbound: LiveConnection[] = [];
    for (const c of this.#open) {
      (c.ends.direction === 'inbound' ? inbound : outbound).push(liveConnection(c.ends, c.parties.mtls));
    }
    return { inbound, outbound };
  }
}

export function ztunnelConnectionSink(
  metrics: ZtunnelMetrics,
  accessLog: AccessLog,
  live?: LiveConnectionSet,
): ConnectionSink<ZtunnelConnection> {
  /** The labels of an established connection, computed once when it opens. */
  const opened = new WeakMap<ZtunnelConnection, TrafficLabels>();
  return {
    opened(connection) {
      live?.add(connection);
      const labels = connectionLabels(connection.parties);
      opened.set(connection, labels);
      metrics.connectionOpened(labels);
      accessLog.opened(connection.ends);
    },
    completed(connection, outcome) {
      live?.delete(connection);
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
