/**
 * ztunnel's Prometheus metrics (§6.2), on a private prom-client registry: exact upstream names,
 * and the traffic labels in upstream's order with `unknown` for missing values.
 *
 * The DNS metrics (`istio_dns_*`, `istio_on_demand_dns_total`) are not registered: the DNS proxy
 * is deferred.
 */
import { Counter, Gauge, Registry } from 'prom-client';

/** The Istio release whose wire protocols this implementation follows (`istio_build` tag). */
export const ISTIO_COMPAT_VERSION = '1.27.0';

export const TRAFFIC_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
] as const;

export type TrafficLabelName = (typeof TRAFFIC_LABELS)[number];
export type TrafficLabels = Readonly<Record<TrafficLabelName, string>>;
export type Reporter = 'source' | 'destination';
export type ResponseFlags = '-' | 'DENY' | 'CONNECT';

/** Fills every traffic label, `unknown` where the caller has no value (empty counts as missing). */
export function trafficLabels(partial: Partial<Record<TrafficLabelName, string | undefined>>): TrafficLabels {
  const out = {} as Record<TrafficLabelName, string>;
  for (const name of TRAFFIC_LABELS) {
    const value = partial[name];
    out[name] = value === undefined || value === '' ? 'unknown' : value;
  }
  out.request_protocol = 'tcp';
  if (out.response_flags === 'unknown') out.response_flags = '-';
  return out;
}

export interface WorkloadManagerGauges {
  readonly activeCount: number;
  readonly pendingCount: number;
}

export class ZtunnelMetrics {
  readonly registry = new Registry();
  readonly #opened: Counter<TrafficLabelName>;
  readonly #closed: Counter<TrafficLabelName>;
  readonly #received: Counter<TrafficLabelName>;
  readonly #sent: Counter<TrafficLabelName>;
  readonly #xdsTerminations: Counter<'reason'>;
  readonly #xdsMessages: Counter<'url'>;
  readonly #xdsBytes: Counter<'url'>;
  readonly #proxiesStarted: Counter;
  readonly #proxiesStopped: Counter;
  #workloadManager: WorkloadManagerGauges | undefined;

  constructor() {
    const registers = [this.registry];
    const traffic = (name: string, help: string): Counter<TrafficLabelName> =>
      new Counter({ name, help, labelNames: TRAFFIC_LABELS, registers });
    this.#opened = traffic(
      'istio_tcp_connections_opened_total',
      'The total number of TCP connections opened',
    );
    this.#closed = traffic(
      'istio_tcp_connections_closed_total',
      'The total number of TCP connections closed',
    );
    this.#received = traffic(
      'istio_tcp_received_bytes_total',
      'The size of total bytes received during request in case of a TCP connection',
    );
    this.#sent = traffic(
      'istio_tcp_sent_bytes_total',
      'The size of total bytes sent during response in case of TCP connection',
    );
    new Gauge({
      name: 'istio_build',
      help: 'Istio component build info',
      labelNames: ['component', 'tag'],
      registers,
    }).set({ component: 'ztunnel', tag: ISTIO_COMPAT_VERSION }, 1);
    this.#xdsTerminations = new Counter({
      name: 'istio_xds_connection_terminations_total',
      help: 'The total number of completed connections to xds server (unstable)',
      labelNames: ['reason'],
      registers,
    });
    this.#xdsMessages = new Counter({
      name: 'istio_xds_message_total',
      help: 'Total number of messages received (unstable)',
      labelNames: ['url'],
      registers,
    });
    this.#xdsBytes = new Counter({
      name: 'istio_xds_message_bytes_total',
      help: 'Total number of bytes received (unstable)',
      labelNames: ['url'],
      registers,
    });
    const readGauges = (): WorkloadManagerGauges | undefined => this.#workloadManager;
    new Gauge({
      name: 'workload_manager_active_proxy_count',
      help: 'The total number current workloads with active proxies',
      registers,
      collect() {
        this.set(readGauges()?.activeCount ?? 0);
      },
    });
    new Gauge({
      name: 'workload_manager_pending_proxy_count',
      help: 'The total number current workloads with pending proxies',
      registers,
      collect() {
        this.set(readGauges()?.pendingCount ?? 0);
      },
    });
    this.#proxiesStarted = new Counter({
      name: 'workload_manager_proxies_started_total',
      help: 'The total number of proxies that were started',
      registers,
    });
    this.#proxiesStopped = new Counter({
      name: 'workload_manager_proxies_stopped_total',
      help: 'The total number of proxies that were stopped',
      registers,
    });
  }

  /** Where the workload-manager gauges read from at scrape time. */
  observeWorkloadManager(source: WorkloadManagerGauges): void {
    this.#workloadManager = source;
  }

  connectionOpened(labels: TrafficLabels): void {
    this.#opened.inc(labels);
  }

  /**
   * A connection closed. Bytes are counted from the client application's side for both
   * reporters: `received` = request bytes (client → server), `sent` = response bytes.
   */
  connectionClosed(
    labels: TrafficLabels,
    bytes: { readonly fromClient: number; readonly toClient: number },
  ): void {
    this.#closed.inc(labels);
    this.#received.inc(labels, bytes.fromClient);
    this.#sent.inc(labels, bytes.toClient);
  }

  xdsMessage(typeUrl: string, bytes: number): void {
    this.#xdsMessages.inc({ url: typeUrl });
    this.#xdsBytes.inc({ url: typeUrl }, bytes);
  }

  xdsTerminated(reason: string): void {
    this.#xdsTerminations.inc({ reason });
  }

  proxyStarted(): void {
    this.#proxiesStarted.inc();
  }

  proxyStopped(): void {
    this.#proxiesStopped.inc();
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
