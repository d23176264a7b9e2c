/**
 * Builds the topology graph from Prometheus samples, as a pure function.
 *
 * - L4 edges (`tcp`, drawn blue) come from ztunnel's `istio_tcp_*` bytes. ztunnel reports each
 *   connection twice (as `source` on the client's node and `destination` on the server's): the
 *   destination's numbers are used when it reported, else the source's, so nothing counts twice.
 * - L7 edges (`http`, drawn green/orange/red) come from `istio_requests_total{reporter="waypoint"}`.
 *   Both can exist between the same two nodes: the graph then has a double edge.
 * - Waypoint nodes are drawn only on request (`showWaypoints`); hidden, the client -> waypoint and
 *   waypoint -> server hops are dropped too, and the waypoint's own L7 edge client -> server stays.
 * - The traffic filter (`tcp`: ztunnel's L4 edges only, `http`: waypoints' L7 edges only) drops
 *   the other protocol's edges; nodes stay (Kiali's Ambient traffic: ztunnel / waypoint).
 * - Each edge explains itself: the reporting proxy (ztunnel or waypoint, and its pods when the
 *   series carry Prometheus's `pod` target label) and the PromQL that reproduces its numbers.
 * - Idle edges (rate 0) are dropped, as Kiali does by default. Edges touching none of the chosen
 *   namespaces are dropped; nodes are every workload of the chosen namespaces plus each edge's ends.
 */
import type {
  EdgeExplain,
  EdgeHealth,
  GraphEdge,
  GraphNode,
  GraphView,
  MetricsUnavailable,
  TrafficFilter,
  WaypointGroup,
  WaypointGroupMember,
  WaypointRef,
  WorkloadView,
} from './model.ts';
import {
  l4EdgeQueries,
  l7EdgeQueries,
  REPORTING_POD_LABEL,
  type EdgeEnds,
  type Sample,
} from './prometheus.ts';

const UNKNOWN = 'unknown';
/** Kiali's default edge health tolerances: degraded from 0.1 % errors, failure from 20 %. */
const DEGRADED_ERROR_RATE = 0.001;
const FAILURE_ERROR_RATE = 0.2;

export interface GraphInput {
  readonly namespaces: readonly string[];
  readonly workloads: readonly WorkloadView[];
  readonly l4: readonly Sample[];
  readonly l7: readonly Sample[];
  readonly metricsUnavailable?: MetricsUnavailable | undefined;
  /** Draw waypoint workloads as nodes (Kiali's "Waypoint Proxies" display option). */
  readonly showWaypoints?: boolean;
  /** Which edges to keep (default all). */
  readonly traffic?: TrafficFilter;
  /** The rate window of the queries (for the edges' PromQL; default 1m). */
  readonly window?: string;
}

interface End {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly type: GraphNode['type'];
}

const known = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== UNKNOWN;

function sourceEnd(l: Readonly<Record<string, string>>): End {
  const ns = l.source_workload_namespace;
  const name = l.source_workload;
  if (known(ns) && known(name)) return { id: `${ns}/${name}`, namespace: ns, name, type: 'workload' };
  return { id: UNKNOWN, namespace: '', name: UNKNOWN, type: 'unknown' };
}

function destinationEnd(l: Readonly<Record<string, string>>): End {
  const wns = l.destination_workload_namespace;
  const w = l.destination_workload;
  if (known(wns) && known(w)) return { id: `${wns}/${w}`, namespace: wns, name: w, type: 'workload' };
  const sns = l.destination_service_namespace;
  const s = l.destination_service_name;
  if (known(sns) && known(s)) return { id: `svc:${sns}/${s}`, namespace: sns, name: s, type: 'service' };
  return { id: UNKNOWN, namespace: '', name: UNKNOWN, type: 'unknown' };
}

export function edgeHealth(errorRate: number): EdgeHealth {
  if (errorRate >= FAILURE_ERROR_RATE) return 'failure';
  if (errorRate >= DEGRADED_ERROR_RATE) return 'degraded';
  return 'healthy';
}

interface Acc {
  source: End;
  target: End;
  value: number;
  errors: number;
  mtls: boolean;
  pods: Set<string>;
}

function accumulate(
  into: Map<string, Acc>,
  key: string,
  source: End,
  target: End,
  sample: Sample,
  error: boolean,
): void {
  const acc = into.get(key) ?? { source, target, value: 0, errors: 0, mtls: true, pods: new Set<string>() };
  acc.value += sample.value;
  const pod = sample.labels[REPORTING_POD_LABEL];
  if (pod !== undefined && pod !== '') acc.pods.add(pod);
  if (error) acc.errors += sample.value;
  if (sample.labels.connection_security_policy !== 'mutual_tls') acc.mtls = false;
  into.set(key, acc);
}

function ends(acc: Acc): EdgeEnds {
  return {
    source: { namespace: acc.source.namespace, name: acc.source.name, known: acc.source.type !== 'unknown' },
    target: { namespace: acc.target.namespace, name: acc.target.name, type: acc.target.type },
  };
}

const REPORTER_SUMMARY: Readonly<Record<string, string>> = {
  destination: "ztunnel on the destination's node: L4 bytes of the connections it accepted over HBONE",
  source:
    "ztunnel on the source's node: L4 bytes of the connections it opened; used because no destination ztunnel reported (a destination outside the mesh)",
  waypoint:
    'the waypoint proxy: L7 requests it routed, by response code (ztunnel sees connections, not requests)',
};

function explain(
  component: EdgeExplain['component'],
  reporter: string,
  acc: Acc,
  window: string,
): EdgeExplain {
  return {
    component,
    reporter,
    summary: REPORTER_SUMMARY[reporter] ?? `reporter="${reporter}"`,
    pods: [...acc.pods].sort(),
    promql:
      component === 'ztunnel' ? l4EdgeQueries(ends(acc), reporter, window) : l7EdgeQueries(ends(acc), window),
  };
}

export function buildGraph(input: GraphInput): GraphView {
  const chosen = new Set(input.namespaces);
  const traffic = input.traffic ?? 'all';
  const window = input.window ?? '1m';
  const touches = (a: End, b: End): boolean => chosen.has(a.namespace) || chosen.has(b.namespace);

  // L4: per reporter, then the destination's view wins.
  const l4ByReporter = new Map<string, Map<string, Acc>>();
  for (const sample of traffic === 'http' ? [] : input.l4) {
    const source = sourceEnd(sample.labels);
    const target = destinationEnd(sample.labels);
    if (!touches(source, target)) continue;
    const reporter = sample.labels.reporter ?? 'destination';
    const byEdge = l4ByReporter.get(reporter) ?? new Map<string, Acc>();
    accumulate(byEdge, `${source.id}>${target.id}`, source, target, sample, false);
    l4ByReporter.set(reporter, byEdge);
  }
  const l4 = new Map<string, { acc: Acc; reporter: string }>();
  for (const reporter of ['source', 'destination']) {
    for (const [key, acc] of l4ByReporter.get(reporter) ?? []) l4.set(key, { acc, reporter });
  }

  const l7 = new Map<string, Acc>();
  for (const sample of traffic === 'tcp' ? [] : input.l7) {
    const source = sourceEnd(sample.labels);
    const target = destinationEnd(sample.labels);
    if (!touches(source, target)) continue;
    const code = sample.labels.response_code ?? '';
    accumulate(
      l7,
      `${source.id}>${target.id}`,
      source,
      target,
      sample,
      code.startsWith('4') || code.startsWith('5'),
    );
  }

  // Kiali's "Waypoint Proxies" display option: hidden waypoints take their hops' edges with them.
  const waypoints = new Set(input.workloads.filter(w => w.isWaypoint).map(w => `${w.namespace}/${w.name}`));
  const hidden = (acc: Acc): boolean =>
    input.showWaypoints !== true && (waypoints.has(acc.source.id) || waypoints.has(acc.target.id));
  for (const [key, v] of l4) if (hidden(v.acc)) l4.delete(key);
  for (const [key, acc] of l7) if (hidden(acc)) l7.delete(key);

  const edges: GraphEdge[] = [];
  for (const [key, { acc, reporter }] of l4) {
    if (acc.value <= 0) continue;
    edges.push({
      id: `${key}:tcp`,
      source: acc.source.id,
      target: acc.target.id,
      protocol: 'tcp',
      bytesPerSecond: acc.value,
      requestsPerSecond: 0,
      errorRate: 0,
      health: 'healthy',
      mtls: acc.mtls,
      reporter,
      explain: explain('ztunnel', reporter, acc, window),
    });
  }
  for (const [key, acc] of l7) {
    if (acc.value <= 0) continue;
    const errorRate = acc.errors / acc.value;
    edges.push({
      id: `${key}:http`,
      source: acc.source.id,
      target: acc.target.id,
      protocol: 'http',
      bytesPerSecond: 0,
      requestsPerSecond: acc.value,
      errorRate,
      health: edgeHealth(errorRate),
      mtls: acc.mtls,
      reporter: 'waypoint',
      explain: explain('waypoint', 'waypoint', acc, window),
    });
  }
  edges.sort((a, b) => a.id.localeCompare(b.id));

  const modes = new Map<string, WorkloadView>(input.workloads.map(w => [`${w.namespace}/${w.name}`, w]));
  const nodes = new Map<string, GraphNode>();
  const addNode = (end: End): void => {
    if (nodes.has(end.id)) return;
    const w = modes.get(end.id);
    nodes.set(end.id, {
      id: end.id,
      namespace: end.namespace,
      name: end.name,
      type: w?.isWaypoint === true ? 'waypoint' : end.type,
      mode: w?.mode,
    });
  };
  for (const w of input.workloads) {
    if (!chosen.has(w.namespace) || w.isZtunnel) continue;
    if (w.isWaypoint && input.showWaypoints !== true) continue;
    addNode({ id: `${w.namespace}/${w.name}`, namespace: w.namespace, name: w.name, type: 'workload' });
  }
  for (const acc of [...[...l4.values()].map(v => v.acc), ...l7.values()]) {
    if (acc.value <= 0) continue;
    addNode(acc.source);
    addNode(acc.target);
  }

  return {
    namespaces: [...input.namespaces].sort(),
    traffic,
    nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)),
    edges,
    metricsUnavailable: input.metricsUnavailable,
    waypointGroups: waypointGroups(input.workloads, nodes),
  };
}

/**
 * The waypoint-level view: the graph's workload nodes grouped by the waypoint serving them (the
 * binding that `istio.io/use-waypoint` makes on the workload, a selecting Service or the
 * namespace), with the waypoint's own node when it is drawn. Workloads with no waypoint are in no
 * group.
 */
export function waypointGroups(
  workloads: readonly WorkloadView[],
  nodes: ReadonlyMap<string, GraphNode>,
): WaypointGroup[] {
  const groups = new Map<string, { ref: WaypointRef; members: WaypointGroupMember[] }>();
  for (const w of workloads) {
    const id = `${w.namespace}/${w.name}`;
    if (w.waypoint === undefined || !nodes.has(id)) continue;
    const key = `${w.waypoint.namespace}/${w.waypoint.name}`;
    const g = groups.get(key) ?? { ref: w.waypoint, members: [] };
    g.members.push({ id, labelledBy: w.waypoint.labelledBy });
    groups.set(key, g);
  }
  return [...groups.entries()]
    .map(([key, g]) => ({
      id: `waypoint-group:${key}`,
      namespace: g.ref.namespace,
      name: g.ref.name,
      exists: g.ref.exists,
      waypointNode: nodes.get(key)?.type === 'waypoint' ? key : undefined,
      members: g.members.sort((a, b) => a.id.localeCompare(b.id)),
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}
