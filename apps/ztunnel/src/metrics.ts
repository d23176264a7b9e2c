/**
 * ztunnel's Prometheus metrics (docs/protocols.md#ztunnel-metrics), on a private prom-client registry: exact upstream names,
 * and the traffic labels in upstream's order with `unknown` for missing values.
 *
 * The DNS proxy's metrics (`istio_dns_*`) are in `dns/metrics.ts`, on the same registry
 * (`ZtunnelMetrics.dns`); `istio_on_demand_dns_total` is not registered (no on-demand DNS).
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { packageVersion } from '@ambient-mesh/runtime';
import { MetricName, TRAFFIC_LABELS, trafficLabels as meshTrafficLabels } from '@ambient-mesh/mesh-api';
import type { Reporter as MeshReporter, TrafficLabelName, TrafficLabels } from '@ambient-mesh/mesh-api';
import type { ResponseFlag } from '@ambient-mesh/proxy-core';
import { DnsMetrics } from './dns/metrics.ts';

/** The Istio release whose wire protocols this implementation follows (`version` in `/config_dump`). */
export const ISTIO_COMPAT_VERSION = '1.27.0';

/** This app's version (its package.json), the `tag` of `istio_build`. */
export const ZTUNNEL_VERSION: string = packageVersion(new URL('../package.json', import.meta.url));

/**
 * Upstream's `reason` label values on `istio_xds_connection_terminations_total`
 * (`ConnectionTerminationReason`): the xDS client's short reasons mapped onto them.
 */
export function xdsTerminationReason(reason: string): 'ConnectionError' | 'Error' | 'Reconnect' | 'Complete' {
  switch (reason) {
    case 'connect':
      return 'ConnectionError';
    case 'error':
      return 'Error';
    case 'reconnect':
      return 'Reconnect';
    default:
      return 'Complete';
  }
}

export interface ZtunnelMetricsOptions {
  /** The app's registry, from the runtime's `Platform` (with process metrics when the executable made it). */
  readonly registry: Registry;
  /** The `tag` of `istio_build`; default this app's package version. */
  readonly version?: string;
}

export { TRAFFIC_LABELS } from '@ambient-mesh/mesh-api';
export type { TrafficLabelName, TrafficLabels } from '@ambient-mesh/mesh-api';

/** ztunnel reports as the source or the destination (never as a waypoint). */
export type Reporter = Exclude<MeshReporter, 'waypoint'>;
/** `-`, or why a connection was refused. */
export type ResponseFlags = '-' | ResponseFlag;

/**
 * Fills every traffic label, `unknown` where the caller has no value (empty counts as missing);
 * ztunnel's connections are all `tcp`.
 */
export function trafficLabels(partial: Partial<Record<TrafficLabelName, string | undefined>>): TrafficLabels {
  return { ...meshTrafficLabels(partial), request_protocol: 'tcp' };
}

/** Label sets tallied between scrapes before the tallies go to the counters anyway. */
const MAX_PENDING_TALLIES = 1024;

interface TrafficTally {
  opened: number;
  closed: number;
  received: number;
  sent: number;
}

export interface WorkloadManagerGauges {
  readonly activeCount: number;
  readonly pendingCount: number;
}

export class ZtunnelMetrics {
  readonly registry: Registry;
  /** The DNS proxy's counters and histogram. */
  readonly dns: DnsMetrics;
  readonly #opened: Counter<TrafficLabelName>;
  readonly #closed: Counter<TrafficLabelName>;
  readonly #received: Counter<TrafficLabelName>;
  readonly #sent: Counter<TrafficLabelName>;
  readonly #xdsTerminations: Counter<'reason'>;
  readonly #xdsMessages: Counter<'url'>;
  readonly #xdsBytes: Counter<'url'>;
  readonly #proxiesStarted: Counter;
  readonly #proxiesStopped: Counter;
  readonly #certFetches: Counter<'result'>;
  /** Ours: connections closed at accept by `MAX_CONNECTIONS_PER_SOURCE`. */
  readonly connectionsRefusedBySourceLimit: Counter;
  readonly #certsFailing: Gauge<'certificate'>;
  #workloadManager: WorkloadManagerGauges | undefined;
  /**
   * Traffic counted since the last scrape, by label set. A connection adds to a tally (label sets
   * are shared per pair of parties, see proxy/traffic-labels.ts); the counters take the tallies when
   * scraped. prom-client would otherwise hash the thirty-odd labels four times per connection.
   */
  readonly #pendingTraffic = new Map<TrafficLabels, TrafficTally>();

  constructor(options: ZtunnelMetricsOptions) {
    this.registry = options.registry;
    const registers = [this.registry];
    this.dns = new DnsMetrics(this.registry);
    const flush = (): void => {
      this.#flushTraffic();
    };
    const traffic = (name: string, help: string): Counter<TrafficLabelName> =>
      new Counter({ name, help, labelNames: TRAFFIC_LABELS, registers, collect: flush });
    this.#opened = traffic(MetricName.tcpConnectionsOpened, 'The total number of TCP connections opened');
    this.#closed = traffic(MetricName.tcpConnectionsClosed, 'The total number of TCP connections closed');
    this.#received = traffic(
      MetricName.tcpReceivedBytes,
      'The size of total bytes received during request in case of a TCP connection',
    );
    this.#sent = traffic(
      MetricName.tcpSentBytes,
      'The size of total bytes sent during response in case of TCP connection',
    );
    new Gauge({
      name: MetricName.build,
      help: 'Istio component build info',
      labelNames: ['component', 'tag'],
      registers,
    }).set({ component: 'ztunnel', tag: options.version ?? ZTUNNEL_VERSION }, 1);
    this.#xdsTerminations = new Counter({
      name: MetricName.xdsConnectionTerminations,
      help: 'The total number of completed connections to xds server (unstable)',
      labelNames: ['reason'],
      registers,
    });
    this.#xdsMessages = new Counter({
      name: MetricName.xdsMessages,
      help: 'Total number of messages received (unstable)',
      labelNames: ['url'],
      registers,
    });
    this.#xdsBytes = new Counter({
      name: MetricName.xdsMessageBytes,
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
    this.#certFetches = new Counter({
      name: 'ztunnel_certificate_fetches_total',
      help: 'Certificate requests to the CA (CA_ADDRESS), by result (success, failure)',
      labelNames: ['result'],
      registers,
    });
    this.connectionsRefusedBySourceLimit = new Counter({
      name: 'ztunnel_connections_refused_source_limit_total',
      help: 'Inbound connections closed at accept because their source IP had MAX_CONNECTIONS_PER_SOURCE open to the pod',
      registers,
    });
    this.#certsFailing = new Gauge({
      name: 'ztunnel_certificate_fetch_failing_identities',
      help: 'Identities whose last certificate request failed, by whether a certificate is still held (kept, none)',
      labelNames: ['certificate'],
      registers,
    });
  }

  certificateFetched(result: 'success' | 'failure'): void {
    this.#certFetches.inc({ result });
  }

  certificatesFailing(kept: number, none: number): void {
    this.#certsFailing.set({ certificate: 'kept' }, kept);
    this.#certsFailing.set({ certificate: 'none' }, none);
  }

  /** Where the workload-manager gauges read from at scrape time. */
  observeWorkloadManager(source: WorkloadManagerGauges): void {
    this.#workloadManager = source;
  }

  connectionOpened(labels: TrafficLabels): void {
    this.#tally(labels).opened++;
  }

  /**
   * A connection closed. Bytes are counted from the client application's side for both
   * reporters: `received` = request bytes (client → server), `sent` = response bytes.
   */
  connectionClosed(
    labels: TrafficLabels,
    bytes: { readonly fromClient: number; readonly toClient: number },
  ): void {
    const tally = this.#tally(labels);
    tally.closed++;
    tally.received += bytes.fromClient;
    tally.sent += bytes.toClient;
  }

  #tally(labels: TrafficLabels): TrafficTally {
    let tally = this.#pendingTraffic.get(labels);
    if (tally === undefined) {
      // Label sets are per workload object, so a ztunnel nobody scrapes would collect one tally
      // per object WDS ever sent: past the bound, the counters take what is pending now.
      if (this.#pendingTraffic.size >= MAX_PENDING_TALLIES) this.#flushTraffic();
      tally = { opened: 0, closed: 0, received: 0, sent: 0 };
      this.#pendingTraffic.set(labels, tally);
    }
    return tally;
  }

  /** Moves the tallies since the last scrape into the four traffic counters. */
  #flushTraffic(): void {
    for (const [labels, tally] of this.#pendingTraffic) {
      if (tally.opened > 0) this.#opened.inc(labels, tally.opened);
      if (tally.closed > 0) {
        this.#closed.inc(labels, tally.closed);
        this.#received.inc(labels, tally.received);
        this.#sent.inc(labels, tally.sent);
      }
    }
    this.#pendingTraffic.clear();
  }

  xdsMessage(typeUrl: string, bytes: number): void {
    this.#xdsMessages.inc({ url: typeUrl });
    this.#xdsBytes.inc({ url: typeUrl }, bytes);
  }

  xdsTerminated(reason: string): void {
    this.#xdsTerminations.inc({ reason: xdsTerminationReason(reason) });
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
