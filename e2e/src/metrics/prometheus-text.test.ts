import { isMeshError } from '@ambient-mesh/errors';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, PrometheusTextErrorCode, sumSamples } from './prometheus-text.ts';

const ZTUNNEL = `# HELP istio_tcp_connections_opened The total number of TCP connections opened.
# TYPE istio_tcp_connections_opened counter
istio_tcp_connections_opened_total{reporter="destination",source_workload="client",destination_workload="echo",connection_security_policy="mutual_tls"} 3
istio_tcp_connections_opened_total{reporter="destination",source_workload="client",destination_workload="other",connection_security_policy="unknown"} 1
# HELP workload_manager_active_proxy_count The total number current workloads with active proxies.
# TYPE workload_manager_active_proxy_count gauge
workload_manager_active_proxy_count 2
# EOF`;

describe('parsePrometheusText', () => {
  it('reads every sample line with its name, labels and value, skipping comments', () => {
    expect(parsePrometheusText(ZTUNNEL)).toEqual([
      {
        name: 'istio_tcp_connections_opened_total',
        labels: {
          reporter: 'destination',
          source_workload: 'client',
          destination_workload: 'echo',
          connection_security_policy: 'mutual_tls',
        },
        value: 3,
      },
      {
        name: 'istio_tcp_connections_opened_total',
        labels: {
          reporter: 'destination',
          source_workload: 'client',
          destination_workload: 'other',
          connection_security_policy: 'unknown',
        },
        value: 1,
      },
      { name: 'workload_manager_active_proxy_count', labels: {}, value: 2 },
    ]);
  });

  it('keeps the labels of every histogram and summary line', () => {
    const text = [
      '# TYPE push_time histogram',
      'push_time_bucket{type="cds",le="0.5"} 1',
      'push_time_bucket{type="cds",le="+Inf"} 2',
      'push_time_sum{type="cds"} 0.75',
      'push_time_count{type="cds"} 2',
      'push_time_bucket{type="eds",le="+Inf"} 5',
      'push_time_sum{type="eds"} 1.5',
      'push_time_count{type="eds"} 5',
      '# TYPE rpc summary',
      'rpc{method="get",quantile="0.99"} 0.2',
      'rpc_count{method="get"} 9',
    ].join('\n');
    const samples = parsePrometheusText(text);
    expect(samples.map(s => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)).toEqual([
      'push_time_bucket{"type":"cds","le":"0.5"} 1',
      'push_time_bucket{"type":"cds","le":"+Inf"} 2',
      'push_time_sum{"type":"cds"} 0.75',
      'push_time_count{"type":"cds"} 2',
      'push_time_bucket{"type":"eds","le":"+Inf"} 5',
      'push_time_sum{"type":"eds"} 1.5',
      'push_time_count{"type":"eds"} 5',
      'rpc{"method":"get","quantile":"0.99"} 0.2',
      'rpc_count{"method":"get"} 9',
    ]);
    expect(sumSamples(samples, 'push_time_count')).toBe(7);
    expect(sumSamples(samples, 'push_time_count', { type: 'eds' })).toBe(5);
  });

  it('unescapes label values and reads special values, with or without a timestamp', () => {
    const text = 'm{path="a\\"b\\\\c\\nd"} +Inf\nn -Inf 1700000000000\no NaN\np 1.5e3';
    const [m, n, o, p] = parsePrometheusText(text);
    expect(m).toEqual({ name: 'm', labels: { path: 'a"b\\c\nd' }, value: Infinity });
    expect(n?.value).toBe(-Infinity);
    expect(o?.value).toBeNaN();
    expect(p?.value).toBe(1500);
  });

  it('reads the last line whether or not the text ends with a newline', () => {
    expect(parsePrometheusText('a 1\nb 2')).toHaveLength(2);
    expect(parsePrometheusText('a 1\nb 2\n')).toHaveLength(2);
    expect(parsePrometheusText('')).toEqual([]);
  });

  it('throws a typed error on a line that is not a sample or whose value is not a number', () => {
    for (const text of ['ok 1\nnot a sample {\n', 'x{a="1" 2', 'x{a=1} 2', 'x abc', 'x']) {
      let caught: unknown;
      try {
        parsePrometheusText(text);
      } catch (err) {
        caught = err;
      }
      expect(isMeshError(caught, PrometheusTextErrorCode.Invalid), text).toBe(true);
    }
  });
});
