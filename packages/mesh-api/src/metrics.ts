/**
 * Metric names and label sets of the mesh, as Istio 1.27 exports them, so Prometheus
 * dashboards and Kiali's queries work unchanged.
 */

/** The standard traffic labels, in upstream's order. `unknown` stands for a missing value. */
export const TRAFFIC_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
] as const;
export type TrafficLabelName = (typeof TRAFFIC_LABELS)[number];
export type TrafficLabels = Readonly<Record<TrafficLabelName, string>>;

/** The value of a traffic label the reporter does not know. */
export const UNKNOWN = 'unknown';

/** Values of the `reporter` label. */
export const Reporter = {
  source: 'source',
  destination: 'destination',
  waypoint: 'waypoint',
} as const;
export type Reporter = (typeof Reporter)[keyof typeof Reporter];

/** Fills every traffic label, {@link UNKNOWN} where the caller has no value (empty counts as missing). */
export function trafficLabels(partial: Partial<Record<TrafficLabelName, string | undefined>>): TrafficLabels {
  const out = {} as Record<TrafficLabelName, string>;
  for (const name of TRAFFIC_LABELS) {
    const value = partial[name];
    out[name] = value === undefined || value === '' ? UNKNOWN : value;
  }
  if (out.response_flags === UNKNOWN) out.response_flags = '-';
  return out;
}

export const MetricName = {
  // ztunnel and waypoint L4
  tcpConnectionsOpened: 'istio_tcp_connections_opened_total',
  tcpConnectionsClosed: 'istio_tcp_connections_closed_total',
  tcpReceivedBytes: 'istio_tcp_received_bytes_total',
  tcpSentBytes: 'istio_tcp_sent_bytes_total',
  // waypoint L7
  requestsTotal: 'istio_requests_total',
  requestDuration: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
  requestMessages: 'istio_request_messages_total',
  responseMessages: 'istio_response_messages_total',
  // every component
  build: 'istio_build',
  // ztunnel xDS client
  xdsConnectionTerminations: 'istio_xds_connection_terminations_total',
  xdsMessages: 'istio_xds_message_total',
  xdsMessageBytes: 'istio_xds_message_bytes_total',
  // ztunnel DNS
  dnsRequests: 'istio_dns_requests_total',
  dnsUpstreamRequests: 'istio_dns_upstream_requests_total',
  dnsUpstreamFailures: 'istio_dns_upstream_failures_total',
  dnsUpstreamRequestDuration: 'istio_dns_upstream_request_duration_seconds',
  onDemandDns: 'istio_on_demand_dns_total',
  // istiod
  pilotXds: 'pilot_xds',
  pilotXdsPushes: 'pilot_xds_pushes',
  pilotXdsPushTime: 'pilot_xds_push_time',
  pilotTotalXdsRejects: 'pilot_total_xds_rejects',
  pilotInfo: 'pilot_info',
  pilotServices: 'pilot_services',
  pilotProxyConvergenceTime: 'pilot_proxy_convergence_time',
  citadelCsrCount: 'citadel_server_csr_count',
  citadelCertIssuanceCount: 'citadel_server_success_cert_issuance_count',
  // cni
  cniEnrolledPods: 'istio_cni_enrolled_pods',
  cniPendingPods: 'istio_cni_pending_pods',
  cniEnrolmentFailures: 'istio_cni_enrolment_failures_total',
  cniPluginEvents: 'istio_cni_plugin_events_total',
  cniRuleDriftRepairs: 'istio_cni_rule_drift_repairs_total',
  cniZtunnelConnections: 'istio_cni_ztunnel_connections',
} as const;
export type MetricName = (typeof MetricName)[keyof typeof MetricName];

/** Istio's `istio_request_duration_milliseconds` buckets. */
export const REQUEST_DURATION_BUCKETS_MS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

/** Values of `connection_security_policy`. */
export const ConnectionSecurityPolicy = {
  mutualTls: 'mutual_tls',
  none: 'none',
  unknown: 'unknown',
} as const;
