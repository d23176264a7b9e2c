// Metric charts of a workload or a service (Kiali's inbound/outbound metrics): request rate, error
// rate, latency percentiles and TCP bytes, from the backend's Prometheus range queries. L4 series
// (ztunnel) are blue, L7 series (waypoint) green; each chart's legend says which layer and reporter
// a line comes from, and its PromQL is one click away. Drawing only: the series come computed.
import {
  Alert,
  Card,
  CardBody,
  CardTitle,
  Gallery,
  Label,
  Spinner,
  ToggleGroup,
  ToggleGroupItem,
} from '@patternfly/react-core';
import { useState } from 'react';
import type { MetricChart, MetricSeries } from '../model.ts';
import { useMetrics } from './api.ts';

const LAYER_COLORS = { L4: '#0066cc', L7: '#3e8635' } as const;
/** Percentile lines of one layer are told apart by dashes. */
const DASHES = ['', '6 3', '2 2'];
const W = 420;
const H = 160;
const PAD = { left: 72, right: 8, top: 8, bottom: 22 };

export function formatValue(v: number, unit: MetricChart['unit']): string {
  if (unit === 'ratio') return `${(v * 100).toFixed(1)}%`;
  if (unit === 'B/s') {
    if (v >= 1_048_576) return `${(v / 1_048_576).toFixed(1)} MiB/s`;
    if (v >= 1024) return `${(v / 1024).toFixed(1)} KiB/s`;
    return `${v.toFixed(0)} B/s`;
  }
  if (unit === 'ms') return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  if (unit === 'conn/s') return `${v.toFixed(2)} conn/s`;
  if (unit === 'bytes') {
    if (v >= 1_073_741_824) return `${(v / 1_073_741_824).toFixed(2)} GiB`;
    if (v >= 1_048_576) return `${(v / 1_048_576).toFixed(1)} MiB`;
    if (v >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
    return `${v.toFixed(0)} B`;
  }
  if (unit === 'cores') return v < 0.1 ? `${(v * 1000).toFixed(1)} mcores` : `${v.toFixed(2)} cores`;
  return `${v.toFixed(2)} req/s`;
}

function Plot({
  chart,
  start,
  end,
}: {
  readonly chart: MetricChart;
  readonly start: number;
  readonly end: number;
}) {
  const max = Math.max(0, ...chart.series.flatMap(s => s.points.map(p => p[1])));
  const top = max > 0 ? max * 1.1 : 1;
  const x = (t: number): number =>
    PAD.left + ((t - start) / Math.max(1, end - start)) * (W - PAD.left - PAD.right);
  const y = (v: number): number => PAD.top + (1 - v / top) * (H - PAD.top - PAD.bottom);
  const clock = (t: number): string => new Date(t * 1000).toISOString().slice(11, 16);
  return (
    <svg width="100%" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={chart.title}>
      <line x1={PAD.left} y1={y(0)} x2={W - PAD.right} y2={y(0)} stroke="#8a8d90" />
      <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={y(0)} stroke="#8a8d90" />
      <text x={PAD.left - 4} y={PAD.top + 8} textAnchor="end" fontSize={10} fill="#6a6e73">
        {formatValue(top, chart.unit)}
      </text>
      <text x={PAD.left - 4} y={y(0)} textAnchor="end" fontSize={10} fill="#6a6e73">
        0
      </text>
      <text x={PAD.left} y={H - 6} fontSize={10} fill="#6a6e73">
        {clock(start)}
      </text>
      <text x={W - PAD.right} y={H - 6} textAnchor="end" fontSize={10} fill="#6a6e73">
        {clock(end)}
      </text>
      {chart.series.map((s, i) => {
        const sameLayer = chart.series.filter(o => o.layer === s.layer);
        const dash = DASHES[sameLayer.indexOf(s) % DASHES.length] ?? '';
        if (s.points.length === 0) return null;
        // One point so far (a series that just started) is a dot, not an invisible line.
        const [only] = s.points;
        if (s.points.length === 1 && only !== undefined)
          return (
            <circle
              key={s.id}
              data-series={s.id}
              cx={x(only[0])}
              cy={y(only[1])}
              r={3}
              fill={LAYER_COLORS[s.layer]}
            />
          );
        return (
          <polyline
            key={s.id}
            data-series={s.id}
            fill="none"
            stroke={LAYER_COLORS[s.layer]}
            strokeWidth={i === 0 ? 2 : 1.5}
            strokeDasharray={dash}
            points={s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        );
      })}
    </svg>
  );
}

function Legend({ series, unit }: { readonly series: MetricSeries; readonly unit: MetricChart['unit'] }) {
  const last = series.points.at(-1);
  return (
    <div
      data-testid="metric-series"
      data-series={series.id}
      data-layer={series.layer}
      data-reporter={series.reporter}
      data-points={series.points.length}
      style={{ fontSize: 12, display: 'flex', gap: 6, alignItems: 'center' }}
    >
      <Label isCompact color={series.layer === 'L4' ? 'blue' : 'green'}>
        {series.layer} · {series.layer === 'L4' ? 'ztunnel' : 'waypoint'}
      </Label>
      <span style={{ color: LAYER_COLORS[series.layer] }}>{series.label}</span>
      <span style={{ color: '#6a6e73' }}>
        {last === undefined ? 'no data' : `now ${formatValue(last[1], unit)}`}
      </span>
    </div>
  );
}

export function MetricsCharts({
  kind,
  namespace,
  name,
}: {
  readonly kind: 'workload' | 'service' | 'ztunnel';
  readonly namespace: string;
  readonly name: string;
}) {
  const [direction, setDirection] = useState<'inbound' | 'outbound'>('inbound');
  const { data, error, isPending } = useMetrics(kind, namespace, name, direction, 600);
  return (
    <div data-testid="metrics" data-direction={direction}>
      <div style={{ margin: '8px 0', display: 'flex', gap: 16, alignItems: 'center' }}>
        {kind === 'workload' && (
          <ToggleGroup aria-label="direction">
            {(['inbound', 'outbound'] as const).map(d => (
              <ToggleGroupItem
                key={d}
                text={d === 'inbound' ? 'Inbound' : 'Outbound'}
                buttonId={`direction-${d}`}
                isSelected={direction === d}
                onChange={() => {
                  setDirection(d);
                }}
              />
            ))}
          </ToggleGroup>
        )}
        <span style={{ fontSize: 12, color: '#6a6e73' }}>
          {kind === 'ztunnel' ? (
            <>
              Last 10 minutes of this ztunnel&apos;s own series (its <code>pod</code> label): as client
              (reporter=source) and as server (reporter=destination).
            </>
          ) : (
            <>
              Last 10 minutes. <span style={{ color: LAYER_COLORS.L4 }}>L4</span>: ztunnel (reporter=
              {kind === 'workload' && direction === 'outbound' ? 'source' : 'destination'}) ·{' '}
              <span style={{ color: LAYER_COLORS.L7 }}>L7</span>: waypoint (reporter=waypoint)
            </>
          )}
        </span>
      </div>
      {isPending && <Spinner aria-label="loading metrics" />}
      {error !== null && (
        <Alert variant="danger" title="Cannot load the metrics" isInline>
          {error.message}
        </Alert>
      )}
      {data?.metricsUnavailable !== undefined && (
        <Alert variant="warning" title="Metrics unavailable" isInline data-testid="metrics-unavailable">
          {data.metricsUnavailable.message}
        </Alert>
      )}
      {data !== undefined && (
        <Gallery hasGutter minWidths={{ default: '420px' }}>
          {data.charts.map(c => (
            <Card key={c.id} isCompact data-testid="metric-chart" data-chart={c.id}>
              <CardTitle>{c.title}</CardTitle>
              <CardBody>
                <Plot chart={c} start={data.end - data.duration} end={data.end} />
                {c.series.map(s => (
                  <Legend key={s.id} series={s} unit={c.unit} />
                ))}
                <details style={{ fontSize: 11, marginTop: 4 }}>
                  <summary>PromQL</summary>
                  {c.series.map(s => (
                    <pre key={s.id} style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
                      {s.promql}
                    </pre>
                  ))}
                </details>
              </CardBody>
            </Card>
          ))}
        </Gallery>
      )}
    </div>
  );
}
