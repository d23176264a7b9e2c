/**
 * The DNS proxy's metrics: upstream ztunnel's four (`istio_dns_requests_total`,
 * `istio_dns_upstream_requests_total`, `istio_dns_upstream_failures_total`,
 * `istio_dns_upstream_request_duration_seconds`, labelled `request_query_type`,
 * `request_protocol`, `source_canonical_service`, `source_canonical_revision`), and one of ours for
 * packets dropped without an answer (`ztunnel_dns_dropped_requests_total{reason}`; upstream's
 * server drops these silently).
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { MetricName } from '@ambient-mesh/mesh-api';
import type { DnsDropReason, DnsProtocol } from './message.ts';
import { queryTypeLabel } from './message.ts';

export const DNS_LABELS = [
  'request_query_type',
  'request_protocol',
  'source_canonical_service',
  'source_canonical_revision',
] as const;
type DnsLabel = (typeof DNS_LABELS)[number];

/** Not upstream's: packets the proxy could not answer at all. */
export const DNS_DROPPED_METRIC = 'ztunnel_dns_dropped_requests_total';

/** Why a packet is dropped: a bad packet, or too many queries already in flight for the pod. */
export type DnsDropMetricReason = DnsDropReason | 'overloaded';

export interface DnsRequestLabels {
  readonly queryType: string;
  readonly protocol: DnsProtocol;
  /** The querying workload, when ztunnel knows it. */
  readonly source?: { readonly canonicalName: string; readonly canonicalRevision: string } | undefined;
}

function orUnknown(value: string | undefined): string {
  return value === undefined || value === '' ? 'unknown' : value;
}

function toLabels(l: DnsRequestLabels): Record<DnsLabel, string> {
  return {
    request_query_type: queryTypeLabel(l.queryType),
    request_protocol: l.protocol,
    source_canonical_service: orUnknown(l.source?.canonicalName),
    source_canonical_revision: orUnknown(l.source?.canonicalRevision),
  };
}

export class DnsMetrics {
  readonly #requests: Counter<DnsLabel>;
  readonly #upstreamRequests: Counter<DnsLabel>;
  readonly #upstreamFailures: Counter<DnsLabel>;
  readonly #upstreamDuration: Histogram<DnsLabel>;
  readonly #dropped: Counter<'reason' | 'request_protocol'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = DNS_LABELS;
    this.#requests = new Counter({
      name: MetricName.dnsRequests,
      help: 'Total number of DNS requests (unstable)',
      labelNames,
      registers,
    });
    this.#upstreamRequests = new Counter({
      name: MetricName.dnsUpstreamRequests,
      help: 'Total number of DNS requests forwarded to upstream (unstable)',
      labelNames,
      registers,
    });
    this.#upstreamFailures = new Counter({
      name: MetricName.dnsUpstreamFailures,
      help: 'Total number of DNS requests that failed to forward upstream (unstable)',
      labelNames,
      registers,
    });
    this.#upstreamDuration = new Histogram({
      name: MetricName.dnsUpstreamRequestDuration,
      help: 'Total time in seconds Istio takes to get DNS response from upstream (unstable)',
      labelNames,
      buckets: [0.001, 0.005, 0.01, 0.1, 1, 5],
      registers,
    });
    this.#dropped = new Counter({
      name: DNS_DROPPED_METRIC,
      help: 'DNS packets dropped without an answer: malformed, oversized, not a query, or over the in-flight limit',
      labelNames: ['reason', 'request_protocol'],
      registers,
    });
  }

  request(labels: DnsRequestLabels): void {
    this.#requests.inc(toLabels(labels));
  }

  upstreamRequest(labels: DnsRequestLabels): void {
    this.#upstreamRequests.inc(toLabels(labels));
  }

  upstreamFailure(labels: DnsRequestLabels): void {
    this.#upstreamFailures.inc(toLabels(labels));
  }

  upstreamDuration(labels: DnsRequestLabels, seconds: number): void {
    this.#upstreamDuration.observe(toLabels(labels), seconds);
  }

  dropped(reason: DnsDropMetricReason, protocol: DnsProtocol): void {
    this.#dropped.inc({ reason, request_protocol: protocol });
  }
}
