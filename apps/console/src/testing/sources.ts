/** Stand-ins for the cluster and Prometheus: a fixed snapshot, and the recorded Prometheus answers. */
import { readFileSync } from 'node:fs';
import type { KubeSource } from '../kube-source.ts';
import { parseVectorResponse, type PrometheusClient, type QueryResult } from '../prometheus.ts';
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
    query: promql => {
      if (promql.includes('istio_requests_total')) return Promise.resolve(recorded('prometheus-l7.json'));
      if (promql.includes('istio_tcp_sent_bytes_total'))
        return Promise.resolve(recorded('prometheus-l4.json'));
      return Promise.resolve({ ok: true, samples: [] });
    },
  };
}
