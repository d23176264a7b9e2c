/**
 * The waypoint's Istio standard metrics (`reporter="waypoint"`) on the app's prom-client
 * registry: `istio_requests_total`, `istio_request_duration_milliseconds` (Istio's buckets),
 * `istio_request_bytes` and `istio_response_bytes`, and for gRPC `istio_request_messages_total` and
 * `istio_response_messages_total` (one per length-prefixed message), with the standard traffic labels in
 * upstream's order plus `response_code` and `grpc_response_status`; for connections of TCP filter
 * chains `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`,
 * `istio_tcp_received_bytes_total` and `istio_tcp_sent_bytes_total` with the standard traffic
 * labels (ztunnel's set and order; see `proxy/tcp-stats.ts`); Envoy's per-cluster retry
 * counter `envoy_cluster_upstream_rq_retry` and outlier ejection counter
 * `envoy_cluster_outlier_detection_ejections_enforced_total`; the circuit breakers' overflow
 * counters `envoy_cluster_upstream_rq_pending_overflow` (`max_pending_requests` and
 * `max_requests`, as Envoy counts both there), `envoy_cluster_upstream_cx_overflow`
 * (`max_connections`) and `envoy_cluster_upstream_rq_retry_overflow` (`max_retries`); the local
 * rate limit's `envoy_<stat_prefix>_http_local_rate_limit_{enabled,ok,rate_limited,enforced}`
 * (Envoy's `<stat_prefix>.http_local_rate_limit.*` as its Prometheus output names them); the RBAC
 * filter's `envoy_http_rbac_logged` (requests AUDIT policies matched); and the xDS client's counters.
 *
 * Telemetry metric overrides (the `istio.stats` filter's config) apply per request, and per TCP
 * connection when it opens: a dropped metric is unregistered (no longer exported), removed tags
 * leave its label set, upserted tags join it (`unknown` when the request lacks the attribute). A
 * label set that changes registers the metric anew (its series restart), as a changed stats
 * config does in Envoy.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import {
  MetricName,
  REQUEST_DURATION_BUCKETS_MS,
  TRAFFIC_LABELS,
  evaluateTelemetryValue,
} from '@ambient-mesh/mesh-api';
import type { AttributeLookup, TrafficLabels } from '@ambient-mesh/mesh-api';
import type { StatsConfig } from './config/types.ts';

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export const REQUEST_LABELS = [...TRAFFIC_LABELS, 'response_code', 'grpc_response_status'] as const;

/** Istio's size buckets (bytes) for `istio_request_bytes` / `istio_response_bytes`. */
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

/** The circuit breaker that overflowed: pending/requests, connections, retries. */
export type Overflow = 'pending' | 'connections' | 'retries';

export interface CompletedRequest {
  readonly labels: TrafficLabels;
  readonly responseCode: number;
  readonly grpcStatus: string | undefined;
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** gRPC messages in the request and the response body; undefined for other requests. */
  readonly messages?: { readonly request: number; readonly response: number } | undefined;
}

/** A standard metric: its Prometheus name, kind, help and labels (by the stats filter's name for it). */
interface RequestMetricDef {
  readonly name: string;
  readonly help: string;
  readonly buckets?: readonly number[];
  /** The labels it has without overrides (default {@link REQUEST_LABELS}). */
  readonly labels?: readonly string[];
}

const REQUEST_METRICS: Readonly<Record<string, RequestMetricDef>> = {
  requests_total: { name: MetricName.requestsTotal, help: 'Requests handled by the waypoint.' },
  request_duration_milliseconds: {
    name: MetricName.requestDuration,
    help: 'Request duration, from the first request byte to the last response byte.',
    buckets: REQUEST_DURATION_BUCKETS_MS,
  },
  request_bytes: {
    name: MetricName.requestBytes,
    help: 'Request sizes (headers and body).',
    buckets: SIZE_BUCKETS,
  },
  response_bytes: {
    name: MetricName.responseBytes,
    help: 'Response sizes (headers and body).',
    buckets: SIZE_BUCKETS,
  },
  request_messages_total: {
    name: MetricName.requestMessages,
    help: 'gRPC messages received from clients (length-prefixed messages in request bodies).',
  },
  response_messages_total: {
    name: MetricName.responseMessages,
    help: 'gRPC messages sent to clients (length-prefixed messages in response bodies).',
  },
  tcp_connections_opened_total: {
    name: MetricName.tcpConnectionsOpened,
    help: 'The total number of TCP connections opened',
    labels: TRAFFIC_LABELS,
  },
  tcp_connections_closed_total: {
    name: MetricName.tcpConnectionsClosed,
    help: 'The total number of TCP connections closed',
    labels: TRAFFIC_LABELS,
  },
  tcp_received_bytes_total: {
    name: MetricName.tcpReceivedBytes,
    help: 'The size of total bytes received during request in case of a TCP connection',
    labels: TRAFFIC_LABELS,
  },
  tcp_sent_bytes_total: {
    name: MetricName.tcpSentBytes,
    help: 'The size of total bytes sent during response in case of TCP connection',
    labels: TRAFFIC_LABELS,
  },
};

/**
 * One TCP connection's metrics: opened is counted on creation; bytes are counted as they flow
 * (`received` from the client, `sent` to it, as Envoy's stats filter counts them downstream);
 * `closed` once. The label sets (after overrides) are fixed for the connection's life.
 */
export interface TcpConnectionMetrics {
  received(bytes: number): void;
  sent(bytes: number): void;
  closed(): void;
}

/** Telemetry metric overrides as the request path applies them (the `istio.stats` filter's). */
export interface MetricOverrides {
  readonly stats: StatsConfig;
  /** Resolves the value expressions of upserted tags for this request. */
  readonly lookup: AttributeLookup;
}

export class WaypointMetrics {
  readonly registry: Registry;
  /** The request metrics by stats name, with the label names they were registered with. */
  readonly #request = new Map<
    string,
    { readonly labelNames: readonly string[]; readonly metric: Counter | Histogram }
  >();
  readonly #retries: Counter<'cluster_name'>;
  readonly #ejections: Counter<'cluster_name'>;
  readonly #rbacLogged: Counter<'envoy_http_conn_manager_prefix'>;
  readonly #tlsErrors: Counter<'cluster_name'>;
  readonly #overflows: Record<Overflow, Counter<'cluster_name'>>;
  readonly #rateLimit = new Map<string, Counter>();
  readonly #xdsMessages: Counter<'url'>;
  readonly #xdsTerminations: Counter<'reason'>;

  constructor(registry: Registry) {
    this.registry = registry;
    for (const [stat, def] of Object.entries(REQUEST_METRICS))
      this.#metric(stat, def.labels ?? REQUEST_LABELS);
    this.#retries = new Counter({
      name: 'envoy_cluster_upstream_rq_retry',
      help: 'Upstream request retries, by cluster (as Envoy names it).',
      labelNames: ['cluster_name'],
      registers: [registry],
    });
    this.#tlsErrors = new Counter({
      name: 'envoy_cluster_ssl_connection_error',
      help: 'TLS origination failures (handshake, verification, SAN match), by cluster (as Envoy names it).',
      labelNames: ['cluster_name'],
      registers: [registry],
    });
    this.#ejections = new Counter({
      name: 'envoy_cluster_outlier_detection_ejections_enforced_total',
      help: 'Hosts ejected by outlier detection, by cluster (as Envoy names it).',
      labelNames: ['cluster_name'],
      registers: [registry],
    });
    this.#rbacLogged = new Counter({
      name: 'envoy_http_rbac_logged',
      help: 'Requests an RBAC LOG rule (an AUDIT AuthorizationPolicy) matched, by HTTP connection manager (as Envoy names it).',
      labelNames: ['envoy_http_conn_manager_prefix'],
      registers: [registry],
    });
    const overflow = (name: string, help: string): Counter<'cluster_name'> =>
      new Counter({ name, help, labelNames: ['cluster_name'], registers: [registry] });
    this.#overflows = {
      pending: overflow(
        'envoy_cluster_upstream_rq_pending_overflow',
        'Requests answered 503 UO by the max_pending_requests or max_requests circuit breaker, by cluster.',
      ),
      connections: overflow(
        'envoy_cluster_upstream_cx_overflow',
        'Times the max_connections circuit breaker kept a new upstream connection from opening, by cluster.',
      ),
      retries: overflow(
        'envoy_cluster_upstream_rq_retry_overflow',
        'Retries not attempted because of the max_retries circuit breaker, by cluster.',
      ),
    };
    this.#xdsMessages = new Counter({
      name: MetricName.xdsMessages,
      help: 'xDS responses received, by type URL.',
      labelNames: ['url'],
      registers: [registry],
    });
    this.#xdsTerminations = new Counter({
      name: MetricName.xdsConnectionTerminations,
      help: 'xDS stream terminations, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  /**
   * The request metric `stat` registered with `labelNames`; registered anew (its series restart)
   * when overrides change its labels.
   */
  #metric(stat: string, labelNames: readonly string[]): Counter | Histogram {
    const cur = this.#request.get(stat);
    if (cur !== undefined && sameNames(cur.labelNames, labelNames)) return cur.metric;
    const def = REQUEST_METRICS[stat]!;
    if (cur !== undefined) this.registry.removeSingleMetric(def.name);
    const opts = { name: def.name, help: def.help, labelNames: [...labelNames], registers: [this.registry] };
    const metric =
      def.buckets === undefined ? new Counter(opts) : new Histogram({ ...opts, buckets: [...def.buckets] });
    this.#request.set(stat, { labelNames: [...labelNames], metric });
    return metric;
  }

  /** A request metric a Telemetry disabled: no longer exported. */
  #drop(stat: string): void {
    const cur = this.#request.get(stat);
    if (cur === undefined) return;
    this.registry.removeSingleMetric(REQUEST_METRICS[stat]!.name);
    this.#request.delete(stat);
  }

  /** The labels of metric `stat` after overrides, or undefined when a Telemetry dropped it. */
  #resolve(
    stat: string,
    base: Readonly<Record<string, string>>,
    o: MetricOverrides | undefined,
  ): Readonly<Record<string, string>> | undefined {
    const override = o?.stats.metrics.get(stat);
    if (override?.drop === true) {
      this.#drop(stat);
      return undefined;
    }
    let labels: Record<string, string> = base;
    if (override !== undefined && (override.tagsToRemove.length > 0 || override.dimensions.size > 0)) {
      labels = { ...base };
      for (const t of override.tagsToRemove) Reflect.deleteProperty(labels, t);
      for (const [tag, v] of override.dimensions) {
        const x = evaluateTelemetryValue(v, o!.lookup);
        // Istio's value for an attribute the request does not have.
        labels[tag] = x === undefined || x === '' ? 'unknown' : String(x);
      }
    }
    return labels;
  }

  #add(stat: string, labels: Readonly<Record<string, string>>, value: number): void {
    const metric = this.#metric(stat, Object.keys(labels));
    if (metric instanceof Histogram) metric.observe(labels, value);
    else metric.inc(labels, value);
  }

  #record(
    stat: string,
    base: Readonly<Record<string, string>>,
    value: number,
    o: MetricOverrides | undefined,
  ): void {
    const labels = this.#resolve(stat, base, o);
    if (labels !== undefined) this.#add(stat, labels, value);
  }

  request(r: CompletedRequest, overrides?: MetricOverrides): void {
    const labels: Record<string, string> = {
      ...r.labels,
      response_code: String(r.responseCode),
      grpc_response_status: r.grpcStatus ?? '',
    };
    this.#record('requests_total', labels, 1, overrides);
    this.#record('request_duration_milliseconds', labels, r.durationMs, overrides);
    this.#record('request_bytes', labels, r.requestBytes, overrides);
    this.#record('response_bytes', labels, r.responseBytes, overrides);
    if (r.messages !== undefined) {
      this.#record('request_messages_total', labels, r.messages.request, overrides);
      this.#record('response_messages_total', labels, r.messages.response, overrides);
    }
  }

  /**
   * A TCP connection of a TCP filter chain (`request_protocol="tcp"` in `labels`): counts it
   * opened now and returns its byte and close counters.
   */
  tcpConnection(labels: TrafficLabels, overrides?: MetricOverrides): TcpConnectionMetrics {
    const resolved = (stat: string) => this.#resolve(stat, labels, overrides);
    const opened = resolved('tcp_connections_opened_total');
    const received = resolved('tcp_received_bytes_total');
    const sent = resolved('tcp_sent_bytes_total');
    const closed = resolved('tcp_connections_closed_total');
    if (opened !== undefined) this.#add('tcp_connections_opened_total', opened, 1);
    // Zero-valued series exist from the start, as the connection's other counters do in Envoy.
    if (received !== undefined) this.#add('tcp_received_bytes_total', received, 0);
    if (sent !== undefined) this.#add('tcp_sent_bytes_total', sent, 0);
    let done = false;
    return {
      received: n => {
        if (received !== undefined && n > 0) this.#add('tcp_received_bytes_total', received, n);
      },
      sent: n => {
        if (sent !== undefined && n > 0) this.#add('tcp_sent_bytes_total', sent, n);
      },
      closed: () => {
        if (done) return;
        done = true;
        if (closed !== undefined) this.#add('tcp_connections_closed_total', closed, 1);
      },
    };
  }

  /** One retry of a request on `cluster`. */
  retry(cluster: string): void {
    this.#retries.inc({ cluster_name: cluster });
  }

  /** One TLS origination failure to an endpoint of `cluster`. */
  tlsConnectionError(cluster: string): void {
    this.#tlsErrors.inc({ cluster_name: cluster });
  }

  /** One host of `cluster` ejected by outlier detection. */
  ejection(cluster: string): void {
    this.#ejections.inc({ cluster_name: cluster });
  }

  /** One request an RBAC LOG rule matched, on the chain with this stat prefix. */
  rbacLogged(statPrefix: string): void {
    this.#rbacLogged.inc({ envoy_http_conn_manager_prefix: statPrefix });
  }

  /** One circuit-breaker overflow on `cluster`. */
  overflow(cluster: string, which: Overflow): void {
    this.#overflows[which].inc({ cluster_name: cluster });
  }

  /** One count of the local rate limit's `stat` for the config with `statPrefix`. */
  localRateLimit(statPrefix: string, stat: 'enabled' | 'ok' | 'rate_limited' | 'enforced'): void {
    const name = `envoy_${statPrefix}_http_local_rate_limit_${stat}`.replace(/[^a-zA-Z0-9_:]/g, '_');
    let counter = this.#rateLimit.get(name);
    if (counter === undefined) {
      counter = new Counter({
        name,
        help: `Local rate limit: ${statPrefix}.http_local_rate_limit.${stat} (as Envoy names it).`,
        registers: [this.registry],
      });
      this.#rateLimit.set(name, counter);
    }
    counter.inc();
  }

  xdsMessage(typeUrl: string): void {
    this.#xdsMessages.inc({ url: typeUrl });
  }

  xdsTerminated(reason: string): void {
    this.#xdsTerminations.inc({ reason });
  }
}
