/**
 * The Istio standard labels of a connection through a TCP filter chain (`tcp_proxy`), as the
 * HTTP path derives them for requests: the source from the HBONE peer (its mTLS identity and its
 * WDS workload, else the CONNECT's `baggage`), or the gateway itself at the edge (`reporter="source"`); the destination
 * from the cluster's Service host and the chosen endpoint's workload and identity;
 * `request_protocol="tcp"`; `response_flags` `-`, or `UF` when no upstream connection could be made.
 */
import { trafficLabels } from '@ambient-mesh/mesh-api';
import type { AttributeLookup, TrafficLabels } from '@ambient-mesh/mesh-api';
import type { Baggage } from '@ambient-mesh/hbone';
import type { ClusterConfig, Endpoint, StatsConfig } from '../config/types.ts';
import type { MetricOverrides, TcpConnectionMetrics, WaypointMetrics } from '../metrics.ts';
import { endpointTrafficLabels, type GatewaySource } from './traffic-labels.ts';

/** Who the connection came from: an HBONE peer (a waypoint), or the gateway's own client. */
export type TcpSource =
  /** `baggage`: the source workload's metadata (WDS, else the CONNECT's `baggage`). */
  | { readonly kind: 'peer'; readonly peerIdentity: string; readonly baggage: Baggage }
  | { readonly kind: 'edge'; readonly gateway: GatewaySource };

/** Envoy's response flags a TCP connection can carry here. */
export type TcpResponseFlags = '-' | 'UF' | 'UH' | 'NC';

export interface TcpConnectionInfo {
  readonly source: TcpSource;
  readonly cluster: ClusterConfig | undefined;
  readonly endpoint: Endpoint | undefined;
  readonly flags: TcpResponseFlags;
}

/** Pure: the standard labels of one TCP connection. */
export function tcpTrafficLabels(c: TcpConnectionInfo): TrafficLabels {
  return trafficLabels({
    ...endpointTrafficLabels({
      gateway: c.source.kind === 'edge' ? c.source.gateway : undefined,
      baggage: c.source.kind === 'peer' ? c.source.baggage : {},
      peerIdentity: c.source.kind === 'peer' ? c.source.peerIdentity : undefined,
      host: c.cluster?.serviceHost,
      endpoint: c.endpoint,
    }),
    request_protocol: 'tcp',
    response_flags: c.flags,
  });
}

/** The attributes a TCP connection has for Telemetry tag overrides (no request, no response). */
export function tcpAttributes(remoteAddress: string, destinationPort: number): AttributeLookup {
  return name =>
    name === 'source.address' ? remoteAddress : name === 'destination.port' ? destinationPort : undefined;
}

/**
 * Opens the connection's metrics; a failed upstream connect is counted opened and closed with
 * its flag at once, as Envoy's stats filter reports it.
 */
export function tcpConnectionMetrics(
  metrics: WaypointMetrics,
  info: TcpConnectionInfo,
  attrs: {
    readonly stats: StatsConfig | undefined;
    readonly remoteAddress: string;
    readonly destinationPort: number;
  },
): TcpConnectionMetrics {
  const overrides: MetricOverrides | undefined =
    attrs.stats === undefined
      ? undefined
      : { stats: attrs.stats, lookup: tcpAttributes(attrs.remoteAddress, attrs.destinationPort) };
  const m = metrics.tcpConnection(tcpTrafficLabels(info), overrides);
  if (info.flags !== '-') m.closed();
  return m;
}
