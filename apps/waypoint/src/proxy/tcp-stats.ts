/**
 * The Istio standard labels of a connection through a TCP filter chain (`tcp_proxy`), as the
 * HTTP path derives them for requests: the source from the HBONE peer (its mTLS identity and its
 * WDS workload, else the CONNECT's `baggage`), or the gateway itself at the edge (`reporter="source"`); the destination
 * from the cluster's Service host and the chosen endpoint's workload and identity;
 * `request_protocol="tcp"`; `response_flags` `-`, or `UF` when no upstream connection could be made.
 */
import { ConnectionSecurityPolicy, Reporter, trafficLabels } from '@ambient-mesh/mesh-api';
import type { AttributeLookup, TrafficLabelName, TrafficLabels } from '@ambient-mesh/mesh-api';
import type { Baggage } from '@ambient-mesh/hbone';
import type { ClusterConfig, Endpoint, StatsConfig } from '../config/types.ts';
import type { MetricOverrides, TcpConnectionMetrics, WaypointMetrics } from '../metrics.ts';
import type { GatewaySource } from './http-proxy.ts';

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

/**
 * Pure: the standard labels a TCP connection and an HTTP request share. The reporter; the source:
 * the gateway itself at the edge (its SPIFFE ID when the upstream is reached over HBONE mTLS),
 * else the peer's workload metadata and identity; the destination: the Service host
 * (`<name>.<namespace>.svc...`; another host, such as a ServiceEntry's, is its own service name)
 * and the endpoint's workload and identity; and the connection security policy (the waypoint
 * terminated the peer's mTLS; a gateway reports none, as upstream's).
 */
export function endpointTrafficLabels(p: {
  readonly gateway: GatewaySource | undefined;
  readonly baggage: Baggage;
  readonly peerIdentity: string | undefined;
  readonly host: string | undefined;
  readonly endpoint: Endpoint | undefined;
}): Partial<Record<TrafficLabelName, string | undefined>> {
  const { gateway: gw, baggage: b, host } = p;
  const w = p.endpoint?.workload;
  const hostParts = host === undefined ? [] : host.includes('.svc.') ? host.split('.') : [host];
  const mtlsUpstream = p.endpoint !== undefined && p.endpoint.plaintext !== true;
  return {
    reporter: gw === undefined ? Reporter.waypoint : Reporter.source,
    source_workload: gw?.workload ?? b.workloadName,
    source_canonical_service: gw?.canonicalService ?? b.serviceName,
    source_canonical_revision: gw?.canonicalRevision ?? b.serviceVersion,
    source_workload_namespace: gw?.namespace ?? b.namespace,
    source_principal: gw === undefined ? p.peerIdentity : mtlsUpstream ? gw.principal() : undefined,
    source_app: gw?.canonicalService ?? b.serviceName,
    source_version: gw?.canonicalRevision ?? b.serviceVersion,
    source_cluster: gw?.cluster ?? b.clusterId,
    destination_service: host,
    destination_service_namespace: hostParts[1],
    destination_service_name: hostParts[0],
    destination_workload: w?.name,
    destination_canonical_service: w?.canonicalService,
    destination_canonical_revision: w?.canonicalRevision,
    destination_workload_namespace: w?.namespace,
    destination_principal: p.endpoint?.identity,
    destination_app: w?.canonicalService,
    destination_version: w?.canonicalRevision,
    destination_cluster: w?.cluster,
    connection_security_policy:
      gw === undefined ? ConnectionSecurityPolicy.mutualTls : ConnectionSecurityPolicy.unknown,
  };
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
