/**
 * The L7 data path. Each HBONE tunnel that lands on an HTTP filter chain is handed to one Node
 * `http.Server` (HTTP/1.1 parsing, header limits and timeouts are Node's). Per request:
 *
 *   local rate limit ahead of auth (429 `RL`) → JWT → RBAC (403) → route decision (404 NR,
 *   redirect, direct response, 503 NC) → fault filter (delay `DI`, abort `FI`) → local rate
 *   limit (429 `RL`) → request mirrors (fire-and-forget) → circuit breaker
 *   (503 UO) → attempts: pick endpoint (503 UH), HBONE + HTTP/1.1 via undici, per-try timeout,
 *   retry on the policy's conditions with jittered backoff, each attempt's result counted by
 *   outlier detection → response (header mods,
 *   `x-envoy-upstream-service-time`) → metrics and one access-log line.
 *
 * A retry is only ever decided before any response byte went downstream. The route timeout
 * covers the whole exchange; past it the client gets 504 (`UT`), or a reset once the response
 * has started. Every request takes one config snapshot, so updates never disturb it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, OutgoingHttpHeaders } from 'node:http2';
import { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { errorMessage } from '@ambient-mesh/errors';
import { trafficLabels } from '@ambient-mesh/mesh-api';
import { normalizePath } from '@ambient-mesh/policy-engine';
import type { Logger } from '@ambient-mesh/runtime';
import type { Baggage } from '@ambient-mesh/hbone';
import type {
  AccessLogConfig,
  ClusterConfig,
  Endpoint,
  FilterChain,
  ForwardAction,
  HeaderMods,
  HttpChain,
  RetryPolicy,
  StatsConfig,
  WaypointConfig,
} from '../config/types.ts';
import { serviceHostOf } from '../config/convert-cluster.ts';
import { DEFAULT_MAX_CONCURRENT_STREAMS } from '../config/types.ts';
import type { WaypointMetrics } from '../metrics.ts';
import type { WaypointStateReader } from '../state/waypoint-state.ts';
import { ClusterBalancer, endpointKey, hash32 } from './balancer.ts';
import { relayBody } from './relay-body.ts';
import type { AttemptResult } from './balancer.ts';
import { decideFault, faultFor } from './fault.ts';
import { GrpcMessageCounter, grpcPercentEncode, requestTimeoutMs } from './grpc.ts';
import { JWT_AUTHN_FILTER, JwtAuthenticator } from './jwt-authn.ts';
import { LocalRateLimiter, RATE_LIMITED_BODY } from './local-ratelimit.ts';
import { drawMirrors, sendMirror } from './mirror.ts';
import { EXT_AUTHZ_FLAG, PoolTransport, extAuthzRequest, runExtAuthz } from './ext-authz.ts';
import { ACCESS_LOG_HINT_KEY, ACCESS_LOG_HINT_NAMESPACE, evaluateRbac } from './rbac.ts';
import { AccessLogWriter, attributesOf } from './access-log.ts';
import type { AccessLogRecord } from './access-log.ts';
import type { DynamicMetadata } from './rbac.ts';
import { decideRequest, selectChain } from './route.ts';
import type { ChainResult, RequestDecision, RequestInfo } from './route.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { DnsClusters } from './dns-clusters.ts';
import { immediatePair } from './stream-pair.ts';
import { UpstreamTlsError, fromUndici, h2Request } from './upstream.ts';
import { H2ClusterPool } from './h2-pool.ts';
import type { H2Overflow, H2PoolLimits } from './h2-pool.ts';
import { endpointTrafficLabels, type GatewaySource } from './traffic-labels.ts';
import { collectorOf } from './tracing.ts';
import type { RequestSpan, WaypointTracer } from './tracing.ts';
import type { UpstreamPools, UpstreamResponse } from './upstream.ts';

/**
 * A connection accepted by a gateway listener (router mode): its filter chain was chosen when
 * it was accepted (it keeps it for its life, as with Envoy), and the gateway is the edge.
 */
export interface EdgeContext {
  /** The listener's resource name. */
  readonly listener: string;
  readonly chain: FilterChain;
  /** `https` when the connection was TLS-terminated here. */
  readonly scheme: 'http' | 'https';
  /** The gateway as the source of its requests (`reporter="source"`). */
  readonly source: GatewaySource;
}

/** What the HBONE side (or a gateway listener) knows about a downstream connection. */
export interface TunnelContext {
  /** The peer's SPIFFE ID from its mTLS certificate. */
  readonly peerIdentity: string;
  /** The CONNECT authority: the original destination (service VIP or pod IP) and port. */
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** The peer's address (the source ztunnel or pod). */
  readonly remoteAddress: string;
  /**
   * The source workload's metadata: its WDS workload (found by the original client address),
   * else the CONNECT's `baggage` header, else the namespace of the peer identity (`peer-index.ts`).
   */
  readonly baggage: Baggage;
  /** Set for connections of a gateway listener (router mode); `peerIdentity` is then empty. */
  readonly edge?: EdgeContext;
}

/** An IPv4-mapped IPv6 address as its IPv4 form. */
/** The HTTP/2 pool limits of a cluster: its circuit breakers and per-connection limits. */
function h2Limits(cluster: ClusterConfig): H2PoolLimits {
  const cb = cluster.circuitBreakers;
  return {
    maxConnections: cb.maxConnections,
    maxPendingRequests: cb.maxPendingRequests,
    maxRequests: cb.maxRequests,
    maxConcurrentStreams: cluster.connectionLimits?.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
    maxRequestsPerConnection: cluster.connectionLimits?.maxRequestsPerConnection ?? 0,
  };
}

function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * Envoy's request headers at the edge (`use_remote_address`, every downstream external): the
 * client's address appended to `x-forwarded-for` and set as `x-envoy-external-address`,
 * `x-forwarded-proto` the downstream connection's scheme; a client's `x-envoy-internal` goes.
 */
export function applyEdgeHeaders(
  headers: Record<string, string | string[] | undefined>,
  remoteAddress: string,
  scheme: 'http' | 'https',
): void {
  const remote = plainIp(remoteAddress);
  const xff = headers['x-forwarded-for'];
  const prior = Array.isArray(xff) ? xff.join(',') : xff;
  headers['x-forwarded-for'] = prior === undefined || prior === '' ? remote : `${prior},${remote}`;
  headers['x-forwarded-proto'] = scheme;
  headers['x-envoy-external-address'] = remote;
  Reflect.deleteProperty(headers, 'x-envoy-internal');
}

export interface HttpProxyOptions {
  readonly state: WaypointStateReader;
  readonly upstream: UpstreamPools;
  readonly metrics: WaypointMetrics;
  readonly logger: Logger;
  readonly accessLog: Logger;
  /** Largest request body buffered for forwarding and retries (bytes); larger gets 413. */
  readonly maxRequestBodyBytes: number;
  /** Node's header limit per request (bytes). */
  readonly maxHeaderBytes: number;
  readonly random?: () => number;
  /** Verifies JWTs (`envoy.filters.http.jwt_authn`); one per proxy, so remote JWKS are cached. */
  readonly jwt?: JwtAuthenticator;
  /** Resolved endpoints of `STRICT_DNS`/`LOGICAL_DNS` clusters. */
  readonly dns?: DnsClusters;
  /** Traces requests of chains whose HCM has `tracing` (OTLP export). */
  readonly tracer?: WaypointTracer;
  /** The spans' service name when the HCM's provider names none (`<waypoint>.<namespace>`). */
  readonly tracingServiceName?: string;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
  'host',
]);

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
/** Envoy's router marks a request it dropped on a circuit breaker (no `suppress_envoy_headers`). */
const OVERLOADED: Readonly<Record<string, string>> = Object.freeze({ 'x-envoy-overloaded': 'true' });
const CONNECT_FAILURE_BODY =
  'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
const RESET_BODY =
  'upstream connect error or disconnect/reset before headers. reset reason: connection termination';

type FailureKind = 'connect' | 'reset' | 'per-try-timeout';

/** HTTP/1.1 or h2c: Node's compatibility API gives both the same shape. */
type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** The HTTP/2 client connection preface: a tunnel that starts with it speaks h2c. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** The headers each response was sent with (for the access log's `%RESP(...)%`). */
const sentHeaders = new WeakMap<Res, Record<string, string | string[]>>();

function writeHead(res: Res, status: number, headers: Record<string, string | string[]>): Res {
  sentHeaders.set(res, headers);
  if ('stream' in res) return res.writeHead(status, headers);
  return res.writeHead(status, headers);
}

function lowerKeys<T>(h: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

function abort(res: Res): void {
  if ('stream' in res) res.stream.destroy();
  else res.destroy();
}

/** Errors that mean the upstream connection (HBONE tunnel) was never established. */
function failureKind(err: unknown): 'connect' | 'reset' {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('HBONE_') || code === 'WAYPOINT_UPSTREAM_TLS_FAILED') return 'connect';
    if (
      ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)
    ) {
      return 'connect';
    }
  }
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err ? failureKind(cause) : 'reset';
}

/** The TLS origination failure behind `err`, if that is what it is. */
function upstreamTlsError(err: unknown, depth = 0): UpstreamTlsError | undefined {
  if (err instanceof UpstreamTlsError) return err;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return cause !== undefined && cause !== err && depth < 8 ? upstreamTlsError(cause, depth + 1) : undefined;
}

export function retriableStatus(policy: RetryPolicy, status: number): boolean {
  if (policy.retryOn.has('5xx') && status >= 500) return true;
  if (policy.retryOn.has('gateway-error') && status >= 502 && status <= 504) return true;
  return policy.retryOn.has('retriable-status-codes') && policy.retriableStatusCodes.has(status);
}

export function retriableFailure(policy: RetryPolicy, kind: FailureKind): boolean {
  const on = policy.retryOn;
  switch (kind) {
    case 'connect':
      return on.has('5xx') || on.has('gateway-error') || on.has('connect-failure') || on.has('reset');
    case 'reset':
      return on.has('5xx') || on.has('reset');
    case 'per-try-timeout':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset');
  }
}

function headerMap(req: Req, host: string, path: string, scheme: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    map.set(name, Array.isArray(value) ? value.join(',') : value);
  }
  map.set(':method', req.method ?? 'GET');
  map.set(':authority', host);
  map.set(':path', path);
  map.set(':scheme', scheme);
  return map;
}

function isGrpc(contentType: string | string[] | undefined): boolean {
  return headerText(contentType)?.startsWith('application/grpc') ?? false;
}

/** Envoy's HTTP → gRPC status mapping for local replies (`Grpc::Utility::httpToGrpcStatus`). */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The HTTP/2 request headers for an upstream h2c stream (pseudo-headers from `host`). */
function h2Headers(
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  te: boolean,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': method,
    ':path': path,
    ':scheme': 'http',
    ':authority': headerText(headers.host) ?? '',
  };
  for (const [name, value] of Object.entries(headers)) {
    if (name !== 'host' && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  // gRPC needs `te: trailers`; it is the one TE value HTTP/2 allows.
  if (te) out.te = 'trailers';
  return out;
}

function applyMods(headers: Record<string, string | string[]>, mods: HeaderMods): void {
  for (const name of mods.remove) Reflect.deleteProperty(headers, name);
  for (const h of mods.add) {
    const existing = headers[h.name];
    if (h.mode === 'overwrite' || existing === undefined) headers[h.name] = h.value;
    else if (h.mode === 'append')
      headers[h.name] = [...(Array.isArray(existing) ? existing : [existing]), h.value];
  }
}

interface Outcome {
  status: number;
  flags: string[];
  endpoint: Endpoint | undefined;
  cluster: ClusterConfig | undefined;
  /** The Service of the filter chain (its name), for requests answered before a cluster is chosen. */
  chainService: string | undefined;
  route: string;
  details: string;
  responseBytes: number;
  /** `grpc-status` of a gRPC response (headers or trailers). */
  grpcStatus?: string | undefined;
  /** gRPC messages of the response body (gRPC requests only). */
  responseMessages?: GrpcMessageCounter | undefined;
  /** The request's span, when its chain traces. */
  span?: RequestSpan | undefined;
  /** `<filter>/<policy>` of the RBAC LOG rules (AUDIT policies) the request matched. */
  audit?: readonly string[] | undefined;
  /** The chain's Telemetry: `access_log` (replacing the built-in log) and stats overrides. */
  accessLog?: readonly AccessLogConfig[] | undefined;
  stats?: StatsConfig | undefined;
  /** Dynamic metadata the filters set (`envoy.common`, `envoy.filters.http.jwt_authn`). */
  metadata?: ReadonlyMap<string, Readonly<Record<string, unknown>>> | undefined;
  /** The response headers as sent (for `%RESP(...)%` and `response.headers`). */
  responseHeaders?: Readonly<Record<string, string | string[] | number | undefined>> | undefined;
}

/** Answers a request locally (no upstream): status, body, response flag, details and headers. */
type LocalReply = (
  status: number,
  body: string,
  flag: string | undefined,
  details: string,
  headers?: Record<string, string>,
) => void;
export class HttpProxy {
  readonly server: Server;
  readonly #o: HttpProxyOptions;
  readonly #tunnels = new WeakMap<Duplex, TunnelContext>();
  readonly #balancers = new Map<string, ClusterBalancer>();
  /** HTTP/2 upstream pools by cluster name. */
  readonly #h2Pools = new Map<string, H2ClusterPool>();
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #jwt: JwtAuthenticator;
  readonly #rateLimiter: LocalRateLimiter;
  /** Requests being handled, for a graceful shutdown. */
  #inFlight = 0;
  readonly #idleWaiters = new Set<() => void>();
  #draining = false;

  readonly #accessLogWriter = new AccessLogWriter();

  constructor(options: HttpProxyOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.#jwt = options.jwt ?? new JwtAuthenticator();
    this.#rateLimiter = new LocalRateLimiter({
      random: this.#random,
      counters: {
        count: (prefix, stat) => {
          options.metrics.localRateLimit(prefix, stat);
        },
      },
    });
    this.#log = options.logger;
    this.server = createServer(
      {
        maxHeaderSize: options.maxHeaderBytes,
        requestTimeout: 300_000,
        headersTimeout: 60_000,
        keepAliveTimeout: 60_000,
      },
      (req, res) => {
        this.#serve(req, res, this.#tunnels.get(req.socket));
      },
    );
    this.server.on('clientError', (err, socket) => {
      // Malformed requests (bad framing, conflicting Content-Length/Transfer-Encoding, header
      // overflow) are answered by status and the tunnel is closed; nothing is forwarded.
      const code = (err as { code?: string }).code;
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      if (socket.writable)
        socket.end(`HTTP/1.1 ${status} Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  /**
   * Serves an accepted tunnel's plaintext stream: h2c when it starts with the HTTP/2 preface
   * (gRPC included), HTTP/1.1 otherwise.
   */
  serveTunnel(stream: Duplex, context: TunnelContext): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const h2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2 && head.length < H2_PREFACE.length) return;
      stream.off('data', onData);
      stream.pause();
      stream.unshift(head);
      if (h2) this.#serveH2(stream, context);
      else {
        this.#tunnels.set(stream, context);
        this.server.emit('connection', stream);
      }
      stream.resume();
    };
    stream.on('data', onData);
  }

  readonly #h2Servers = new Set<Http2Server>();

  #serveH2(tunnel: Duplex, context: TunnelContext): void {
    const [near, stream] = immediatePair();
    tunnel.pipe(near);
    near.pipe(tunnel);
    tunnel.once('close', () => near.destroy());
    near.once('close', () => tunnel.destroy());
    const server = createH2Server({ maxHeaderListPairs: 256, maxSessionMemory: 10 }, (req, res) => {
      this.#serve(req, res, context);
    });
    this.#h2Servers.add(server);
    stream.once('close', () => {
      this.#h2Servers.delete(server);
      server.close();
    });
    server.on('sessionError', () => {
      stream.destroy();
    });
    server.emit('connection', stream);
  }

  #serve(req: Req, res: Res, ctx: TunnelContext | undefined): void {
    this.#handle(req, res, ctx).catch((err: unknown) => {
      this.#log.error({ err: errorMessage(err) }, 'request handling failed');
      if (!res.headersSent) {
        writeHead(res, 500, { 'content-type': 'text/plain' }).end('internal error');
      } else {
        abort(res);
      }
    });
  }

  balancer(cluster: string): ClusterBalancer {
    let b = this.#balancers.get(cluster);
    if (b === undefined) {
      b = new ClusterBalancer(cluster);
      this.#balancers.set(cluster, b);
    }
    return b;
  }

  /** Requests being handled right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Starts draining: every HTTP/1.1 response from now on carries `connection: close`, so a
   * client's kept-alive tunnel ends after its current request and the next one opens a new
   * tunnel (to a waypoint that is not going away).
   */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves once no request is in flight, or after `timeoutMs`; true when idle. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return true;
    return new Promise<boolean>(resolve => {
      const done = (): void => {
        clearTimeout(timer);
        this.#idleWaiters.delete(done);
        resolve(this.#inFlight === 0);
      };
      const timer = setTimeout(done, timeoutMs);
      this.#idleWaiters.add(done);
    });
  }

  async close(): Promise<void> {
    for (const pool of this.#h2Pools.values()) pool.close();
    this.#h2Pools.clear();
    for (const h2 of this.#h2Servers) h2.close();
    this.server.closeAllConnections();
    await new Promise<void>(resolve => {
      this.server.close(() => {
        resolve();
      });
    });
    await this.#accessLogWriter.close();
  }

  async #handle(req: Req, res: Res, ctx: TunnelContext | undefined): Promise<void> {
    const started = performance.now();
    const config = this.#o.state.snapshot();
    const outcome: Outcome = {
      status: 0,
      flags: [],
      endpoint: undefined,
      cluster: undefined,
      chainService: undefined,
      route: '',
      details: '',
      responseBytes: 0,
    };
    let requestBytes = 0;
    const grpcRequest = isGrpc(req.headers['content-type']);
    const requestMessages = grpcRequest ? new GrpcMessageCounter() : undefined;
    if (grpcRequest) outcome.responseMessages = new GrpcMessageCounter();
    req.on('data', (chunk: Buffer) => {
      requestBytes += chunk.length;
      requestMessages?.write(chunk);
    });
    // The listener above must not start the body flowing: it is read (or streamed upstream)
    // once the request is routed, maybe after awaits.
    req.pause();
    this.#inFlight++;
    if (this.#draining && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
    res.once('close', () => {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const wake of [...this.#idleWaiters]) wake();
      const durationMs = performance.now() - started;
      if (outcome.accessLog !== undefined || outcome.stats !== undefined)
        outcome.responseHeaders = lowerKeys(sentHeaders.get(res) ?? res.getHeaders());
      // After the request's other `close` listeners (a client reset is flagged `DC` there).
      setImmediate(() => {
        this.#complete(req, ctx, outcome, requestBytes, requestMessages?.count, durationMs);
      });
    });
    const local = (
      status: number,
      body: string,
      flag: string | undefined,
      details: string,
      headers: Record<string, string> = {},
    ): void => {
      outcome.status = status;
      if (flag !== undefined) outcome.flags.push(flag);
      outcome.details = details;
      outcome.responseBytes = Buffer.byteLength(body);
      if (res.headersSent) {
        abort(res);
        return;
      }
      // A body nobody reads (the request was answered here) is drained, not left paused.
      if (!req.readableEnded) req.resume();
      if (isGrpc(req.headers['content-type']) && status >= 400) {
        // Envoy answers a gRPC request's local reply as gRPC: 200 with the status mapped to a
        // `grpc-status` and the text as `grpc-message`, headers only.
        const grpcStatus = grpcStatusOfHttp(status);
        outcome.status = 200;
        outcome.grpcStatus = String(grpcStatus);
        outcome.responseBytes = 0;
        const grpcHeaders = {
          ...headers,
          'content-type': 'application/grpc',
          'grpc-status': String(grpcStatus),
          ...(body === '' ? {} : { 'grpc-message': grpcPercentEncode(body) }),
        };
        if ('stream' in res) {
          if (res.stream.destroyed || res.stream.headersSent) abort(res);
          else res.stream.respond({ ':status': 200, ...grpcHeaders }, { endStream: true });
        } else writeHead(res, 200, { ...grpcHeaders, 'content-length': '0' }).end();
        return;
      }
      writeHead(res, status, {
        ...headers,
        'content-length': String(outcome.responseBytes),
        ...(body === '' ? {} : { 'content-type': 'text/plain' }),
      });
      res.end(body);
    };
    if (ctx === undefined) {
      local(500, 'internal error', undefined, 'no_tunnel_context');
      return;
    }
    if (ctx.edge !== undefined) applyEdgeHeaders(req.headers, ctx.remoteAddress, ctx.edge.scheme);
    const chainResult: ChainResult =
      ctx.edge === undefined
        ? // The request's own protocol is what http_inspector found on its stream (an
          // undeclared port's HTTP chain matches on it; other chains match any).
          selectChain(
            config,
            ctx.destinationIp,
            ctx.destinationPort,
            req.httpVersion === '2.0' ? 'h2c' : `http/${req.httpVersion}`,
          )
        : { kind: 'chain', chain: ctx.edge.chain };
    if (chainResult.kind === 'no-chain' || chainResult.chain.action.kind !== 'http') {
      local(
        503,
        'no filter chain for this destination',
        'NR',
        chainResult.kind === 'no-chain' ? chainResult.reason : 'tcp_chain',
      );
      return;
    }
    const chain = chainResult.chain.action;
    outcome.chainService = serviceHostOf(chainResult.chain.name);
    outcome.accessLog = chain.accessLog;
    outcome.stats = chain.stats;
    // Where the chain's rate limit buckets live: its listener (router mode) and filter chain.
    const chainKey = `${ctx.edge?.listener ?? ''}|${chainResult.chain.name}`;
    const normalized = normalizePath(req.url ?? '/', chain.pathNormalization);
    if (normalized === undefined) {
      local(400, 'Bad Request', undefined, 'path_normalization_failed');
      return;
    }
    // Routing, RBAC and the upstream all see the normalised path, as with Envoy.
    const pathAndQuery =
      normalized.query === undefined ? normalized.path : `${normalized.path}?${normalized.query}`;
    const authority = req.headers[':authority'];
    const host =
      (typeof authority === 'string' ? authority : undefined) ??
      req.headers.host ??
      `${ctx.destinationIp}:${ctx.destinationPort}`;
    const q = pathAndQuery.indexOf('?');
    const scheme = ctx.edge?.scheme ?? 'http';
    const info: RequestInfo & { scheme: string; pathAndQuery: string } = {
      method: req.method ?? 'GET',
      host,
      path: normalized.path,
      query: new URLSearchParams(q < 0 ? '' : pathAndQuery.slice(q + 1)),
      headers: headerMap(req, host, pathAndQuery, scheme),
      scheme,
      pathAndQuery,
    };
    if (chain.tracing !== undefined && this.#o.tracer !== undefined) {
      outcome.span = this.#o.tracer.start(
        chain.tracing,
        collectorOf(config, chain.tracing, name => this.#o.dns?.endpoints(name)),
        {
          name: `${outcome.chainService ?? host}:${ctx.destinationPort}/*`,
          method: info.method,
          url: `${scheme}://${host}${pathAndQuery}`,
          protocol: `HTTP/${req.httpVersion}`,
          peerAddress: plainIp(ctx.remoteAddress),
          headers: req.headers,
          fallbackServiceName: this.#o.tracingServiceName ?? 'waypoint',
        },
      );
    }
    // Local rate limit filters ahead of JWT and RBAC (an EnvoyFilter's INSERT_FIRST) see the route too.
    if (
      chain.localRateLimits?.some(f => f.beforeAuth) === true &&
      this.#rateLimited(
        chain,
        chainKey,
        decideRequest(config, chain, info, this.#random()),
        true,
        outcome,
        local,
      )
    )
      return;
    // JWT authentication runs before RBAC (istiod orders CUSTOM, jwt_authn, DENY, ALLOW).
    const metadata = new Map<string, Readonly<Record<string, unknown>>>();
    outcome.metadata = metadata;
    if (chain.extAuthz !== undefined && chain.extAuthz.length > 0) {
      // CUSTOM: ext_authz (see ext-authz.ts); a denial is the authorization service's answer.
      const authz = await runExtAuthz(
        chain.extAuthz,
        chain.rbac,
        {
          headers: info.headers,
          path: info.path,
          destinationPort: ctx.destinationPort,
          peerPrincipal: ctx.peerIdentity,
          destinationIp: ctx.destinationIp,
          remoteIp: ctx.remoteAddress,
        },
        extAuthzRequest(info, req.httpVersion, ctx),
        metadata,
        new PoolTransport(() => config, this.#o.upstream, this.#o.dns),
      );
      if (authz.kind === 'deny') {
        local(authz.status, authz.body, EXT_AUTHZ_FLAG, authz.details, authz.headers);
        return;
      }
      const headers = info.headers as Map<string, string>;
      for (const name of authz.removeHeaders) {
        Reflect.deleteProperty(req.headers, name);
        headers.delete(name);
      }
      for (const [name, value] of authz.upstreamHeaders) {
        req.headers[name] = value;
        headers.set(name, value);
      }
    }
    for (const filter of chain.jwt) {
      const jwt = await this.#jwt.authenticate(filter, info);
      if (jwt.kind === 'deny') {
        local(jwt.status, jwt.body, undefined, `jwt_authn_access_denied{${jwt.body.replaceAll(' ', '_')}}`, {
          'www-authenticate': jwt.wwwAuthenticate,
        });
        return;
      }
      if (jwt.metadata !== undefined)
        metadata.set(JWT_AUTHN_FILTER, { ...metadata.get(JWT_AUTHN_FILTER), ...jwt.metadata });
      const headers = info.headers as Map<string, string>;
      for (const name of jwt.removeHeaders) {
        Reflect.deleteProperty(req.headers, name);
        headers.delete(name);
      }
      for (const [name, value] of jwt.setHeaders) {
        req.headers[name] = value;
        headers.set(name, value);
      }
    }
    const dynamicMetadata: DynamicMetadata = metadata;
    const rbac = evaluateRbac(chain.rbac, {
      metadata: dynamicMetadata,
      headers: info.headers,
      path: info.path,
      destinationPort: ctx.destinationPort,
      peerPrincipal: ctx.peerIdentity,
      destinationIp: ctx.destinationIp,
      remoteIp: ctx.remoteAddress,
    });
    if (rbac.logged.length > 0) {
      // AUDIT: Envoy's `envoy.common` `access_log_hint`; the access log line carries it.
      outcome.audit = rbac.logged;
      metadata.set(ACCESS_LOG_HINT_NAMESPACE, { [ACCESS_LOG_HINT_KEY]: true });
      this.#o.metrics.rbacLogged(chain.statPrefix);
    }
    if (rbac.kind === 'deny') {
      local(
        403,
        'RBAC: access denied',
        undefined,
        `rbac_access_denied_matched_policy[${rbac.policy ?? 'none'}]`,
      );
      return;
    }
    const decision = decideRequest(config, chain, info, this.#random());
    // The fault filter runs after RBAC and before the router: delay first, then abort.
    const fault = decideFault(
      faultFor(chain, 'route' in decision ? decision.route : undefined),
      this.#random,
    );
    if (fault.delayMs > 0) {
      outcome.flags.push('DI');
      await new Promise<void>(resolve => setTimeout(resolve, fault.delayMs));
    }
    if (fault.abortStatus !== undefined) {
      if ('route' in decision) outcome.route = decision.route.name;
      local(fault.abortStatus, 'fault filter abort', 'FI', 'fault_filter_abort');
      return;
    }
    if (this.#rateLimited(chain, chainKey, decision, false, outcome, local)) return;
    await this.#respond(decision, config, chain, ctx, info, req, res, outcome, local);
  }

  /** Runs one stage of the local rate limit filters; true when the request was answered. */
  #rateLimited(
    chain: HttpChain,
    chainKey: string,
    decision: RequestDecision,
    beforeAuth: boolean,
    outcome: Outcome,
    local: LocalReply,
  ): boolean {
    if (chain.localRateLimits === undefined) return false;
    const route = 'route' in decision ? decision.route : undefined;
    const limit = this.#rateLimiter.decide(chain, route, beforeAuth, chainKey);
    if (limit.kind === 'pass') return false;
    if (route !== undefined) outcome.route = route.name;
    local(limit.status, RATE_LIMITED_BODY, 'RL', 'local_rate_limited', { ...limit.headers });
    return true;
  }

  async #respond(
    decision: RequestDecision,
    config: WaypointConfig,
    chain: HttpChain,
    ctx: TunnelContext,
    info: RequestInfo & { pathAndQuery: string },
    req: Req,
    res: Res,
    outcome: Outcome,
    local: LocalReply,
  ): Promise<void> {
    switch (decision.kind) {
      case 'no-route-config':
        local(404, '', 'NR', `route_configuration_not_found[${decision.name}]`);
        return;
      case 'no-route':
        local(404, '', 'NR', 'route_not_found');
        return;
      case 'redirect':
        outcome.route = decision.route.name;
        local(decision.status, '', undefined, 'via_redirect', { location: decision.location });
        return;
      case 'direct-response':
        outcome.route = decision.route.name;
        local(decision.status, decision.body, undefined, 'direct_response');
        return;
      case 'no-cluster':
        outcome.route = decision.route.name;
        local(503, '', 'NC', `cluster_not_found[${decision.cluster}]`);
        return;
      case 'forward':
        break;
    }
    outcome.route = decision.route.name;
    outcome.cluster = decision.cluster;
    const cluster = decision.cluster;
    const balancer = this.balancer(cluster.name);
    const thresholds = cluster.circuitBreakers;
    const h2Upstream =
      cluster.upstreamProtocol === 'http2' ||
      (cluster.upstreamProtocol === 'downstream' && req.httpVersion === '2.0');
    // HTTP/2 upstreams check `max_requests` when a stream is attached (the cluster's pool, as
    // Envoy): a request waiting for a stream does not count.
    if (!h2Upstream && balancer.activeRequests >= thresholds.maxRequests) {
      this.#overflow(balancer, cluster, 'requests');
      local(503, OVERFLOW_BODY, 'UO', 'upstream_max_requests_overflow', OVERLOADED);
      return;
    }
    balancer.activeRequests++;
    try {
      // gRPC over HTTP/2 streams its request body (client and bidirectional streaming: messages
      // go upstream as they come, the client's half-close too); everything else is buffered,
      // for retries and the body limit.
      const body = isGrpc(req.headers['content-type']) && h2Upstream ? req : await this.#readBody(req);
      if (body === undefined) {
        local(413, 'Payload Too Large', undefined, 'request_payload_too_large');
        return;
      }
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name) && !name.startsWith(':')) headers[name] = value;
      }
      headers.host = decision.host;
      headers['x-forwarded-proto'] ??= 'http';
      headers['x-request-id'] ??= randomUUID();
      outcome.span?.inject(headers);
      const route = decision.route;
      // Most specific first; a less specific level's overwrite wins (Envoy's default order).
      for (const mods of [
        decision.weighted.requestHeaders,
        route.requestHeaders,
        decision.virtualHost.requestHeaders,
      ]) {
        applyMods(headers, mods);
      }
      const table = 'inline' in chain.routes ? chain.routes.inline : config.routes.get(chain.routes.rds);
      if (table !== undefined) applyMods(headers, table.requestHeaders);
      const responseMods = [
        decision.weighted.responseHeaders,
        route.responseHeaders,
        decision.virtualHost.responseHeaders,
      ];
      if (table !== undefined) responseMods.push(table.responseHeaders);
      if (body instanceof Buffer)
        for (const mirror of drawMirrors(decision.action.mirrors, this.#random))
          void sendMirror(
            {
              upstream: this.#o.upstream,
              dns: this.#o.dns,
              balancer: name => this.balancer(name),
              random: this.#random,
              log: this.#log,
            },
            config,
            mirror,
            {
              method: info.method,
              path: decision.path,
              headers: { ...headers },
              body,
              timeoutMs: decision.action.timeoutMs,
              destination: { ip: ctx.destinationIp, port: ctx.destinationPort },
            },
          );
      await this.#forward(
        decision.action,
        cluster,
        balancer,
        config,
        ctx,
        info,
        decision.path,
        headers,
        body,
        responseMods,
        res,
        outcome,
        local,
        {
          h2: req.httpVersion === '2.0',
          te: String(req.headers.te ?? '')
            .toLowerCase()
            .includes('trailers'),
        },
      );
    } finally {
      balancer.activeRequests--;
    }
  }

  async #readBody(req: Req): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > this.#o.maxRequestBodyBytes) return undefined;
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  #hashOf(action: ForwardAction, info: RequestInfo, ctx: TunnelContext): number | undefined {
    for (const p of action.hashPolicy) {
      let key: string | undefined | null;
      if (p.kind === 'header') key = info.headers.get(p.name);
      else if (p.kind === 'query') key = info.query.get(p.name);
      else key = ctx.remoteAddress;
      if (key !== undefined && key !== null) return hash32(key);
    }
    return undefined;
  }

  async #forward(
    action: ForwardAction,
    cluster: ClusterConfig,
    balancer: ClusterBalancer,
    config: WaypointConfig,
    ctx: TunnelContext,
    info: RequestInfo,
    upstreamPath: string,
    headers: Record<string, string | string[]>,
    body: Buffer | Readable,
    responseMods: readonly HeaderMods[],
    res: Res,
    outcome: Outcome,
    local: LocalReply,
    downstream: { readonly h2: boolean; readonly te: boolean },
  ): Promise<void> {
    const endpoints = await clusterEndpoints(cluster, config, this.#o.dns, {
      ip: ctx.destinationIp,
      port: ctx.destinationPort,
    });
    const policy = action.retry;
    const maxAttempts = 1 + (policy?.numRetries ?? 0);
    const grpcRequest = isGrpc(headers['content-type']);
    // A gRPC client's deadline (`grpc-timeout`) is the timeout when the route reads it.
    const timeoutMs = requestTimeoutMs(action, grpcRequest, headerText(headers['grpc-timeout']));
    const routeDeadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
    const routeAbort = new AbortController();
    const routeTimer =
      timeoutMs > 0
        ? setTimeout(() => {
            routeAbort.abort(new Error('route timeout'));
          }, timeoutMs)
        : undefined;
    // The client resets or cancels the stream (or drops the connection) before the response
    // ended: the upstream stream is cancelled too (RST_STREAM CANCEL on HTTP/2).
    const client = { reset: false };
    const onDownstreamClose = (): void => {
      if (res.writableEnded) return;
      client.reset = true;
      outcome.flags.push('DC');
      routeAbort.abort(new Error('downstream reset'));
    };
    res.once('close', onDownstreamClose);
    // A streamed body can be sent once: after the first attempt's stream took it, no retry.
    const streamed = body instanceof Readable ? { started: false } : undefined;
    const tried = new Set<string>();
    const hash = this.#hashOf(action, info, ctx);
    const method = info.method;
    let retried = false;
    try {
      for (let attempt = 1; ; attempt++) {
        const endpoint = balancer.pick(cluster, endpoints, { hash, exclude: tried, random: this.#random });
        if (endpoint === undefined) {
          local(503, 'no healthy upstream', 'UH', 'no_healthy_upstream');
          return;
        }
        tried.add(endpointKey(endpoint));
        outcome.endpoint = endpoint;
        const h2 =
          cluster.upstreamProtocol === 'http2' ||
          (cluster.upstreamProtocol === 'downstream' && downstream.h2);
        const pool = h2 ? undefined : this.#o.upstream.pool(endpoint, cluster.circuitBreakers.maxConnections);
        if (pool !== undefined && pool.stats.queued >= cluster.circuitBreakers.maxPendingRequests) {
          this.#overflow(balancer, cluster, 'pending');
          local(503, OVERFLOW_BODY, 'UO', 'upstream_max_pending_requests_overflow', OVERLOADED);
          return;
        }
        // Every connection busy and `max_connections` reached: the request waits for one, and
        // Envoy counts the connection it could not open (`upstream_cx_overflow`).
        if (
          pool !== undefined &&
          pool.stats.free === 0 &&
          pool.stats.connected >= cluster.circuitBreakers.maxConnections
        ) {
          balancer.overflows.connections++;
          this.#o.metrics.overflow(cluster.name, 'connections');
        }
        const tryAbort = new AbortController();
        const onRouteAbort = (): void => {
          tryAbort.abort(routeAbort.signal.reason);
        };
        routeAbort.signal.addEventListener('abort', onRouteAbort, { once: true });
        const perTry = policy?.perTryTimeoutMs ?? 0;
        const tryTimer =
          perTry > 0
            ? setTimeout(() => {
                tryAbort.abort(new Error('per-try timeout'));
              }, perTry)
            : undefined;
        const attemptStarted = performance.now();
        const canRetry = (): boolean => {
          if (attempt >= maxAttempts || streamed?.started === true) return false;
          if (balancer.activeRetries < cluster.circuitBreakers.maxRetries) return true;
          // `max_retries` reached: the retry is not made (`upstream_rq_retry_overflow`).
          this.#overflow(balancer, cluster, 'retries');
          return false;
        };
        balancer.started(endpoint);
        let response: UpstreamResponse;
        const requestBody =
          body instanceof Readable || body.length > 0 || !['GET', 'HEAD'].includes(method) ? body : null;
        let overflow: H2Overflow | undefined;
        try {
          if (pool === undefined) {
            // A stream of the cluster's HTTP/2 pool, or an overflow of its circuit breakers.
            const acquired = await this.#h2Pool(cluster).acquire(
              endpoint,
              h2Limits(cluster),
              tryAbort.signal,
            );
            if (acquired.kind === 'overflow') {
              overflow = acquired;
              throw new Error(`circuit breaker overflow (${acquired.limit})`);
            }
            response = await h2Request(
              acquired.session,
              h2Headers(method, upstreamPath, headers, downstream.te),
              requestBody,
              tryAbort.signal,
              acquired.release,
              () => {
                if (streamed !== undefined) streamed.started = true;
              },
            );
          } else
            response = fromUndici(
              await pool.request({
                path: upstreamPath,
                method,
                headers,
                body: requestBody,
                signal: tryAbort.signal,
                headersTimeout: 0,
                bodyTimeout: 0,
              }),
            );
        } catch (err) {
          balancer.finished(endpoint);
          clearTimeout(tryTimer);
          routeAbort.signal.removeEventListener('abort', onRouteAbort);
          if (overflow !== undefined) {
            // Envoy's pool overflow: no retry, 503 `UO`.
            this.#overflow(balancer, cluster, overflow.limit);
            local(
              503,
              OVERFLOW_BODY,
              'UO',
              overflow.limit === 'requests'
                ? 'upstream_max_requests_overflow'
                : 'upstream_max_pending_requests_overflow',
              OVERLOADED,
            );
            return;
          }
          if (client.reset) {
            // Nobody to answer: Envoy's `DC` (downstream connection termination), code 0.
            outcome.details = 'downstream_remote_disconnect';
            return;
          }
          this.#recordOutlier(balancer, cluster, endpoint, endpoints, { kind: 'local-failure' });
          if (routeAbort.signal.aborted) {
            local(504, 'upstream request timeout', 'UT', 'upstream_response_timeout');
            return;
          }
          const kind: FailureKind = tryAbort.signal.aborted ? 'per-try-timeout' : failureKind(err);
          this.#log.debug(
            { err: errorMessage(err), kind, endpoint: endpointKey(endpoint), attempt },
            'upstream attempt failed',
          );
          if (policy !== undefined && retriableFailure(policy, kind) && canRetry()) {
            retried = true;
            this.#o.metrics.retry(cluster.name);
            balancer.activeRetries++;
            try {
              await this.#backoff(policy, attempt, routeDeadline);
            } finally {
              balancer.activeRetries--;
            }
            continue;
          }
          const tlsError = upstreamTlsError(err);
          if (tlsError !== undefined) this.#o.metrics.tlsConnectionError(cluster.name);
          const flag = kind === 'connect' ? 'UF' : kind === 'reset' ? 'UC' : 'UT';
          outcome.flags.push(flag);
          if (retried) outcome.flags.push('URX');
          if (kind === 'per-try-timeout')
            local(504, 'upstream request timeout', undefined, 'upstream_per_try_timeout');
          else {
            const text = kind === 'connect' ? CONNECT_FAILURE_BODY : RESET_BODY;
            local(
              503,
              text,
              undefined,
              tlsError === undefined
                ? `upstream_reset_before_response_started{${kind}}`
                : `upstream_reset_before_response_started{remote_connection_failure,TLS_error:${tlsError.reason}}`,
            );
          }
          return;
        }
        clearTimeout(tryTimer);
        this.#recordOutlier(balancer, cluster, endpoint, endpoints, {
          kind: 'response',
          status: response.statusCode,
        });
        if (policy !== undefined && retriableStatus(policy, response.statusCode) && canRetry()) {
          balancer.finished(endpoint);
          routeAbort.signal.removeEventListener('abort', onRouteAbort);
          await response.discard();
          retried = true;
          this.#o.metrics.retry(cluster.name);
          balancer.activeRetries++;
          try {
            await this.#backoff(policy, attempt, routeDeadline);
          } finally {
            balancer.activeRetries--;
          }
          continue;
        }
        if (policy !== undefined && retriableStatus(policy, response.statusCode) && retried)
          outcome.flags.push('URX');
        // The response starts: no more retries from here on.
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
        }
        for (const mods of responseMods) applyMods(out, mods);
        out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - attemptStarted));
        outcome.status = response.statusCode;
        const grpc = isGrpc(response.headers['content-type']);
        if (grpc) outcome.grpcStatus = headerText(response.headers['grpc-status']);
        response.onTrailers(trailers => {
          if (grpc) outcome.grpcStatus = headerText(trailers['grpc-status']) ?? outcome.grpcStatus;
          const pass: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(trailers)) {
            if (!HOP_BY_HOP.has(name)) pass[name] = value;
          }
          res.addTrailers(pass);
        });
        if (response.endAfterHeaders && 'stream' in res) {
          // Trailers-only (gRPC errors): one HEADERS frame with END_STREAM, as the backend sent it.
          try {
            res.stream.respond({ ':status': response.statusCode, ...out }, { endStream: true });
          } catch (err) {
            this.#log.debug({ err: errorMessage(err) }, 'downstream stream closed before the response');
            abort(res);
          } finally {
            balancer.finished(endpoint);
            routeAbort.signal.removeEventListener('abort', onRouteAbort);
          }
          return;
        }
        writeHead(res, response.statusCode, out);
        response.body.on('data', (chunk: Buffer) => {
          outcome.responseBytes += chunk.length;
          outcome.responseMessages?.write(chunk);
        });
        try {
          await relayBody(response.body, res, tryAbort.signal);
          // An HTTP/2 stream the upstream reset ends its body like a finished one: the client
          // gets the reset (with its code), not a clean end without trailers.
          const code = await response.endedByReset();
          if (code !== undefined && 'stream' in res && !res.stream.destroyed) res.stream.close(code);
          else res.end();
        } catch (err) {
          if (client.reset) outcome.details = 'downstream_remote_disconnect';
          else if (routeAbort.signal.aborted) outcome.flags.push('UT');
          else
            this.#log.debug(
              { err: errorMessage(err), rstCode: response.resetCode() },
              'response stream ended early',
            );
          // An upstream RST_STREAM reaches the client with its code (CANCEL stays CANCEL, so a
          // gRPC client sees CANCELLED); anything else resets the downstream stream.
          const code = routeAbort.signal.aborted ? undefined : response.resetCode();
          if (!client.reset && code !== undefined && 'stream' in res && !res.stream.destroyed)
            res.stream.close(code);
          else abort(res);
        } finally {
          balancer.finished(endpoint);
          routeAbort.signal.removeEventListener('abort', onRouteAbort);
        }
        return;
      }
    } finally {
      clearTimeout(routeTimer);
      res.off('close', onDownstreamClose);
    }
  }

  /** The cluster's HTTP/2 pool (created on first use). */
  #h2Pool(cluster: ClusterConfig): H2ClusterPool {
    let pool = this.#h2Pools.get(cluster.name);
    if (pool === undefined) {
      const balancer = this.balancer(cluster.name);
      pool = new H2ClusterPool({
        dial: endpoint => this.#o.upstream.openH2Session(endpoint),
        onConnectionOverflow: () => {
          balancer.overflows.connections++;
          this.#o.metrics.overflow(cluster.name, 'connections');
        },
      });
      this.#h2Pools.set(cluster.name, pool);
    }
    return pool;
  }

  /** One circuit-breaker overflow; `max_requests` and `max_pending_requests` count as pending (Envoy). */
  #overflow(
    balancer: ClusterBalancer,
    cluster: ClusterConfig,
    which: 'requests' | 'pending' | 'retries',
  ): void {
    balancer.overflows[which]++;
    this.#o.metrics.overflow(cluster.name, which === 'retries' ? 'retries' : 'pending');
  }

  /** Outlier detection: counts the attempt's result, and logs and counts an ejection. */
  #recordOutlier(
    balancer: ClusterBalancer,
    cluster: ClusterConfig,
    endpoint: Endpoint,
    endpoints: readonly Endpoint[],
    result: AttemptResult,
  ): void {
    const od = cluster.outlierDetection;
    if (od === undefined) return;
    if (!balancer.record(endpoint, result, od, endpoints, performance.now())) return;
    this.#o.metrics.ejection(cluster.name);
    this.#log.info(
      {
        cluster: cluster.name,
        host: endpointKey(endpoint),
        result: result.kind === 'response' ? result.status : 'local_failure',
        ejectedHosts: balancer.ejectedCount(endpoints, performance.now()),
        hosts: endpoints.length,
      },
      'outlier detection ejected a host',
    );
  }

  async #backoff(policy: RetryPolicy, attempt: number, deadline: number): Promise<void> {
    const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempt - 1));
    const wait = Math.min(this.#random() * ceiling, Math.max(0, deadline - performance.now()));
    if (wait <= 0) return;
    await new Promise<void>(resolve => setTimeout(resolve, wait));
  }

  #complete(
    req: Req,
    ctx: TunnelContext | undefined,
    o: Outcome,
    requestBytes: number,
    requestMessages: number | undefined,
    durationMs: number,
  ): void {
    const w = o.endpoint?.workload;
    const host = o.cluster?.serviceHost ?? o.chainService;
    // A gateway reports as upstream's gateways do: `reporter="source"`, itself the source workload.
    const labels = trafficLabels({
      ...endpointTrafficLabels({
        gateway: ctx?.edge?.source,
        baggage: ctx?.baggage ?? {},
        peerIdentity: ctx?.peerIdentity,
        host,
        endpoint: o.endpoint,
      }),
      // Istio's stats: `grpc` for gRPC requests (by content type), else `http`.
      request_protocol: isGrpc(req.headers['content-type']) ? 'grpc' : 'http',
      response_flags: o.flags.length === 0 ? '-' : o.flags.join(','),
    });
    const status = o.status === 0 ? 0 : o.status;
    o.span?.end({
      status,
      responseFlags: labels.response_flags,
      upstreamCluster: o.cluster?.name,
      upstreamAddress: o.endpoint === undefined ? undefined : endpointKey(o.endpoint),
      requestSize: requestBytes,
      responseSize: o.responseBytes,
      destination: {
        workload: w?.name,
        namespace: w?.namespace,
        principal: o.endpoint?.identity,
        service: host,
      },
    });
    const record: AccessLogRecord | undefined =
      o.accessLog === undefined && o.stats === undefined
        ? undefined
        : {
            startTime: new Date(Date.now() - durationMs),
            method: req.method ?? '',
            path: req.url ?? '',
            protocol: `HTTP/${req.httpVersion}`,
            requestHeaders: req.headers,
            responseHeaders: o.responseHeaders ?? {},
            responseCode: status,
            responseFlags: labels.response_flags,
            responseCodeDetails: o.details === '' ? 'via_upstream' : o.details,
            bytesReceived: requestBytes,
            bytesSent: o.responseBytes,
            durationMs,
            upstreamHost: o.endpoint === undefined ? undefined : endpointKey(o.endpoint),
            upstreamCluster: o.cluster?.name,
            downstreamLocalAddress:
              ctx === undefined ? undefined : `${ctx.destinationIp}:${ctx.destinationPort}`,
            downstreamRemoteAddress: ctx?.remoteAddress,
            downstreamPeer: ctx?.edge === undefined ? ctx?.peerIdentity : undefined,
            requestedServerName: undefined,
            routeName: o.route,
            scheme: ctx?.edge?.scheme ?? 'http',
            destinationPort: ctx?.destinationPort,
            dynamicMetadata: o.metadata ?? new Map(),
          };
    this.#o.metrics.request(
      {
        labels,
        responseCode: status,
        grpcStatus: o.grpcStatus,
        durationMs,
        requestBytes,
        responseBytes: o.responseBytes,
        messages:
          requestMessages === undefined
            ? undefined
            : { request: requestMessages, response: o.responseMessages?.count ?? 0 },
      },
      o.stats === undefined || record === undefined
        ? undefined
        : { stats: o.stats, lookup: attributesOf(record) },
    );
    if (o.accessLog !== undefined && record !== undefined) {
      // The chain's `access_log` replaces the built-in access log (Telemetry accessLogging).
      this.#accessLogWriter.write(o.accessLog, record);
      return;
    }
    this.#o.accessLog.info(
      {
        method: req.method,
        path: req.url,
        authority: req.headers.host,
        protocol: `HTTP/${req.httpVersion}`,
        response_code: status,
        response_flags: labels.response_flags,
        response_code_details: o.details === '' ? 'via_upstream' : o.details,
        route_name: o.route,
        upstream_cluster: o.cluster?.name,
        upstream_host: o.endpoint === undefined ? undefined : endpointKey(o.endpoint),
        downstream_peer: ctx?.edge === undefined ? ctx?.peerIdentity : undefined,
        listener: ctx?.edge?.listener,
        downstream_remote_address: ctx?.remoteAddress,
        bytes_received: requestBytes,
        bytes_sent: o.responseBytes,
        duration_ms: Math.round(durationMs),
        request_id: req.headers['x-request-id'],
        // AUDIT policies that matched: Envoy's `%DYNAMIC_METADATA(envoy.common:access_log_hint)%`.
        ...(o.audit === undefined ? {} : { access_log_hint: true, rbac_audit_policies: o.audit }),
      },
      'request',
    );
  }
}
