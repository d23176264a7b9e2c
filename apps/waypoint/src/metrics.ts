/**
 * The waypoint's Istio standard metrics (`reporter="waypoint"`) on the app's prom-client
 * registry: `istio_requests_total`, `istio_request_duration_milliseconds` (Istio's buckets),
 * `istio_request_bytes` and `istio_response_bytes`, and for gRPC `istio_request_messages_total` and
 * `istio_response_messages_total` (one per length-prefixed message), with the standard traffic labels in
 * upstream's order plus `response_code` and `grpc_response_status`; Envoy's per-cluster retry
 * counter `envoy_cluster_upstream_rq_retry` and outlier ejection counter
 * `envoy_cluster_outlier_detection_ejections_enforced_total`; and the xDS client's counters.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { MetricName, REQUEST_DURATION_BUCKETS_MS, TRAFFIC_LABELS } from '@ambient-mesh/mesh-api';
import type { TrafficLabels } from '@ambient-mesh/mesh-api';

export const REQUEST_LABELS = [...TRAFFIC_LABELS, 'response_code', 'grpc_response_status'] as const;
type RequestLabel = (typeof REQUEST_LABELS)[number];

/** Istio's size buckets (bytes) for `istio_request_bytes` / `istio_response_bytes`. */
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

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
  readonly #tlsErrors: Counter<'cluster_name'>;
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

  /** One TLS origination failure to an endpoint of `cluster`. */
  tlsConnectionError(cluster: string): void {
    this.#tlsErrors.inc({ cluster_name: cluster });
  }

  /** One host of `cluster` ejected by outlier detection. */
  ejection(cluster: string): void {
    this.#ejections.inc({ cluster_name: cluster });
  }

  xdsMessage(typeUrl: string): void {
    this.#xdsMessages.inc({ url: typeUrl });
  }

  xdsTerminated(reason: string): void {
    this.#xdsTerminations.inc({ reason });
  }
}
