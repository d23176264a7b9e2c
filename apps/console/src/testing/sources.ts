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

/** Answers the L4 query with the recorded ztunnel bytes and the L7 one with the waypoint requests. */
export function recordedPrometheus(): PrometheusClient {
  return {
    query: promql =>
      Promise.resolve(
        recorded(promql.includes('istio_requests_total') ? 'prometheus-l7.json' : 'prometheus-l4.json'),
      ),
  };
}
