/**
 * The waypoint's Istio standard metrics (`reporter="waypoint"`) on the app's prom-client
 * registry: `istio_requests_total`, `istio_request_duration_milliseconds` (Istio's buckets),
 * `istio_request_bytes` and `istio_response_bytes`, and for gRPC `istio_request_messages_total` and
 * `istio_response_messages_total` (one per length-prefixed message), with the standard traffic labels in
 * upstream's order plus `response_code` and `grpc_response_status`; Envoy's per-cluster retry
 * counter `envoy_cluster_upstream_rq_retry` and outlier ejection counter
 * `envoy_cluster_outlier_detection_ejections_enforced_total`; the circuit breakers' overflow
 * counters `envoy_cluster_upstream_rq_pending_overflow` (`max_pending_requests` and
 * `max_requests`, as Envoy counts both there), `envoy_cluster_upstream_cx_overflow`
 * (`max_connections`) and `envoy_cluster_upstream_rq_retry_overflow` (`max_retries`); the local
 * rate limit's `envoy_<stat_prefix>_http_local_rate_limit_{enabled,ok,rate_limited,enforced}`
 * (Envoy's `<stat_prefix>.http_local_rate_limit.*` as its Prometheus output names them); and the
 * xDS client's counters.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { MetricName, REQUEST_DURATION_BUCKETS_MS, TRAFFIC_LABELS } from '@ambient-mesh/mesh-api';
import type { TrafficLabels } from '@ambient-mesh/mesh-api';

export const REQUEST_LABELS = [...TRAFFIC_LABELS, 'response_code', 'grpc_response_status'] as const;
type RequestLabel = (typeof REQUEST_LABELS)[number];

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

export class WaypointMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<RequestLabel>;
  readonly #duration: Histogram<RequestLabel>;
  readonly #requestBytes: Histogram<RequestLabel>;
  readonly #responseBytes: Histogram<RequestLabel>;
  readonly #requestMessages: Counter<RequestLabel>;
  readonly #responseMessages: Counter<RequestLabel>;
  readonly #retries: Counter<'cluster_name'>;
  readonly #ejections: Counter<'cluster_name'>;
  readonly #overflows: Record<Overflow, Counter<'cluster_name'>>;
  readonly #rateLimit = new Map<string, Counter>();
  readonly #xdsMessages: Counter<'url'>;
  readonly #xdsTerminations: Counter<'reason'>;

  constructor(registry: Registry) {
    this.registry = registry;
    const labelNames = [...REQUEST_LABELS];
    this.#requests = new Counter({
      name: MetricName.requestsTotal,
      help: 'Requests handled by the waypoint.',
      labelNames,
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: MetricName.requestDuration,
      help: 'Request duration, from the first request byte to the last response byte.',
      labelNames,
      buckets: [...REQUEST_DURATION_BUCKETS_MS],
      registers: [registry],
    });
    this.#requestBytes = new Histogram({
      name: MetricName.requestBytes,
      help: 'Request sizes (headers and body).',
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.#responseBytes = new Histogram({
      name: MetricName.responseBytes,
      help: 'Response sizes (headers and body).',
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.#requestMessages = new Counter({
      name: MetricName.requestMessages,
      help: 'gRPC messages received from clients (length-prefixed messages in request bodies).',
      labelNames,
      registers: [registry],
    });
    this.#responseMessages = new Counter({
      name: MetricName.responseMessages,
      help: 'gRPC messages sent to clients (length-prefixed messages in response bodies).',
      labelNames,
      registers: [registry],
    });
    this.#retries = new Counter({
      name: 'envoy_cluster_upstream_rq_retry',
      help: 'Upstream request retries, by cluster (as Envoy names it).',
      labelNames: ['cluster_name'],
      registers: [registry],
    });
    this.#ejections = new Counter({
      name: 'envoy_cluster_outlier_detection_ejections_enforced_total',
      help: 'Hosts ejected by outlier detection, by cluster (as Envoy names it).',
      labelNames: ['cluster_name'],
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

  request(r: CompletedRequest): void {
    const labels: Record<RequestLabel, string> = {
      ...r.labels,
      response_code: String(r.responseCode),
      grpc_response_status: r.grpcStatus ?? '',
    };
    this.#requests.inc(labels);
    this.#duration.observe(labels, r.durationMs);
    this.#requestBytes.observe(labels, r.requestBytes);
    this.#responseBytes.observe(labels, r.responseBytes);
    if (r.messages !== undefined) {
      this.#requestMessages.inc(labels, r.messages.request);
      this.#responseMessages.inc(labels, r.messages.response);
    }
  }

  /** One retry of a request on `cluster`. */
  retry(cluster: string): void {
    this.#retries.inc({ cluster_name: cluster });
  }

  /** One host of `cluster` ejected by outlier detection. */
  ejection(cluster: string): void {
    this.#ejections.inc({ cluster_name: cluster });
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
