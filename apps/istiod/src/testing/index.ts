// Test and benchmark helpers: Kubernetes object builders, the golden fixture, a scale fixture
// and a grpc-js delta ADS client. Not for production use.
export {
  makePod,
  makeService,
  makeNode,
  makeNamespace,
  makeAuthorizationPolicy,
  makePeerAuthentication,
  makeWaypoint,
  goldenFixture,
} from './fixtures.ts';
export type { PodSpecInput } from './fixtures.ts';
export { scaleFixture } from './scale-fixture.ts';
export type { ScaleFixture, ScaleOptions } from './scale-fixture.ts';
export { DeltaTestClient, ztunnelNode } from './delta-client.ts';
export type { DeltaClientOptions, ZtunnelNodeOptions } from './delta-client.ts';
export {
  makeBackendPod,
  makeBoundService,
  makeDestinationRule,
  makeHttpRoute,
  makeReferenceGrant,
  makeWaypointGateway,
  waypointNode,
} from './waypoint-fixtures.ts';
export type { RouteSpec } from './waypoint-fixtures.ts';
export { WaypointIndex, WaypointKinds } from '../waypoint/waypoint-index.ts';
export { waypointIndexes } from './waypoint-indexes.ts';
export type { WaypointIndexes } from './waypoint-indexes.ts';
export {
  makeGatewayRoute,
  makeIngressGateway,
  makeSecretGrant,
  makeTlsSecret,
  routerNode,
} from './ingress-fixtures.ts';
export type { GatewayRouteSpec, IngressListenerSpec } from './ingress-fixtures.ts';
