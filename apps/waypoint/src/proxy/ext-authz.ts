/**
 * Envoy's `envoy.filters.http.ext_authz` for the waypoint (CUSTOM AuthorizationPolicies):
 *
 * - enablement: the filter checks only requests whose dynamic metadata matches
 *   `filter_enabled_metadata`; istiod's shadow RBAC filter before it sets
 *   `envoy.filters.http.rbac` → `<prefix>shadow_effective_policy_id` (`rbacShadowMetadata`);
 * - HTTP service: the request's method and `path_prefix` + path (with query) to the cluster, with
 *   `Host`, `Authorization`, `Content-Length: 0` and the `allowed_headers`; a 2xx allows (the
 *   `allowed_upstream_headers` of the response overwrite the request's), anything else is the
 *   client's response (status, body, the `allowed_client_headers`: all but Host when unset);
 * - gRPC service: `envoy.service.auth.v3.Authorization/Check` (unary, HTTP/2 through the same
 *   upstream pools, so over HBONE to in-mesh endpoints) with the request's attributes (all headers
 *   unless `allowed_headers`); `status.code` 0 allows with `ok_response` headers, otherwise the
 *   `denied_response` (status default 403);
 * - a failure (timeout, connection, 5xx-less garbage) allows with `failure_mode_allow`, else
 *   answers `status_on_error` (403). Denials carry the response flag `UAEX`.
 *
 * Decisions are pure over the service's answer (`decideHttp`, `decideGrpc`); the calls go
 * through an `ExtAuthzTransport`.
 */
import { randomUUID } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http2';
import { errorMessage } from '@ambient-mesh/errors';
import { stringMatches } from '../config/matchers.ts';
import type { ExtAuthzFilter, RbacFilter, StringMatch, WaypointConfig } from '../config/types.ts';
import { envoyRoot } from '../xds/envoy-protos.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { DnsClusters } from './dns-clusters.ts';
import { matchingPolicy, metadataMatches } from './rbac.ts';
import type { DynamicMetadata, RbacRequest } from './rbac.ts';
import type { UpstreamPools } from './upstream.ts';

export const RBAC_FILTER_NAMESPACE = 'envoy.filters.http.rbac';
export const EXT_AUTHZ_FLAG = 'UAEX';
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

/** What the authorization service learns of the request. */
export interface ExtAuthzRequest {
  readonly method: string;
  /** Path and query, as forwarded upstream. */
  readonly pathAndQuery: string;
  readonly host: string;
  readonly scheme: string;
  /** Lower-case names; pseudo-headers (`:method`...) are skipped. */
  readonly headers: ReadonlyMap<string, string>;
  readonly protocol: string;
  readonly source: { readonly ip: string; readonly principal: string };
  readonly destination: { readonly ip: string; readonly port: number };
}

export type ExtAuthzDecision =
  | { readonly kind: 'skip' }
  | {
      readonly kind: 'allow';
      /** Set on the upstream request (overwriting). */
      readonly upstreamHeaders: readonly (readonly [string, string])[];
      readonly removeHeaders: readonly string[];
      /** Added to the client's response. */
      readonly clientHeaders: readonly (readonly [string, string])[];
      /** The service failed and `failure_mode_allow` let the request through. */
      readonly failedOpen: boolean;
    }
  | {
      readonly kind: 'deny';
      readonly status: number;
      readonly body: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly details: string;
    };

/** The authorization service's HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** The gRPC Check answer: the call's status and, when OK, the decoded `CheckResponse`. */
export interface GrpcAnswer {
  readonly grpcStatus: number;
  readonly grpcMessage: string;
  readonly response: Readonly<Record<string, unknown>> | undefined;
}

export interface ExtAuthzTransport {
  http(
    cluster: string,
    request: { method: string; path: string; headers: Record<string, string> },
    timeoutMs: number,
  ): Promise<HttpAnswer>;
  grpc(cluster: string, authority: string, message: Uint8Array, timeoutMs: number): Promise<GrpcAnswer>;
}

/**
 * The dynamic metadata of the shadow rules of `filters` (Envoy's RBAC filter): per filter with
 * shadow rules, `<prefix>shadow_engine_result` and, when a policy matched,
 * `<prefix>shadow_effective_policy_id`.
 */
export function rbacShadowMetadata(filters: readonly RbacFilter[], req: RbacRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of filters) {
    if (f.shadowRules === undefined) continue;
    const prefix = f.shadowRulesStatPrefix ?? '';
    const hit = matchingPolicy(f.shadowRules, req);
    const denied =
      f.shadowRules.action === 'ALLOW'
        ? hit === undefined
        : hit !== undefined && f.shadowRules.action === 'DENY';
    out[`${prefix}shadow_engine_result`] = denied ? 'denied' : 'allowed';
    if (hit !== undefined) out[`${prefix}shadow_effective_policy_id`] = hit.name;
  }
  return out;
}

export function extAuthzEnabled(filter: ExtAuthzFilter, metadata: DynamicMetadata): boolean {
  return filter.enabledMetadata === undefined || metadataMatches(filter.enabledMetadata, metadata);
}

function anyMatch(list: readonly StringMatch[], name: string): boolean {
  return list.some(m => stringMatches(m, name));
}

const DEFAULT_HTTP_CHECK_HEADERS = new Set(['authorization', 'host', 'content-length']);

/** The HTTP check request (method, path, headers) of `req` for the filter's HTTP service. */
export function httpCheckRequest(
  filter: ExtAuthzFilter,
  req: ExtAuthzRequest,
): { method: string; path: string; headers: Record<string, string> } {
  const service = filter.service;
  const prefix = service.kind === 'http' ? service.pathPrefix : '';
  const headers: Record<string, string> = {};
  for (const [name, value] of req.headers) {
    if (name.startsWith(':') || name === 'host' || name === 'content-length') continue;
    if (
      DEFAULT_HTTP_CHECK_HEADERS.has(name) ||
      (filter.allowedHeaders !== undefined && anyMatch(filter.allowedHeaders, name))
    )
      headers[name] = value;
  }
  headers.host = req.host;
  headers['content-length'] = '0';
  if (service.kind === 'http') for (const [k, v] of service.headersToAdd) headers[k.toLowerCase()] = v;
  return { method: req.method, path: `${prefix}${req.pathAndQuery}`, headers };
}

/** Headers Envoy never copies from an authorization response to the client. */
const ALWAYS_ON_DENY = ['path', 'status', 'content-length', 'www-authenticate', 'location'];

export function decideHttp(filter: ExtAuthzFilter, answer: HttpAnswer): ExtAuthzDecision {
  const service = filter.service;
  if (service.kind !== 'http') throw new Error('decideHttp needs an HTTP service');
  const pick = (list: readonly StringMatch[] | undefined, fallback: 'all' | 'none'): [string, string][] => {
    const out: [string, string][] = [];
    for (const [name, value] of answer.headers) {
      if (list === undefined ? fallback === 'all' : anyMatch(list, name)) out.push([name, value]);
    }
    return out;
  };
  if (answer.status >= 200 && answer.status < 300) {
    return {
      kind: 'allow',
      upstreamHeaders: pick(service.allowedUpstreamHeaders, 'none'),
      removeHeaders: [],
      clientHeaders: pick(service.allowedClientHeadersOnSuccess, 'none'),
      failedOpen: false,
    };
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of answer.headers) {
    if (name === 'host' || name === 'content-length' || name === 'transfer-encoding' || name === 'connection')
      continue;
    const allowed =
      service.allowedClientHeaders === undefined ||
      anyMatch(service.allowedClientHeaders, name) ||
      ALWAYS_ON_DENY.includes(name);
    if (allowed) headers[name] = value;
  }
  return { kind: 'deny', status: answer.status, body: answer.body, headers, details: 'ext_authz_denied' };
}

/** The `CheckRequest` for `req` (AttributeContext: source, destination, request.http). */
export function grpcCheckRequest(filter: ExtAuthzFilter, req: ExtAuthzRequest): Uint8Array {
  const headers: Record<string, string> = {};
  for (const [name, value] of req.headers) {
    if (filter.allowedHeaders === undefined || anyMatch(filter.allowedHeaders, name)) headers[name] = value;
  }
  headers[':method'] = req.method;
  headers[':path'] = req.pathAndQuery;
  headers[':authority'] = req.host;
  headers[':scheme'] = req.scheme;
  const q = req.pathAndQuery.indexOf('?');
  const type = envoyRoot().lookupType('envoy.service.auth.v3.CheckRequest');
  const message = type.fromObject({
    attributes: {
      source: {
        address: { socket_address: { address: req.source.ip, port_value: 0 } },
        principal: req.source.principal,
      },
      destination: {
        address: { socket_address: { address: req.destination.ip, port_value: req.destination.port } },
      },
      request: {
        http: {
          id: req.headers.get('x-request-id') ?? randomUUID(),
          method: req.method,
          headers,
          path: req.pathAndQuery,
          host: req.host,
          scheme: req.scheme,
          query: q < 0 ? '' : req.pathAndQuery.slice(q + 1),
          protocol: req.protocol,
        },
      },
    },
  });
  return type.encode(message).finish();
}

export function decodeCheckResponse(bytes: Uint8Array): Record<string, unknown> {
  const type = envoyRoot().lookupType('envoy.service.auth.v3.CheckResponse');
  return type.toObject(type.decode(bytes), { enums: Number, longs: Number, defaults: false });
}

type HeaderOption = { header?: { key?: string; value?: string } };

function optionPairs(list: unknown): [string, string][] {
  if (!Array.isArray(list)) return [];
  return (list as HeaderOption[])
    .map(o => [(o.header?.key ?? '').toLowerCase(), o.header?.value ?? ''] as [string, string])
    .filter(([k]) => k !== '');
}

export function decideGrpc(filter: ExtAuthzFilter, answer: GrpcAnswer): ExtAuthzDecision {
  if (answer.grpcStatus !== 0 || answer.response === undefined)
    return failure(filter, `ext_authz_error{grpc_status_${answer.grpcStatus}}`);
  const r = answer.response as {
    status?: { code?: number };
    ok_response?: { headers?: unknown; headers_to_remove?: string[]; response_headers_to_add?: unknown };
    denied_response?: { status?: { code?: number }; headers?: unknown; body?: string };
  };
  if ((r.status?.code ?? 0) === 0) {
    return {
      kind: 'allow',
      upstreamHeaders: optionPairs(r.ok_response?.headers),
      removeHeaders: (r.ok_response?.headers_to_remove ?? []).map(h => h.toLowerCase()),
      clientHeaders: optionPairs(r.ok_response?.response_headers_to_add),
      failedOpen: false,
    };
  }
  const code = r.denied_response?.status?.code ?? 0;
  return {
    kind: 'deny',
    status: code >= 100 && code <= 599 ? code : 403,
    body: r.denied_response?.body ?? '',
    headers: Object.fromEntries(optionPairs(r.denied_response?.headers)),
    details: 'ext_authz_denied',
  };
}

function failure(filter: ExtAuthzFilter, details: string): ExtAuthzDecision {
  if (filter.failureModeAllow)
    return { kind: 'allow', upstreamHeaders: [], removeHeaders: [], clientHeaders: [], failedOpen: true };
  return { kind: 'deny', status: filter.statusOnError, body: '', headers: {}, details };
}

/** Runs one ext_authz filter for a request (already known to be enabled). */
export async function checkExtAuthz(
  filter: ExtAuthzFilter,
  req: ExtAuthzRequest,
  transport: ExtAuthzTransport,
): Promise<ExtAuthzDecision> {
  const service = filter.service;
  try {
    if (service.kind === 'http') {
      const answer = await transport.http(service.cluster, httpCheckRequest(filter, req), service.timeoutMs);
      return decideHttp(filter, answer);
    }
    const answer = await transport.grpc(
      service.cluster,
      service.authority,
      grpcCheckRequest(filter, req),
      service.timeoutMs,
    );
    return decideGrpc(filter, answer);
  } catch (err) {
    const code = err instanceof ExtAuthzCallError ? err.code : 'ext_authz_error';
    return failure(filter, code);
  }
}

/** A failed call to the authorization service (no usable answer). */
export class ExtAuthzCallError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The transport over the waypoint's clusters and upstream pools (HBONE for in-mesh endpoints). */
export class PoolTransport implements ExtAuthzTransport {
  readonly #config: () => WaypointConfig;
  readonly #pools: UpstreamPools;
  readonly #dns: DnsClusters | undefined;

  constructor(config: () => WaypointConfig, pools: UpstreamPools, dns?: DnsClusters) {
    this.#config = config;
    this.#pools = pools;
    this.#dns = dns;
  }

  async #endpoint(clusterName: string) {
    const config = this.#config();
    const cluster = config.clusters.get(clusterName);
    if (cluster === undefined)
      throw new ExtAuthzCallError('ext_authz_cluster_not_found', `no cluster ${clusterName}`);
    const eps = (await clusterEndpoints(cluster, config, this.#dns, { ip: '', port: 0 })).filter(
      e => e.healthy,
    );
    if (eps.length === 0)
      throw new ExtAuthzCallError(
        'ext_authz_no_healthy_upstream',
        `cluster ${clusterName} has no healthy endpoint`,
      );
    return eps[Math.floor(Math.random() * eps.length)]!;
  }

  async http(
    cluster: string,
    request: { method: string; path: string; headers: Record<string, string> },
    timeoutMs: number,
  ): Promise<HttpAnswer> {
    const endpoint = await this.#endpoint(cluster);
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await this.#pools.pool(endpoint, 16).request({
        method: request.method,
        path: request.path,
        headers: request.headers,
        signal,
      });
      const body = await res.body.text();
      const headers = new Map<string, string>();
      for (const [k, v] of Object.entries(res.headers))
        if (v !== undefined) headers.set(k.toLowerCase(), Array.isArray(v) ? v.join(',') : v);
      return { status: res.statusCode, headers, body };
    } catch (err) {
      throw new ExtAuthzCallError(
        signal.aborted ? 'ext_authz_timeout' : 'ext_authz_error',
        `ext_authz HTTP call to ${cluster} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  async grpc(
    cluster: string,
    authority: string,
    message: Uint8Array,
    timeoutMs: number,
  ): Promise<GrpcAnswer> {
    const endpoint = await this.#endpoint(cluster);
    const signal = AbortSignal.timeout(timeoutMs);
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': CHECK_PATH,
      ':authority': authority,
      ':scheme': 'http',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.max(1, timeoutMs)}m`,
    };
    try {
      const res = await this.#pools.h2Request(endpoint, headers, frame(message), signal);
      let trailers: Record<string, string | string[]> = {};
      res.onTrailers(t => {
        trailers = t;
      });
      // Data then END_STREAM with the trailers; Node may close the stream without `end`.
      const data = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        res.body.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.body.once('end', () => {
          resolve(Buffer.concat(chunks));
        });
        res.body.once('close', () => {
          resolve(Buffer.concat(chunks));
        });
        res.body.once('error', reject);
      });
      const all = { ...res.headers, ...trailers };
      const text = (v: unknown): string => (Array.isArray(v) ? String(v[0]) : typeof v === 'string' ? v : '');
      const grpcStatus = Number(text(all['grpc-status']) || (res.statusCode === 200 ? '0' : '2'));
      const grpcMessage = decodeURIComponent(text(all['grpc-message']));
      if (grpcStatus !== 0 || data.length < 5)
        return { grpcStatus: grpcStatus || 13, grpcMessage, response: undefined };
      const length = data.readUInt32BE(1);
      return { grpcStatus, grpcMessage, response: decodeCheckResponse(data.subarray(5, 5 + length)) };
    } catch (err) {
      throw new ExtAuthzCallError(
        signal.aborted ? 'ext_authz_timeout' : 'ext_authz_error',
        `ext_authz gRPC call to ${cluster} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
}

/** What the chain's ext_authz filters decided, together (the first denial wins). */
export type ExtAuthzOutcome =
  | {
      readonly kind: 'allow';
      readonly upstreamHeaders: readonly (readonly [string, string])[];
      readonly removeHeaders: readonly string[];
      /** Some filter's service failed and `failure_mode_allow` let the request through. */
      readonly failedOpen: boolean;
    }
  | Extract<ExtAuthzDecision, { kind: 'deny' }>;

/**
 * The chain's CUSTOM stage: the shadow RBAC metadata (merged into `metadata`), then each enabled
 * ext_authz filter in order.
 */
export async function runExtAuthz(
  filters: readonly ExtAuthzFilter[],
  rbac: readonly RbacFilter[],
  rbacRequest: RbacRequest,
  req: ExtAuthzRequest,
  metadata: Map<string, Readonly<Record<string, unknown>>>,
  transport: ExtAuthzTransport,
): Promise<ExtAuthzOutcome> {
  const shadow = rbacShadowMetadata(rbac, rbacRequest);
  if (Object.keys(shadow).length > 0)
    metadata.set(RBAC_FILTER_NAMESPACE, { ...metadata.get(RBAC_FILTER_NAMESPACE), ...shadow });
  const upstreamHeaders: (readonly [string, string])[] = [];
  const removeHeaders: string[] = [];
  let failedOpen = false;
  for (const filter of filters) {
    if (!extAuthzEnabled(filter, metadata)) continue;
    const decision = await checkExtAuthz(filter, req, transport);
    if (decision.kind === 'deny') return decision;
    if (decision.kind === 'allow') {
      upstreamHeaders.push(...decision.upstreamHeaders);
      removeHeaders.push(...decision.removeHeaders);
      failedOpen ||= decision.failedOpen;
    }
  }
  return { kind: 'allow', upstreamHeaders, removeHeaders, failedOpen };
}

/** The request as the authorization service sees it. */
export function extAuthzRequest(
  info: {
    method: string;
    host: string;
    scheme: string;
    pathAndQuery: string;
    headers: ReadonlyMap<string, string>;
  },
  httpVersion: string,
  ctx: { peerIdentity: string; remoteAddress: string; destinationIp: string; destinationPort: number },
): ExtAuthzRequest {
  const headers = new Map<string, string>();
  for (const [k, v] of info.headers) if (!k.startsWith(':')) headers.set(k, v);
  return {
    method: info.method,
    pathAndQuery: info.pathAndQuery,
    host: info.host,
    scheme: info.scheme,
    headers,
    protocol: httpVersion === '2.0' ? 'HTTP/2' : `HTTP/${httpVersion}`,
    source: { ip: ctx.remoteAddress, principal: ctx.peerIdentity },
    destination: { ip: ctx.destinationIp, port: ctx.destinationPort },
  };
}
