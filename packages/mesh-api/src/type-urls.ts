/**
 * The xDS type URLs the mesh serves: Istio's workload API (ztunnel) and Envoy's v3 resources
 * (waypoints and gateways), plus istiod's debug types on the SotW stream.
 */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  /** `istio.workload.Address`: a Workload or a Service (ztunnel, waypoints). */
  address: 'type.googleapis.com/istio.workload.Address',
  /** `istio.security.Authorization`: an L4 policy (ztunnel). */
  authorization: 'type.googleapis.com/istio.security.Authorization',
  /** `istio.workload.Workload`: bare workloads. */
  workload: 'type.googleapis.com/istio.workload.Workload',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  routeConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** istiod's debug "types" requested over SotW ADS by istioctl (`istio.io/debug/<name>`). */
export const DEBUG_TYPE_PREFIX = 'istio.io/debug/';
export const DebugType = {
  syncz: 'istio.io/debug/syncz',
  configDump: 'istio.io/debug/config_dump',
} as const;
