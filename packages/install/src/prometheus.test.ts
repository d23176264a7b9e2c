import { describe, expect, it } from 'vitest';
import { mtlsConnections, parsePrometheus } from './prometheus.ts';

const TEXT = `# HELP istio_tcp_connections_opened_total The total number of TCP connections opened.
# TYPE istio_tcp_connections_opened_total counter
istio_tcp_connections_opened_total{reporter="destination",source_principal="spiffe://cluster.local/ns/sample/sa/client",destination_principal="spiffe://cluster.local/ns/sample/sa/echo",connection_security_policy="mutual_tls"} 3
istio_tcp_connections_opened_total{reporter="source",connection_security_policy="unknown"} 2
istio_tcp_connections_opened_total{reporter="destination",connection_security_policy="mutual_tls",note="a \\"quoted\\" value"} 0
# TYPE workload_manager_active_proxy_count gauge
workload_manager_active_proxy_count 4
# TYPE latency histogram
latency_bucket{le="0.5"} 1
latency_bucket{le="+Inf"} 2
latency_sum 0.7
latency_count 2
# EOF
`;

describe('parsePrometheus', () => {
  it('flattens counters, gauges and histograms into samples, unescaping label values', () => {
    const samples = parsePrometheus(TEXT);
    expect(samples.find(s => s.name === 'workload_manager_active_proxy_count')).toEqual({
      name: 'workload_manager_active_proxy_count',
      labels: {},
      value: 4,
    });
    expect(samples.filter(s => s.name === 'latency_bucket').map(s => [s.labels.le, s.value])).toEqual([
      ['0.5', 1],
      ['+Inf', 2],
    ]);
    expect(samples.find(s => s.name === 'latency_sum')?.value).toBe(0.7);
    expect(samples.find(s => s.name === 'latency_count')?.value).toBe(2);
    expect(samples.find(s => s.labels.note !== undefined)?.labels.note).toBe('a "quoted" value');
  });

  it('answers no samples for empty text', () => {
    expect(parsePrometheus('')).toEqual([]);
  });
});

describe('mtlsConnections', () => {
  it('keeps the mTLS connections that were counted, with both identities', () => {
    const m = mtlsConnections(parsePrometheus(TEXT));
    expect(m).toHaveLength(1);
    expect(m[0]?.labels.source_principal).toBe('spiffe://cluster.local/ns/sample/sa/client');
    expect(m[0]?.labels.destination_principal).toBe('spiffe://cluster.local/ns/sample/sa/echo');
  });
});
