/**
 * Envoy v3 API messages for the waypoint's xDS, from the `.proto` files `@grpc/grpc-js-xds`
 * ships (`deps/envoy-api`, `deps/xds`, `deps/googleapis`, `deps/protoc-gen-validate`), loaded once
 * with protobufjs on first use. Nothing of Envoy's API is copied into this repository.
 *
 * Translators build plain objects in protobufjs' camelCase shape; `encodeEnvoy` checks and encodes
 * them, `decodeEnvoy` is its inverse (tests and the loopback client). `typedConfig` packs an
 * extension's config into an `Any`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import type { ResourceType } from '@ambient-mesh/xds';
import { WaypointError, WaypointErrorCode } from './errors.ts';

/** The proto files the waypoint's resources and their typed extensions live in. */
const PROTO_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  // For EnvoyFilter patches (Istio's documented local rate limiting).
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  // Telemetry access logging and the stats filter's config (translate-telemetry.ts).
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'xds/type/v3/typed_struct.proto',
];

/** Full names of the messages the waypoint and the ingress gateway get. */
export const EnvoyType = {
  listener: 'envoy.config.listener.v3.Listener',
  routeConfiguration: 'envoy.config.route.v3.RouteConfiguration',
  cluster: 'envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  httpConnectionManager: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  rbac: 'envoy.extensions.filters.http.rbac.v3.RBAC',
  fault: 'envoy.extensions.filters.http.fault.v3.HTTPFault',
  jwtAuthn: 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  extAuthz: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  previousHosts: 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  downstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  tlsInspector: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpInspector: 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  openTelemetryConfig: 'envoy.config.trace.v3.OpenTelemetryConfig',
  fileAccessLog: 'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  celExpressionFilter: 'envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
  typedStruct: 'xds.type.v3.TypedStruct',
} as const;
export type EnvoyTypeName = (typeof EnvoyType)[keyof typeof EnvoyType];

/** The four xDS resource types, by type URL (from mesh-api's one list of type URLs). */
export const EnvoyTypeUrls = {
  listener: TypeUrl.listener,
  routeConfiguration: TypeUrl.routeConfiguration,
  cluster: TypeUrl.cluster,
  clusterLoadAssignment: TypeUrl.clusterLoadAssignment,
} as const;
export type EnvoyTypeUrl = (typeof EnvoyTypeUrls)[keyof typeof EnvoyTypeUrls];
export const ENVOY_TYPE_URLS: readonly EnvoyTypeUrl[] = Object.values(EnvoyTypeUrls);

let root: protobuf.Root | undefined;

function protoDirs(): string[] {
  const require = createRequire(import.meta.url);
  const xdsDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const pbDir = dirname(require.resolve('protobufjs/package.json'));
  return [
    pbDir, // google/protobuf/descriptor.proto
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map(d => join(xdsDir, 'deps', d)),
  ];
}

/** The protobufjs root of the Envoy API subset above; loaded once (about 0.2 s). */
export function envoyRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const dirs = protoDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  try {
    r.loadSync(PROTO_FILES);
    r.resolveAll();
  } catch (err) {
    throw new WaypointError(
      WaypointErrorCode.ProtoLoad,
      `could not load the Envoy API protos from @grpc/grpc-js-xds (is it installed?): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

function typeOf(name: string): protobuf.Type {
  let t = types.get(name);
  if (t === undefined) {
    t = envoyRoot().lookupType(name);
    types.set(name, t);
  }
  return t;
}

/** Scalar wrappers (`google.protobuf.UInt32Value`, ...) that translators write as plain values. */
const WRAPPERS: ReadonlySet<string> = new Set(
  [
    'UInt32Value',
    'UInt64Value',
    'Int32Value',
    'Int64Value',
    'BoolValue',
    'StringValue',
    'DoubleValue',
    'FloatValue',
  ].map(n => `.google.protobuf.${n}`),
);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Walks `value` as message `type`, converting between plain scalars and wrapper messages. */
function convertWrappers(
  type: protobuf.Type,
  value: Record<string, unknown>,
  wrap: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    const resolved = field?.resolvedType;
    if (field === undefined || !(resolved instanceof protobuf.Type)) {
      out[key] = v;
      continue;
    }
    const one = (x: unknown): unknown => {
      if (WRAPPERS.has(resolved.fullName)) {
        if (wrap) return isPlainObject(x) ? x : { value: x };
        return isPlainObject(x) ? (x.value ?? defaultScalar(resolved)) : x;
      }
      return isPlainObject(x) ? convertWrappers(resolved, x, wrap) : x;
    };
    if (field.map && isPlainObject(v))
      out[key] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, one(x)]));
    else if (field.repeated && Array.isArray(v)) out[key] = v.map(one);
    else out[key] = one(v);
  }
  return out;
}

function defaultScalar(wrapper: protobuf.Type): unknown {
  if (wrapper.fullName === '.google.protobuf.BoolValue') return false;
  if (wrapper.fullName === '.google.protobuf.StringValue') return '';
  return 0;
}

/** Encodes a plain object as message `name`; throws `ISTIOD_WAYPOINT_ENCODE` naming the problem. */
export function encodeEnvoy(name: string, value: object): Uint8Array {
  const type = typeOf(name);
  let message: protobuf.Message;
  try {
    message = type.fromObject(convertWrappers(type, value as Record<string, unknown>, true));
  } catch (err) {
    throw new WaypointError(
      WaypointErrorCode.Encode,
      `${name}: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  const problem = type.verify(message);
  if (problem !== null) throw new WaypointError(WaypointErrorCode.Encode, `${name}: ${problem}`);
  return type.encode(message).finish();
}

/**
 * The plain object of message `name`: enums as names, 64-bit integers as numbers, scalar
 * wrappers as plain values, unset fields omitted.
 */
export function decodeEnvoy(name: string, bytes: Uint8Array): Record<string, unknown> {
  const type = typeOf(name);
  const obj = type.toObject(type.decode(bytes), { enums: String, longs: Number, bytes: Array }) as Record<
    string,
    unknown
  >;
  return convertWrappers(type, obj, false);
}

/**
 * An `Any` carrying an extension's config, for a `typed_config` field. (protobufjs defines the
 * well-known `Any` from JSON with its proto field names, hence `type_url`.)
 */
export function typedConfig(name: EnvoyTypeName, value: object): { type_url: string; value: Uint8Array } {
  return { type_url: `type.googleapis.com/${name}`, value: encodeEnvoy(name, value) };
}

/** Decodes an `Any` built by `typedConfig` (tests and debug views). */
export function unpackTyped(any: unknown): Record<string, unknown> {
  const a = any as { type_url?: string; value?: Uint8Array | number[] };
  const url = a.type_url ?? '';
  const name = url.slice(url.lastIndexOf('/') + 1);
  const value = a.value instanceof Uint8Array ? a.value : Uint8Array.from(a.value ?? []);
  return decodeEnvoy(name, value);
}

const TYPE_NAME_OF_URL: Readonly<Record<EnvoyTypeUrl, EnvoyTypeName>> = {
  [EnvoyTypeUrls.listener]: EnvoyType.listener,
  [EnvoyTypeUrls.routeConfiguration]: EnvoyType.routeConfiguration,
  [EnvoyTypeUrls.cluster]: EnvoyType.cluster,
  [EnvoyTypeUrls.clusterLoadAssignment]: EnvoyType.clusterLoadAssignment,
};

/** The `@ambient-mesh/xds` resource type of one of the four waypoint type URLs. */
export function envoyResourceType(typeUrl: EnvoyTypeUrl): ResourceType<object> {
  const name = TYPE_NAME_OF_URL[typeUrl];
  return {
    typeUrl,
    encode: value => encodeEnvoy(name, value),
    decode: bytes => decodeEnvoy(name, bytes),
  };
}

// Small builders for common Envoy shapes.

/** A `google.protobuf.Duration` from milliseconds. */
export function duration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1_000_000) };
}

/** A `google.protobuf.Struct` from string values. */
export function struct(fields: Readonly<Record<string, string>>): {
  fields: Record<string, { stringValue: string }>;
} {
  return {
    fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { stringValue: v }])),
  };
}

/** An ADS config source (`ads: {}`, v3). */
export const ADS_CONFIG_SOURCE = Object.freeze({ ads: {}, resourceApiVersion: 'V3' });
