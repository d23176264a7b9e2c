/**
 * The metric charts of a workload's or a service's detail page, from Prometheus range queries
 * (`/api/v1/query_range`), with L4 and L7 telemetry kept apart as Kiali shows them in ambient mode:
 *
 * - **L7** series come from waypoints (`reporter="waypoint"`): request rate, error rate (4xx and
 *   5xx over all), latency percentiles from `istio_request_duration_milliseconds`, and the
 *   waypoint's own TCP bytes.
 * - **L4** series come from ztunnel: TCP bytes sent and received, as the ztunnel on the
 *   destination's node saw them (`reporter="destination"`) for inbound traffic and a service, and
 *   as the source's ztunnel saw them (`reporter="source"`) for a workload's outbound traffic.
 *   ztunnel sees connections, not requests, so the request charts have no L4 series.
 *
 * Query building and shaping are pure; `metricsView` runs the queries. A failed query makes the
 * whole view `metricsUnavailable` with the reason (the charts are then empty), never a throw.
 */
import { MetricName, Reporter } from '@ambient-mesh/mesh-api';
import type { MetricChart, MetricSeries, MetricsUnavailable, MetricsView, TelemetryLayer } from './model.ts';
import { matcher, REPORTING_POD_LABEL, type PrometheusClient, type RangeResult } from './prometheus.ts';

export interface MetricsTarget {
  readonly kind: 'workload' | 'service' | 'ztunnel';
  readonly namespace: string;
  readonly name: string;
  /** A service has inbound traffic only. */
  readonly direction: 'inbound' | 'outbound';
}

export interface MetricsRange {
  /** Unix seconds. */
  readonly end: number;
  /** Seconds back from `end`. */
  readonly duration: number;
  readonly step: number;
  /** The rate window, a Prometheus duration. */
  readonly window: string;
}

/** Bounds of `duration`: one minute to one day. */
export const METRICS_DURATION_MIN_S = 60;
export const METRICS_DURATION_MAX_S = 86_400;
export const METRICS_DURATION_DEFAULT_S = 600;
/** About this many points per series, whatever the duration (and never finer than 5 s). */
const POINTS = 120;

export function metricsRange(durationS: number, end: number, window = '1m'): MetricsRange {
  const step = Math.max(5, Math.ceil(durationS / POINTS));
  return { end: Math.floor(end), duration: durationS, step, window };
}

function targetMatchers(t: MetricsTarget): string[] {
  if (t.kind === 'service') {
    return [
      matcher('destination_service_namespace', t.namespace),
      matcher('destination_service_name', t.name),
    ];
  }
  return t.direction === 'inbound'
    ? [matcher('destination_workload_namespace', t.namespace), matcher('destination_workload', t.name)]
    : [matcher('source_workload_namespace', t.namespace), matcher('source_workload', t.name)];
}

/** ztunnel's reporter for this side of the traffic. */
export function l4Reporter(t: MetricsTarget): string {
  return t.kind === 'workload' && t.direction === 'outbound' ? Reporter.source : Reporter.destination;
}

interface SeriesQuery {
  readonly chart: MetricChart['id'];
  readonly id: string;
  readonly layer: TelemetryLayer;
  readonly reporter: string;
  readonly label: string;
  readonly promql: string;
}

const CHARTS: readonly {
  readonly id: MetricChart['id'];
  readonly title: string;
  readonly unit: MetricChart['unit'];
}[] = [
  { id: 'request_rate', title: 'Request rate', unit: 'req/s' },
  { id: 'error_rate', title: 'Request error rate (4xx and 5xx)', unit: 'ratio' },
  { id: 'latency', title: 'Request duration', unit: 'ms' },
  { id: 'tcp_sent', title: 'TCP sent', unit: 'B/s' },
  { id: 'tcp_received', title: 'TCP received', unit: 'B/s' },
];

const ZTUNNEL_CHARTS: typeof CHARTS = [
  { id: 'tcp_opened', title: 'TCP connections opened', unit: 'conn/s' },
  { id: 'tcp_closed', title: 'TCP connections closed', unit: 'conn/s' },
  { id: 'tcp_sent', title: 'TCP sent', unit: 'B/s' },
  { id: 'tcp_received', title: 'TCP received', unit: 'B/s' },
  { id: 'memory', title: 'Memory (resident)', unit: 'bytes' },
  { id: 'cpu', title: 'CPU', unit: 'cores' },
];

/** The ztunnel process's own metrics (prom-client's process collector, Istio's names). */
export const PROCESS_MEMORY_METRIC = 'process_resident_memory_bytes';
export const PROCESS_CPU_METRIC = 'process_cpu_seconds_total';

/**
 * One ztunnel's own traffic (Kiali's ztunnel dashboard): its `istio_tcp_*` series, selected by the
 * `pod` target label Prometheus puts on what it scraped from that pod, as the client side
 * (`reporter="source"`, connections it opened) and the server side (`reporter="destination"`);
 * then its process's resident memory and CPU rate (`process_resident_memory_bytes`,
 * `process_cpu_seconds_total` from ztunnel's own metrics port; Kiali charts the container's
 * cAdvisor series instead, which a cluster without cAdvisor scraping does not have).
 */
export function ztunnelMetricsQueries(pod: string, window: string): SeriesQuery[] {
  const out: SeriesQuery[] = [];
  for (const [chart, name] of [
    ['tcp_opened', MetricName.tcpConnectionsOpened],
    ['tcp_closed', MetricName.tcpConnectionsClosed],
    ['tcp_sent', MetricName.tcpSentBytes],
    ['tcp_received', MetricName.tcpReceivedBytes],
  ] as const) {
    for (const [reporter, label] of [
      [Reporter.source, 'outbound (reporter=source)'],
      [Reporter.destination, 'inbound (reporter=destination)'],
    ] as const) {
      out.push({
        chart,
        id: `l4-${chart}-${reporter}`,
        layer: 'L4',
        reporter,
        label,
        promql: `sum(rate(${name}{${matcher(REPORTING_POD_LABEL, pod)},${matcher('reporter', reporter)}}[${window}]))`,
      });
    }
  }
  // Its process: resident memory and CPU (cores: CPU seconds per second), by the same pod label.
  out.push(
    {
      chart: 'memory',
      id: 'l4-memory',
      layer: 'L4',
      reporter: 'ztunnel',
      label: 'resident memory',
      promql: `sum(${PROCESS_MEMORY_METRIC}{${matcher(REPORTING_POD_LABEL, pod)}})`,
    },
    {
      chart: 'cpu',
      id: 'l4-cpu',
      layer: 'L4',
      reporter: 'ztunnel',
      label: 'CPU (cores)',
      promql: `sum(rate(${PROCESS_CPU_METRIC}{${matcher(REPORTING_POD_LABEL, pod)}}[${window}]))`,
    },
  );
  return out;
}

/** Every series query of the page, in chart order. */
export function metricsQueries(t: MetricsTarget, window: string): SeriesQuery[] {
  if (t.kind === 'ztunnel') return ztunnelMetricsQueries(t.name, window);
  const sel = (reporter: string, extra: readonly string[] = []): string =>
    [matcher('reporter', reporter), ...targetMatchers(t), ...extra].join(',');
  const wp = Reporter.waypoint;
  const requests = `sum(rate(${MetricName.requestsTotal}{${sel(wp)}}[${window}]))`;
  const errors = `sum(rate(${MetricName.requestsTotal}{${sel(wp, ['response_code=~"[45].."'])}}[${window}]))`;
  const l4 = l4Reporter(t);
  const out: SeriesQuery[] = [
    {
      chart: 'request_rate',
      id: 'l7-requests',
      layer: 'L7',
      reporter: wp,
      label: 'requests (waypoint)',
      promql: requests,
    },
    {
      chart: 'error_rate',
      id: 'l7-errors',
      layer: 'L7',
      reporter: wp,
      label: 'error ratio (waypoint)',
      // No error series at all is 0 errors, not a gap.
      promql: `(${errors} or on() vector(0)) / ${requests}`,
    },
  ];
  for (const [q, label] of [
    ['0.5', 'p50'],
    ['0.95', 'p95'],
    ['0.99', 'p99'],
  ] as const) {
    out.push({
      chart: 'latency',
      id: `l7-${label}`,
      layer: 'L7',
      reporter: wp,
      label: `${label} (waypoint)`,
      promql: `histogram_quantile(${q}, sum by (le) (rate(${MetricName.requestDuration}_bucket{${sel(wp)}}[${window}])))`,
    });
  }
  for (const [chart, name] of [
    ['tcp_sent', MetricName.tcpSentBytes],
    ['tcp_received', MetricName.tcpReceivedBytes],
  ] as const) {
    out.push(
      {
        chart,
        id: `l4-${chart}`,
        layer: 'L4',
        reporter: l4,
        label: `ztunnel (reporter=${l4})`,
        promql: `sum(rate(${name}{${sel(l4)}}[${window}]))`,
      },
      {
        chart,
        id: `l7-${chart}`,
        layer: 'L7',
        reporter: wp,
        label: 'waypoint',
        promql: `sum(rate(${name}{${sel(wp)}}[${window}]))`,
      },
    );
  }
  return out;
}

/** Shapes the answers (one per query, in order) into charts; the first failure is the view's reason. */
export function buildMetricsView(
  target: MetricsTarget,
  range: MetricsRange,
  queries: readonly SeriesQuery[],
  results: readonly RangeResult[],
): MetricsView {
  let metricsUnavailable: MetricsUnavailable | undefined;
  const series = new Map<MetricChart['id'], MetricSeries[]>();
  queries.forEach((q, i) => {
    const r = results[i];
    let points: MetricSeries['points'] = [];
    if (r !== undefined && r.ok) points = r.series[0]?.points ?? [];
    else if (r !== undefined) metricsUnavailable ??= { code: r.code, message: r.message };
    const list = series.get(q.chart) ?? [];
    list.push({ id: q.id, layer: q.layer, reporter: q.reporter, label: q.label, promql: q.promql, points });
    series.set(q.chart, list);
  });
  return {
    kind: target.kind,
    namespace: target.namespace,
    name: target.name,
    direction: target.direction,
    end: range.end,
    duration: range.duration,
    step: range.step,
    window: range.window,
    charts: (target.kind === 'ztunnel' ? ZTUNNEL_CHARTS : CHARTS).map(c => ({
      ...c,
      series: series.get(c.id) ?? [],
    })),
    metricsUnavailable,
  };
}

export async function metricsView(
  prometheus: PrometheusClient,
  target: MetricsTarget,
  range: MetricsRange,
): Promise<MetricsView> {
  const queries = metricsQueries(target, range.window);
  const results = await Promise.all(
    queries.map(q =>
      prometheus.queryRange({
        promql: q.promql,
        start: range.end - range.duration,
        end: range.end,
        step: range.step,
      }),
    ),
  );
  return buildMetricsView(target, range, queries, results);
}
