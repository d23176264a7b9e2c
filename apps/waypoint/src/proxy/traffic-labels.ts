/**
 * The Istio standard labels the waypoint's TCP connections (`tcp-stats.ts`) and HTTP requests
 * (`http-proxy.ts`) share, from who sent them (an HBONE peer, or the gateway's own client at the
 * edge) and where they went (the Service host and the chosen endpoint). Pure.
 */
import { ConnectionSecurityPolicy, Reporter } from '@ambient-mesh/mesh-api';
import type { TrafficLabelName } from '@ambient-mesh/mesh-api';
import type { Baggage } from '@ambient-mesh/hbone';
import type { Endpoint } from '../config/types.ts';

/** The gateway's own workload, reported as the source of the requests it forwards. */
export interface GatewaySource {
  readonly workload: string;
  readonly namespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
  /** Its SPIFFE ID (the upstream sees it on HBONE). */
  principal(): string;
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
