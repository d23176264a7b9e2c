/**
 * Envoy v3 protos, from the `.proto` files `@grpc/grpc-js-xds` ships (its `deps/` folder), loaded
 * once with protobufjs. Decoding turns each resource into a plain object (proto field names,
 * enums as strings, `Any` expanded with `@type`, durations as objects) that the converters in
 * `../config/` validate into domain types.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { TypeUrl } from '@ambient-mesh/mesh-api';

const require = createRequire(import.meta.url);

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

const PROTO_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  // Telemetry access logging and the stats filter's config.
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'xds/type/v3/typed_struct.proto',
];

function depsRoot(): string {
  const pkg = require.resolve('@grpc/grpc-js-xds/package.json');
  return join(dirname(pkg), 'deps');
}

let root: protobuf.Root | undefined;

/** The protobufjs root holding every message above (loaded on first use, then cached). */
export function envoyRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const deps = depsRoot();
  const includes = [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map(d => join(deps, d)),
    // descriptor.proto and friends; the other well-known types are protobufjs's `common`.
    dirname(require.resolve('protobufjs/package.json')),
  ];
  const loaded = new protobuf.Root();
  loaded.resolvePath = (_origin, target) => {
    if (target in protobuf.common) return target;
    for (const dir of includes) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  loaded.loadSync(PROTO_FILES, { keepCase: true });
  loaded.resolveAll();
  root = loaded;
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
