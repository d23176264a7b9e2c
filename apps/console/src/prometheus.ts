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

function unavailable(message: string): QueryResult {
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

export interface PrometheusClient {
  query(promql: string): Promise<QueryResult>;
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
  return {
    async query(promql) {
      const url = `${base}/api/v1/query?query=${encodeURIComponent(promql)}`;
      let response: Response;
      try {
        response = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs) });
      } catch (err) {
        return unavailable(
          `cannot reach Prometheus at ${base}: ${errorMessage(err)} (check PROMETHEUS_URL and that Prometheus runs)`,
        );
      }
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        return unavailable(`Prometheus at ${base} answered HTTP ${response.status} without JSON`);
      }
      if (!response.ok && !(isRecord(body) && typeof body.error === 'string')) {
        return unavailable(`Prometheus at ${base} answered HTTP ${response.status}`);
      }
      return parseVectorResponse(body);
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
      `sum by (reporter,${EDGE_LABELS.join(',')}) (rate(${name}{reporter=~"${Reporter.source}|${Reporter.destination}"}[${window}]))`,
  );
}

/** L7: requests reported by waypoints, by response code. */
export function l7Query(window: string): string {
  return `sum by (${EDGE_LABELS.join(',')},response_code) (rate(${MetricName.requestsTotal}{reporter="${Reporter.waypoint}"}[${window}]))`;
}
