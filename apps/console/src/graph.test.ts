import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildGraph, edgeHealth } from './graph.ts';
import { workloadViews } from './mesh-view.ts';
import { parseVectorResponse, type Sample } from './prometheus.ts';
import type { MeshSnapshot } from './snapshot.ts';
import { sampleSnapshot } from './testing/fixtures.ts';

function recorded(name: string): readonly Sample[] {
  const result = parseVectorResponse(
    JSON.parse(readFileSync(new URL(`testdata/${name}`, import.meta.url), 'utf8')),
  );
  if (!result.ok) throw new Error(result.message);
  return result.samples;
}

const workloads = workloadViews(sampleSnapshot());

describe('buildGraph on recorded Prometheus answers', () => {
  const graph = buildGraph({
    namespaces: ['sample'],
    workloads,
    l4: recorded('prometheus-l4.json'),
    l7: recorded('prometheus-l7.json'),
  });

  it('draws a tcp edge from ztunnel bytes, preferring the destination reporter, with mTLS', () => {
    const edge = graph.edges.find(e => e.id === 'sample/client>sample/echo:tcp');
    expect(edge).toMatchObject({
      protocol: 'tcp',
      reporter: 'destination',
      bytesPerSecond: 812.4,
      mtls: true,
    });
  });

  it('draws an http edge beside it from waypoint requests, with rps and error rate (a double edge)', () => {
    const edge = graph.edges.find(e => e.id === 'sample/client>sample/echo:http');
    expect(edge).toMatchObject({
      protocol: 'http',
      reporter: 'waypoint',
      requestsPerSecond: 10,
      mtls: true,
      health: 'degraded',
    });
    expect(edge?.errorRate).toBeCloseTo(0.05);
  });

  it('uses the source reporter when the destination is out of the mesh, to a service node, without mTLS', () => {
    const edge = graph.edges.find(e => e.target === 'svc:legacy/db');
    expect(edge).toMatchObject({ protocol: 'tcp', reporter: 'source', bytesPerSecond: 120.5, mtls: false });
    expect(graph.nodes.find(n => n.id === 'svc:legacy/db')).toMatchObject({
      type: 'service',
      namespace: 'legacy',
    });
  });

  it('drops idle edges and edges outside the chosen namespaces', () => {
    expect(graph.edges.map(e => e.id)).toEqual([
      'sample/client>sample/echo:http',
      'sample/client>sample/echo:tcp',
      'sample/client>svc:legacy/db:tcp',
    ]);
  });

  it('has every workload of the chosen namespaces as a node with its mode, waypoints hidden by default', () => {
    expect(graph.nodes.filter(n => n.namespace === 'sample').map(n => [n.name, n.mode])).toEqual([
      ['client', 'L4'],
      ['echo', 'L7'],
    ]);
    const withWaypoints = buildGraph({
      namespaces: ['sample'],
      workloads,
      l4: [],
      l7: [],
      showWaypoints: true,
    });
    expect(withWaypoints.nodes.find(n => n.name === 'waypoint')?.type).toBe('waypoint');
  });

  it('hides the hops through a waypoint with the waypoint, and draws them when waypoints are shown', () => {
    const hop = (source: string, target: string): Sample => ({
      labels: {
        reporter: 'destination',
        source_workload_namespace: 'sample',
        source_workload: source,
        destination_workload_namespace: 'sample',
        destination_workload: target,
        connection_security_policy: 'mutual_tls',
      },
      value: 100,
    });
    const l4 = [hop('client', 'waypoint'), hop('waypoint', 'echo')];
    const l7 = recorded('prometheus-l7.json');
    const hidden = buildGraph({ namespaces: ['sample'], workloads, l4, l7 });
    expect(hidden.edges.map(e => e.id)).toEqual(['sample/client>sample/echo:http']);
    expect(hidden.nodes.some(n => n.name === 'waypoint')).toBe(false);
    const shown = buildGraph({ namespaces: ['sample'], workloads, l4, l7, showWaypoints: true });
    expect(shown.edges.map(e => e.id)).toEqual([
      'sample/client>sample/echo:http',
      'sample/client>sample/waypoint:tcp',
      'sample/waypoint>sample/echo:tcp',
    ]);
  });

  it('keeps the nodes and says why when metrics are unavailable', () => {
    const down = buildGraph({
      namespaces: ['sample'],
      workloads,
      l4: [],
      l7: [],
      metricsUnavailable: { code: 'METRICS_UNAVAILABLE', message: 'down' },
    });
    expect(down.edges).toEqual([]);
    expect(down.nodes.length).toBeGreaterThan(0);
    expect(down.metricsUnavailable?.code).toBe('METRICS_UNAVAILABLE');
  });
});

describe('edgeHealth', () => {
  it('follows Kiali tolerances: degraded from 0.1 %, failure from 20 %', () => {
    expect([0, 0.0009, 0.001, 0.19, 0.2, 1].map(edgeHealth)).toEqual([
      'healthy',
      'healthy',
      'degraded',
      'degraded',
      'failure',
      'failure',
    ]);
  });
});

describe('waypoint-level view: workloads grouped by the waypoint serving them', () => {
  it('groups by the service binding, and adds the waypoint node when it is drawn', () => {
    const hidden = buildGraph({ namespaces: ['sample'], workloads, l4: [], l7: [] });
    expect(hidden.waypointGroups).toEqual([
      {
        id: 'waypoint-group:sample/waypoint',
        namespace: 'sample',
        name: 'waypoint',
        exists: true,
        waypointNode: undefined,
        members: [{ id: 'sample/echo', labelledBy: 'service' }],
      },
    ]);
    const shown = buildGraph({ namespaces: ['sample'], workloads, l4: [], l7: [], showWaypoints: true });
    expect(shown.waypointGroups[0]?.waypointNode).toBe('sample/waypoint');
  });

  it('groups by namespace and workload bindings; use-waypoint=none and unbound workloads stay out', () => {
    const wp = (name: string) => ({
      metadata: { name, namespace: 'shop' },
      spec: { gatewayClassName: 'istio-waypoint' },
    });
    const base = sampleSnapshot();
    const pod = (name: string, labels: Record<string, string> = {}) => ({
      metadata: {
        name: `${name}-0`,
        namespace: 'shop',
        labels: { app: name, ...labels },
        ownerReferences: [{ kind: 'StatefulSet', name }],
      },
    });
    const snap: MeshSnapshot = {
      ...base,
      namespaces: [
        {
          metadata: {
            name: 'shop',
            labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'shared' },
          },
        },
        { metadata: { name: 'plain', labels: { 'istio.io/dataplane-mode': 'ambient' } } },
      ],
      pods: [
        pod('a'),
        pod('b'),
        pod('pinned-app', { 'istio.io/use-waypoint': 'pinned' }),
        pod('opted-out', { 'istio.io/use-waypoint': 'none' }),
        { ...pod('free'), metadata: { ...pod('free').metadata, namespace: 'plain' } },
      ],
      services: [],
      gateways: [wp('shared'), wp('pinned')],
    };
    const g = buildGraph({ namespaces: ['shop', 'plain'], workloads: workloadViews(snap), l4: [], l7: [] });
    expect(g.waypointGroups.map(x => [x.name, x.members.map(m => `${m.id}:${m.labelledBy}`)])).toEqual([
      ['pinned', ['shop/pinned-app:workload']],
      ['shared', ['shop/a:namespace', 'shop/b:namespace']],
    ]);
  });
});
