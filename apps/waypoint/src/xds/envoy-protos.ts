/**
 * Envoy v3 protos (`envoy-proto-files.ts`: the `.proto` files `@grpc/grpc-js-xds` ships, or in the
 * bundle the same root serialized at build time), loaded once with protobufjs. Decoding turns
 * each resource into a plain object (proto field names, enums as strings, `Any` expanded with
 * `@type`, durations as objects) that the converters in `../config/` validate into domain types.
 */
import type protobuf from 'protobufjs';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { loadEnvoyRoot } from './envoy-proto-files.ts';

/** Message names of the filters and resources the waypoint understands. */
export const EnvoyType = {
  listener: 'envoy.config.listener.v3.Listener',
  routeConfiguration: 'envoy.config.route.v3.RouteConfiguration',
  cluster: 'envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  httpConnectionManager: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  httpRbac: 'envoy.extensions.filters.http.rbac.v3.RBAC',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  fault: 'envoy.extensions.filters.http.fault.v3.HTTPFault',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  jwtAuthn: 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  localRateLimit: 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  extAuthz: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  downstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  openTelemetryConfig: 'envoy.config.trace.v3.OpenTelemetryConfig',
  fileAccessLog: 'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  celExpressionFilter: 'envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
  typedStruct: 'xds.type.v3.TypedStruct',
} as const;

let root: protobuf.Root | undefined;

/**
 * The protobufjs root holding every message above (loaded on first use, then cached): from the
 * `.proto` files in the source form, from the root serialized at build time in the bundle.
 */
export function envoyRoot(): protobuf.Root {
  root ??= loadEnvoyRoot();
  return root;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  bytes: String,
  defaults: false,
  json: true,
};

/** A decoded message as a plain object (proto field names). */
export type ProtoObject = Record<string, unknown>;

/** Decodes `bytes` as `typeName` into a plain object; throws on malformed input. */
export function decodeEnvoy(typeName: string, bytes: Uint8Array): ProtoObject {
  const type = envoyRoot().lookupType(typeName);
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

/** Encodes a plain object (as `decodeEnvoy` returns, `Any` with `@type`) as `typeName`. */
export function encodeEnvoy(typeName: string, value: ProtoObject): Uint8Array {
  const type = envoyRoot().lookupType(typeName);
  return type.encode(type.fromObject(value)).finish();
}

/** The message name of a type URL (`type.googleapis.com/<name>`). */
export function typeNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  return slash < 0 ? typeUrl : typeUrl.slice(slash + 1);
}

/** The four resource type URLs the waypoint subscribes to, with their message names. */
export const WAYPOINT_TYPES = [
  { typeUrl: TypeUrl.listener, typeName: EnvoyType.listener },
  { typeUrl: TypeUrl.routeConfiguration, typeName: EnvoyType.routeConfiguration },
  { typeUrl: TypeUrl.cluster, typeName: EnvoyType.cluster },
  { typeUrl: TypeUrl.clusterLoadAssignment, typeName: EnvoyType.clusterLoadAssignment },
] as const;
