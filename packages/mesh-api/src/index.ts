export { Port, ZTUNNEL_INPOD_PORTS } from './ports.ts';
export {
  Label,
  Annotation,
  DataplaneMode,
  WaypointFor,
  GatewayClassName,
  GATEWAY_CONTROLLER_NAME,
  GATEWAY_MANAGED_BY_MESH,
  REDIRECTION_ENABLED,
  WellKnown,
} from './labels.ts';
export { ProxyType, nodeId, parseNodeId } from './node-id.ts';
export type { NodeIdParts, NodeIdParseResult } from './node-id.ts';
export { TYPE_URL_PREFIX, TypeUrl, DEBUG_TYPE_PREFIX, DebugType } from './type-urls.ts';
export {
  TRAFFIC_LABELS,
  UNKNOWN,
  Reporter,
  trafficLabels,
  MetricName,
  REQUEST_DURATION_BUCKETS_MS,
  ConnectionSecurityPolicy,
} from './metrics.ts';
export type { TrafficLabelName, TrafficLabels } from './metrics.ts';
