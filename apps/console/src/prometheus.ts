/**
 * A small client of Prometheus's HTTP API (`/api/v1/query`), and the queries behind the graph,
 * which are Kiali's: ztunnel's `istio_tcp_*` for L4 edges and `istio_requests_total` reported by
 * waypoints for L7 edges. Every failure (unreachable, HTTP error, bad JSON, a PromQL error) is a
 * typed `METRICS_UNAVAILABLE` result, never a throw: the graph then says metrics are unavailable.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { MetricName, Reporter } from '@ambient-mesh/mesh-api';
import type { MetricsUnavailable } from './model.ts';

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type QueryResult =
  { readonly ok: true; readonly samples: readonly Sample[] } | ({ readonly ok: false } & MetricsUnavailable);

/** One series of a range query: its labels and `[unix seconds, value]` points. */
export interface RangeSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly points: readonly (readonly [number, number])[];
}

export type RangeResult =
  | { readonly ok: true; readonly series: readonly RangeSeries[] }
  | ({ readonly ok: false } & MetricsUnavailable);

export interface RangeQuery {
  readonly promql: string;
  /** Unix seconds. */
  readonly start: number;
  readonly end: number;
  /** Seconds between points. */
  readonly step: number;
}

function unavailable(message: string): { readonly ok: false } & MetricsUnavailable {
  return { ok: false, code: 'METRICS_UNAVAILABLE', message };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a `/api/v1/query` answer holding an instant vector into samples. */
export function parseVectorResponse(body: unknown): QueryResult {
  if (!isRecord(body)) return unavailable('Prometheus answered something that is not a JSON object');
  if (body.status !== 'success') {
    const detail = typeof body.error === 'string' ? body.error : 'no error message';
    return unavailable(`Prometheus rejected the query: ${detail}`);
  }
  const data = body.data;
  if (!isRecord(data) || data.resultType !== 'vector' || !Array.isArray(data.result)) {
    return unavailable('Prometheus answered without an instant vector (data.resultType must be "vector")');
  }
  const samples: Sample[] = [];
  for (const item of data.result as unknown[]) {
    if (!isRecord(item) || !isRecord(item.metric) || !Array.isArray(item.value)) continue;
    const value = Number(item.value[1]);
    if (!Number.isFinite(value)) continue;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(item.metric)) if (typeof v === 'string') labels[k] = v;
    samples.push({ labels, value });
  }
  return { ok: true, samples };
}

/** Validates a `/api/v1/query_range` answer holding a range vector (a matrix) into series. */
export function parseMatrixResponse(body: unknown): RangeResult {
  if (!isRecord(body)) return unavailable('Prometheus answered something that is not a JSON object');
  if (body.status !== 'success') {
    const detail = typeof body.error === 'string' ? body.error : 'no error message';
    return unavailable(`Prometheus rejected the query: ${detail}`);
  }
  const data = body.data;
  if (!isRecord(data) || data.resultType !== 'matrix' || !Array.isArray(data.result)) {
    return unavailable('Prometheus answered without a range vector (data.resultType must be "matrix")');
  }
  const series: RangeSeries[] = [];
  for (const item of data.result as unknown[]) {
    if (!isRecord(item) || !isRecord(item.metric) || !Array.isArray(item.values)) continue;
    const points: [number, number][] = [];
    for (const pair of item.values as unknown[]) {
      if (!Array.isArray(pair)) continue;
      const t = Number(pair[0]);
      const v = Number(pair[1]);
      // NaN (0/0 in a ratio) is a gap, not a point.
      if (Number.isFinite(t) && Number.isFinite(v)) points.push([t, v]);
    }
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(item.metric)) if (typeof v === 'string') labels[k] = v;
    series.push({ labels, points });
  }
  return { ok: true, series };
}

export interface PrometheusClient {
  query(promql: string): Promise<QueryResult>;
  queryRange(query: RangeQuery): Promise<RangeResult>;
}

export interface HttpPrometheusOptions {
  /** Base URL, e.g. `http://prometheus.istio-system:9090`. */
  readonly url: string;
  readonly timeoutMs: number;
  readonly fetch?: typeof globalThis.fetch;
}

export function httpPrometheus(options: HttpPrometheusOptions): PrometheusClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const base = options.url.replace(/\/+$/, '');
  /** The answer's JSON body, or the reason there is none. */
  const get = async (
    path: string,
  ): Promise<
    { readonly ok: true; readonly body: unknown } | ({ readonly ok: false } & MetricsUnavailable)
  > => {
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, { signal: AbortSignal.timeout(options.timeoutMs) });
    } catch (err) {
      return {
        ok: false,
        code: 'METRICS_UNAVAILABLE',
        message: `cannot reach Prometheus at ${base}: ${errorMessage(err)} (check PROMETHEUS_URL and that Prometheus runs)`,
      };
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      return {
        ok: false,
        code: 'METRICS_UNAVAILABLE',
        message: `Prometheus at ${base} answered HTTP ${response.status} without JSON`,
      };
    }
    if (!response.ok && !(isRecord(body) && typeof body.error === 'string')) {
      return {
        ok: false,
        code: 'METRICS_UNAVAILABLE',
        message: `Prometheus at ${base} answered HTTP ${response.status}`,
      };
    }
    return { ok: true, body };
  };
  return {
    async query(promql) {
      const r = await get(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      return r.ok ? parseVectorResponse(r.body) : r;
    },
    async queryRange(q) {
      const params = new URLSearchParams({
        query: q.promql,
        start: String(q.start),
        end: String(q.end),
        step: String(q.step),
      });
      const r = await get(`/api/v1/query_range?${params.toString()}`);
      return r.ok ? parseMatrixResponse(r.body) : r;
    },
  };
}

/** The edge labels both queries group by (Kiali's, less the cluster and canonical-revision labels). */
export const EDGE_LABELS = [
  'source_workload_namespace',
  'source_workload',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload_namespace',
  'destination_workload',
  'connection_security_policy',
] as const;

/**
 * The target label naming the pod Prometheus scraped (Istio's sample Prometheus config and a
 * kubernetes_sd `pod` relabel set it): the graph groups by it too, to tell which ztunnel or
 * waypoint reported an edge. Series without it just have no reporting pod.
 */
export const REPORTING_POD_LABEL = 'pod';

const DURATION = /^[1-9][0-9]*[smh]$/;

/** A rate window Prometheus accepts (`1m`, `30s`); anything else is a typed error. */
export function parseRateWindow(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return '1m';
  return DURATION.test(text) ? text : undefined;
}

/**
 * L4: ztunnel's TCP bytes by reporter (the graph prefers the destination's), one query per
 * direction: a single `rate({__name__=~"sent|received"})` drops the names and Prometheus rejects
 * the two series with the same labels ("vector cannot contain metrics with the same labelset").
 * The graph adds the directions up.
 */
export function l4Queries(window: string): readonly string[] {
  return [MetricName.tcpSentBytes, MetricName.tcpReceivedBytes].map(
    name =>
      `sum by (reporter,${EDGE_LABELS.join(',')},${REPORTING_POD_LABEL}) (rate(${name}{reporter=~"${Reporter.source}|${Reporter.destination}"}[${window}]))`,
  );
}

/** L7: requests reported by waypoints, by response code. */
export function l7Query(window: string): string {
  return `sum by (${EDGE_LABELS.join(',')},response_code,${REPORTING_POD_LABEL}) (rate(${MetricName.requestsTotal}{reporter="${Reporter.waypoint}"}[${window}]))`;
}

/** A PromQL label matcher with the value escaped as a string literal. */
export function matcher(name: string, value: string): string {
  return `${name}="${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** The endpoints of an edge as label matchers (a service end when no workload is known). */
export interface EdgeEnds {
  readonly source: { readonly namespace: string; readonly name: string; readonly known: boolean };
  readonly target: {
    readonly namespace: string;
    readonly name: string;
    readonly type: 'workload' | 'service' | 'waypoint' | 'unknown';
  };
}

function endMatchers(ends: EdgeEnds): string[] {
  const m: string[] = [];
  if (ends.source.known) {
    m.push(
      matcher('source_workload_namespace', ends.source.namespace),
      matcher('source_workload', ends.source.name),
    );
  } else {
    m.push(matcher('source_workload', 'unknown'));
  }
  if (ends.target.type === 'service') {
    m.push(
      matcher('destination_service_namespace', ends.target.namespace),
      matcher('destination_service_name', ends.target.name),
    );
  } else if (ends.target.type !== 'unknown') {
    m.push(
      matcher('destination_workload_namespace', ends.target.namespace),
      matcher('destination_workload', ends.target.name),
    );
  }
  return m;
}

/** The PromQL behind one L4 edge: bytes/s both ways, as the reporter the graph used saw them. */
export function l4EdgeQueries(ends: EdgeEnds, reporter: string, window: string): string[] {
  const sel = [matcher('reporter', reporter), ...endMatchers(ends)].join(',');
  return [MetricName.tcpSentBytes, MetricName.tcpReceivedBytes].map(
    name => `sum(rate(${name}{${sel}}[${window}]))`,
  );
}

/** The PromQL behind one L7 edge: requests/s by response code, as the waypoint reported them. */
export function l7EdgeQueries(ends: EdgeEnds, window: string): string[] {
  const sel = [matcher('reporter', Reporter.waypoint), ...endMatchers(ends)].join(',');
  return [`sum by (response_code) (rate(${MetricName.requestsTotal}{${sel}}[${window}]))`];
}
