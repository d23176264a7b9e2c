/**
 * `envoy.extensions.filters.http.ext_authz.v3.ExtAuthz` to the domain `ExtAuthzFilter`: the HTTP
 * service (`http_service.server_uri.cluster`, `path_prefix`, the authorization request and
 * response header lists) or the Envoy gRPC service (`grpc_service.envoy_grpc`), the timeout,
 * `failure_mode_allow`, `status_on_error` (default 403) and `filter_enabled_metadata`. Fields
 * that would change behaviour and are not implemented (request body, dynamic metadata, runtime
 * fractions...) are problems, so the listener is NACKed.
 */
import { envoyRoot } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { convertMetadataMatch } from './convert-jwt.ts';
import { convertStringMatch } from './matchers.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { ExtAuthzFilter, ExtAuthzService, StringMatch } from './types.ts';

/** Envoy's default check timeout (`HttpUri.timeout` and `GrpcService.timeout` are required upstream). */
const DEFAULT_TIMEOUT_MS = 200;

function listMatcher(r: ProtoReader, o: ProtoObject, key: string, path: string): StringMatch[] | undefined {
  const m = r.object(o, key);
  if (m === undefined) return undefined;
  r.only(m, `${path}.${key}`, ['patterns']);
  return r
    .list(m, 'patterns')
    .map((p, i) => convertStringMatch(r, p, `${path}.${key}.patterns[${i}]`))
    .filter((x): x is StringMatch => x !== undefined);
}

/** `envoy.type.v3.StatusCode` (decoded as its enum name, or a number) to the HTTP status. */
function statusCode(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  return envoyRoot().lookupEnum('envoy.type.v3.StatusCode').values[v];
}

function httpService(r: ProtoReader, s: ProtoObject, path: string): ExtAuthzService {
  r.only(s, path, ['server_uri', 'path_prefix', 'authorization_request', 'authorization_response']);
  const uri = r.object(s, 'server_uri') ?? {};
  r.only(uri, `${path}.server_uri`, ['uri', 'cluster', 'timeout']);
  const cluster = r.string(uri, 'cluster') ?? '';
  if (cluster === '') r.problem(`${path}.server_uri.cluster`, 'is required');
  const request = r.object(s, 'authorization_request') ?? {};
  r.only(request, `${path}.authorization_request`, ['headers_to_add']);
  const headersToAdd = r
    .list(request, 'headers_to_add')
    .map(h => [r.string(h, 'key') ?? '', r.string(h, 'value') ?? ''] as const);
  const response = r.object(s, 'authorization_response') ?? {};
  const rp = `${path}.authorization_response`;
  r.only(response, rp, [
    'allowed_upstream_headers',
    'allowed_client_headers',
    'allowed_client_headers_on_success',
  ]);
  return {
    kind: 'http',
    cluster,
    pathPrefix: r.string(s, 'path_prefix') ?? '',
    timeoutMs: r.durationMs(uri, 'timeout', `${path}.server_uri`) ?? DEFAULT_TIMEOUT_MS,
    headersToAdd,
    allowedUpstreamHeaders: listMatcher(r, response, 'allowed_upstream_headers', rp),
    allowedClientHeaders: listMatcher(r, response, 'allowed_client_headers', rp),
    allowedClientHeadersOnSuccess: listMatcher(r, response, 'allowed_client_headers_on_success', rp),
  };
}

function grpcService(r: ProtoReader, s: ProtoObject, path: string): ExtAuthzService {
  r.only(s, path, ['envoy_grpc', 'timeout'], ['initial_metadata']);
  const envoyGrpc = r.object(s, 'envoy_grpc');
  if (envoyGrpc === undefined) r.problem(path, 'needs envoy_grpc (google_grpc is not supported)');
  const g = envoyGrpc ?? {};
  r.only(g, `${path}.envoy_grpc`, ['cluster_name', 'authority']);
  const cluster = r.string(g, 'cluster_name') ?? '';
  if (envoyGrpc !== undefined && cluster === '') r.problem(`${path}.envoy_grpc.cluster_name`, 'is required');
  return {
    kind: 'grpc',
    cluster,
    authority: r.string(g, 'authority') || cluster,
    timeoutMs: r.durationMs(s, 'timeout', path) ?? DEFAULT_TIMEOUT_MS,
  };
}

export function convertExtAuthz(r: ProtoReader, name: string, c: ProtoObject, path: string): ExtAuthzFilter {
  r.only(
    c,
    path,
    [
      'http_service',
      'grpc_service',
      'failure_mode_allow',
      'status_on_error',
      'filter_enabled_metadata',
      'allowed_headers',
    ],
    ['transport_api_version', 'stat_prefix', 'include_peer_certificate', 'clear_route_cache'],
  );
  const http = r.object(c, 'http_service');
  const grpc = r.object(c, 'grpc_service');
  let service: ExtAuthzService;
  if (http !== undefined) service = httpService(r, http, `${path}.http_service`);
  else if (grpc !== undefined) service = grpcService(r, grpc, `${path}.grpc_service`);
  else {
    r.problem(path, 'needs http_service or grpc_service');
    service = { kind: 'grpc', cluster: '', authority: '', timeoutMs: DEFAULT_TIMEOUT_MS };
  }
  const status = r.object(c, 'status_on_error');
  const code = status === undefined ? undefined : statusCode(status.code);
  if (status !== undefined && (code === undefined || code < 100 || code > 599))
    r.problem(`${path}.status_on_error.code`, 'must be an HTTP status');
  const enabled = r.object(c, 'filter_enabled_metadata');
  return {
    name,
    service,
    allowedHeaders: listMatcher(r, c, 'allowed_headers', path),
    failureModeAllow: r.bool(c, 'failure_mode_allow') === true,
    statusOnError: code !== undefined && code >= 100 ? code : 403,
    enabledMetadata:
      enabled === undefined ? undefined : convertMetadataMatch(r, enabled, `${path}.filter_enabled_metadata`),
  };
}
