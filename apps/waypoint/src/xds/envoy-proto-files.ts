/**
 * The Envoy v3 `.proto` files the waypoint decodes, read with protobufjs from the copies
 * `@grpc/grpc-js-xds` ships (its `deps/` folder). This module is the source form: the shipped
 * bundle (`tools/bundle.mjs`) replaces it with the same root serialized at build time
 * (`Root.toJSON()`), so the image reads no `.proto` file and parses none at start.
 * It imports only Node built-ins and protobufjs, so the bundler can run it as it is.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** Files holding every message `EnvoyType` names (their imports are loaded with them). */
export const PROTO_FILES = [
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
] as const;

/** A resolved protobufjs root with every message of `PROTO_FILES` (field names as in the protos). */
export function loadEnvoyRoot(): protobuf.Root {
  const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
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
  loaded.loadSync([...PROTO_FILES], { keepCase: true });
  loaded.resolveAll();
  return loaded;
}
