// The waypoint as a library: its composition root and the pure pieces tests and tools reuse.
export { build, ReadinessTask } from './app.ts';
export type { AppDeps, Bound } from './app.ts';
export { loadConfig, xdsNodeId, xdsNodeMetadata, Env } from './config.ts';
export type { Config } from './config.ts';
export type {
  ClusterConfig,
  Converted,
  Endpoint,
  EndpointSet,
  FilterChain,
  ListenerConfig,
  Route,
  RouteTable,
  VirtualHost,
  WaypointConfig,
} from './config/types.ts';
export { convertListener } from './config/convert-listener.ts';
export { convertRouteConfiguration } from './config/convert-route.ts';
export { convertCluster, convertClusterLoadAssignment } from './config/convert-cluster.ts';
export { decideRequest, selectChain, selectRoute } from './proxy/route.ts';
export { evaluateRbac } from './proxy/rbac.ts';
export { EnvoyType, decodeEnvoy, encodeEnvoy } from './xds/envoy-protos.ts';
