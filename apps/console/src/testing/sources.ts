/** Stand-ins for the cluster and Prometheus: a fixed snapshot, and the recorded Prometheus answers. */
import { readFileSync } from 'node:fs';
import type { KubeSource } from '../kube-source.ts';
import type { PodLogReader } from '../logs.ts';
import {
  parseMatrixResponse,
  parseVectorResponse,
  type PrometheusClient,
  type QueryResult,
  type RangeQuery,
  type RangeResult,
} from '../prometheus.ts';
import type { SyncReader } from '../sync-state.ts';
import { parseJaegerTraces, type TraceQuery, type TracingClient } from '../traces.ts';
import type { ZtunnelDumpReader } from '../ztunnel-config.ts';
import type { MeshSnapshot } from '../snapshot.ts';

export function fixedSource(snapshot: MeshSnapshot, synced = true): KubeSource {
  return {
    snapshot: () => snapshot,
    synced: () => synced,
    ready: Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}

const recorded = (name: string): QueryResult =>
  parseVectorResponse(JSON.parse(readFileSync(new URL(`../testdata/${name}`, import.meta.url), 'utf8')));

/**
 * Answers the L7 query with the recorded waypoint requests, the L4 bytes-sent query with the
 * recorded ztunnel bytes and the bytes-received one with an empty vector.
 */
export function recordedPrometheus(): PrometheusClient {
  return {
    queryRange: q => Promise.resolve(rangeAnswer(q)),
    query: promql => {
      if (promql.includes('istio_requests_total')) return Promise.resolve(recorded('prometheus-l7.json'));
      if (promql.includes('istio_tcp_sent_bytes_total'))
        return Promise.resolve(recorded('prometheus-l4.json'));
      return Promise.resolve({ ok: true, samples: [] });
    },
  };
}

/**
 * A `/api/v1/query_range` answer in Prometheus's JSON shape for the charts' queries, one point per
 * step: waypoint requests at 10 req/s with 5 % errors and 4/12/20 ms percentiles, ztunnel bytes
 * at 800 B/s, and no waypoint TCP series (the waypoint proxies HTTP only).
 */
function rangeAnswer(q: RangeQuery): RangeResult {
  const level = (): number | undefined => {
    const p = q.promql;
    if (p.includes('reporter="waypoint"') && p.includes('istio_tcp_')) return undefined;
    if (p.startsWith('histogram_quantile(0.5,')) return 4;
    if (p.startsWith('histogram_quantile(0.95,')) return 12;
    if (p.startsWith('histogram_quantile(0.99,')) return 20;
    if (p.includes('response_code=~')) return 0.05;
    if (p.includes('istio_requests_total')) return 10;
    if (p.includes('istio_tcp_connections_')) return 2;
    if (p.includes('istio_tcp_sent_bytes_total')) return 800;
    if (p.includes('istio_tcp_received_bytes_total')) return 400;
    if (p.includes('process_resident_memory_bytes')) return 48 * 1_048_576;
    if (p.includes('process_cpu_seconds_total')) return 0.02;
    return undefined;
  };
  const v = level();
  const values: [number, string][] = [];
  for (let t = q.start; t <= q.end && v !== undefined; t += q.step) {
    // A gentle wave, so the charts are not flat lines.
    values.push([t, String(v * (1 + 0.2 * Math.sin((t - q.start) / (q.step * 8))))]);
  }
  return parseMatrixResponse({
    status: 'success',
    data: { resultType: 'matrix', result: v === undefined ? [] : [{ metric: {}, values }] },
  });
}

/** The recorded `/config_dump` of ztunnel-a (node-1); ztunnel-b does not answer (its node is down). */
export function recordedZtunnelDump(): ZtunnelDumpReader {
  return (_namespace, pod) =>
    pod === 'ztunnel-a'
      ? Promise.resolve(readFileSync(new URL('../testdata/ztunnel-dump.json', import.meta.url), 'utf8'))
      : Promise.reject(new Error('connection refused'));
}

/**
 * Recorded pod logs (kubelet `timestamps=true` format) for the sample mesh: the echo app's request
 * line, both ztunnels' access-log lines for client -> echo (and one about another workload), and
 * the waypoint's access-log line for the echo Service. `ztunnel-b` fails, as a node that is down.
 */
export function recordedLogs(): PodLogReader {
  const z = (t: string, fields: Record<string, unknown>): string =>
    `${t} ${JSON.stringify({ level: 30, component: 'access', ...fields, msg: 'connection complete' })}`;
  const logs: Record<string, string> = {
    'sample/echo-7d9f8b6c5-x1': [
      '2026-12-06T10:00:00.000000001Z echo listening on :8080',
      '2026-12-06T10:00:05.2Z GET /hello from 10.1.0.30:40000',
    ].join('\n'),
    'istio-system/ztunnel-a': [
      z('2026-12-06T10:00:05.1Z', {
        'src.addr': '10.1.0.10:51234',
        'src.workload': 'client-7d9f8b6c5-x1',
        'src.namespace': 'sample',
        'dst.addr': '10.1.0.20:15008',
        'dst.workload': 'echo-7d9f8b6c5-x1',
        'dst.namespace': 'sample',
        direction: 'inbound',
      }),
      z('2026-12-06T10:00:06Z', {
        'src.addr': '10.9.0.1:1',
        'src.workload': 'other',
        'src.namespace': 'elsewhere',
        'dst.addr': '10.9.0.2:80',
        direction: 'outbound',
      }),
    ].join('\n'),
    'sample/waypoint-7d9f8b6c5-x1': [
      `2026-12-06T10:00:05.15Z ${JSON.stringify({ component: 'access', method: 'GET', path: '/hello', authority: 'echo.sample.svc.cluster.local', upstream_host: '10.1.0.20:8080', response_code: 200, msg: 'request' })}`,
    ].join('\n'),
  };
  return (namespace, pod) => {
    if (pod === 'ztunnel-b') return Promise.reject(new Error('the node is unreachable'));
    return Promise.resolve(logs[`${namespace}/${pod}`] ?? '');
  };
}

/** Prometheus that cannot be reached: every query fails as the HTTP client reports it. */
export function unreachablePrometheus(
  message = 'cannot reach Prometheus at http://127.0.0.1:1',
): PrometheusClient {
  const failed = { ok: false, code: 'METRICS_UNAVAILABLE', message } as const;
  return { query: () => Promise.resolve(failed), queryRange: () => Promise.resolve(failed) };
}

/** istiod's recorded `/debug/syncz`: the waypoint with RDS not yet ACKed (STALE), a ztunnel, a debug client. */
export function recordedSyncz(): SyncReader {
  return (_namespace, pod) =>
    pod.startsWith('istiod')
      ? Promise.resolve(readFileSync(new URL('../testdata/istiod-syncz.json', import.meta.url), 'utf8'))
      : Promise.reject(new Error(`no istiod ${pod}`));
}

/** Jaeger's recorded `/api/traces` answer for the waypoint `waypoint.sample`; no traces for other services. */
export function recordedTracing(): TracingClient & { readonly queries: TraceQuery[] } {
  const queries: TraceQuery[] = [];
  return {
    queries,
    findTraces: q => {
      queries.push(q);
      return Promise.resolve(
        q.service === 'waypoint.sample'
          ? parseJaegerTraces(
              JSON.parse(readFileSync(new URL('../testdata/jaeger-traces.json', import.meta.url), 'utf8')),
            )
          : parseJaegerTraces({ data: [], errors: null }),
      );
    },
  };
}
