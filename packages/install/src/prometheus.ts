/**
 * Prometheus text exposition, as samples: `name{labels} value`, one per line of the text.
 * Parsing is `parse-prometheus-text-format`'s; this file flattens its metric families back into
 * samples (histograms into `_bucket{le}`, `_sum` and `_count`; summaries into quantiles, `_sum`
 * and `_count`), which is what assertions and `mtlsConnections` filter on.
 */
import { createRequire } from 'node:module';
import { ConnectionSecurityPolicy, MetricName } from '@ambient-mesh/mesh-api';

/** The parser's output (the package ships no types): values stay strings as in the text. */
interface ParsedMetric {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value?: string;
  readonly buckets?: Readonly<Record<string, string>>;
  readonly quantiles?: Readonly<Record<string, string>>;
  readonly count?: string;
  readonly sum?: string;
}
interface ParsedFamily {
  readonly name: string;
  readonly type: string;
  readonly metrics: readonly ParsedMetric[];
}

// A CommonJS package without types: loaded through require so every runtime (Node, vitest,
// the compiled dist) resolves it the same way.
const parsePrometheusTextFormat = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => ParsedFamily[];

/** One Prometheus sample: `name{labels} value`. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text format into samples (comments and `# EOF` skipped). */
export function parsePrometheus(text: string): MetricSample[] {
  // OpenMetrics' terminator is not Prometheus text; the parser would take it for a comment anyway.
  const families = parsePrometheusTextFormat(text.replace(/^# EOF\s*$/m, ''));
  const out: MetricSample[] = [];
  for (const family of families) {
    for (const m of family.metrics) {
      const labels = m.labels ?? {};
      if (m.value !== undefined) out.push({ name: family.name, labels, value: Number(m.value) });
      for (const [le, v] of Object.entries(m.buckets ?? {})) {
        out.push({ name: `${family.name}_bucket`, labels: { ...labels, le }, value: Number(v) });
      }
      for (const [quantile, v] of Object.entries(m.quantiles ?? {})) {
        out.push({ name: family.name, labels: { ...labels, quantile }, value: Number(v) });
      }
      if (m.sum !== undefined) out.push({ name: `${family.name}_sum`, labels, value: Number(m.sum) });
      if (m.count !== undefined) out.push({ name: `${family.name}_count`, labels, value: Number(m.count) });
    }
  }
  return out;
}

/** The TCP connections ztunnel counted as mTLS, with both SPIFFE identities in the labels. */
export function mtlsConnections(samples: readonly MetricSample[]): MetricSample[] {
  return samples.filter(
    s =>
      s.name === MetricName.tcpConnectionsOpened &&
      s.labels.connection_security_policy === ConnectionSecurityPolicy.mutualTls &&
      s.value > 0,
  );
}
