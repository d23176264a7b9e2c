// The topology graph: workloads as nodes, L4 edges (blue, from ztunnel) and L7 edges (green,
// orange or red by error rate, from waypoints), double edges where both exist, each labelled with
// its rate and "mTLS" when both ends authenticated. Laid out by @patternfly/react-topology's Dagre layout.
// A traffic filter (all, TCP from ztunnel, HTTP from waypoints) is applied by the backend; clicking an
// edge opens its explanation: which proxy reported it (ztunnel or waypoint, and its pods) and the
// PromQL behind its numbers, both computed by the backend, and the AuthorizationPolicies that apply to
// its source → destination with ztunnel's verdict (the backend runs the policy engine on live state).
import {
  Alert,
  Button,
  Card,
  CardBody,
  CardTitle,
  Checkbox,
  Flex,
  FlexItem,
  Label,
  PageSection,
  Spinner,
  Title,
  ToggleGroup,
  ToggleGroupItem,
} from '@patternfly/react-core';
import {
  DagreLayout,
  GraphComponent,
  GridLayout,
  ModelKind,
  Visualization,
  VisualizationProvider,
  VisualizationSurface,
  observer,
  withPanZoom,
} from '@patternfly/react-topology';
import type {
  ComponentFactory,
  Edge,
  GraphElement,
  LayoutFactory,
  Model,
  Node,
} from '@patternfly/react-topology';
import { Component, createContext, useContext, useEffect, useMemo, useState } from 'react';
import type { ComponentType, ReactNode } from 'react';
import type {
  EdgePolicyRow,
  GraphEdge,
  GraphNode,
  GraphView,
  TrafficFilter,
  WaypointGroup,
} from '../model.ts';
import { useEdgePolicies, useGraph, useOverview, type EdgeRequestInput } from './api.ts';
import { FlexCheckbox } from './controls.tsx';

export const EDGE_COLORS = {
  tcp: '#0066cc',
  healthy: '#3e8635',
  degraded: '#ec7a08',
  failure: '#c9190b',
} as const;
const NODE_SIZE = 44;

export function edgeColor(e: GraphEdge): string {
  return e.protocol === 'tcp' ? EDGE_COLORS.tcp : EDGE_COLORS[e.health];
}

export function edgeLabel(e: GraphEdge): string {
  const lock = e.mtls ? 'mTLS · ' : '';
  if (e.protocol === 'tcp') return `${lock}${formatBytes(e.bytesPerSecond)}/s`;
  const errors = e.errorRate > 0 ? ` ${(e.errorRate * 100).toFixed(1)}% err` : '';
  return `${lock}${e.requestsPerSecond.toFixed(2)} rps${errors}`;
}

function formatBytes(n: number): string {
  if (n >= 1_048_576) return `${(n / 1_048_576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n.toFixed(0)} B`;
}

const ConsoleNode = observer(({ element }: { element: GraphElement }) => {
  const node = element as Node;
  const d = node.getData() as GraphNode;
  const { width, height } = node.getDimensions();
  const fill = d.type === 'waypoint' ? '#f0f0f0' : d.type === 'service' ? '#e7f1fa' : '#ffffff';
  return (
    <g data-testid="graph-node" data-id={d.id} data-mode={d.mode ?? ''} data-type={d.type}>
      <circle
        cx={width / 2}
        cy={height / 2}
        r={width / 2}
        fill={fill}
        stroke={d.mode === undefined ? '#8a8d90' : '#151515'}
        strokeWidth={1.5}
      />
      <text x={width / 2} y={height / 2 + 4} textAnchor="middle" fontSize={11} fontWeight={600}>
        {d.type === 'waypoint' ? 'WP' : d.type === 'service' ? 'svc' : (d.mode ?? '?')}
      </text>
      <text x={width / 2} y={height + 14} textAnchor="middle" fontSize={12}>
        {d.name}
      </text>
      <text x={width / 2} y={height + 27} textAnchor="middle" fontSize={10} fill="#6a6e73">
        {d.namespace}
      </text>
    </g>
  );
});

/** The waypoint-level view: a box around the workloads one waypoint serves (and its own node). */
const WaypointGroupBox = observer(({ element }: { element: GraphElement }) => {
  const node = element as Node;
  const d = node.getData() as WaypointGroup;
  const b = node.getBounds();
  return (
    <g
      data-testid="waypoint-group"
      data-id={d.id}
      data-waypoint={`${d.namespace}/${d.name}`}
      data-members={d.members.map(m => m.id).join(',')}
    >
      <rect
        x={b.x}
        y={b.y}
        width={b.width}
        height={b.height}
        rx={14}
        fill="#f3faf2"
        stroke={d.exists ? EDGE_COLORS.healthy : EDGE_COLORS.failure}
        strokeDasharray="6 4"
        strokeWidth={1.5}
      />
      <text x={b.x + 4} y={b.y - 8} fontSize={12} fontWeight={600} fill="#1e4f18">
        waypoint {d.namespace}/{d.name}
        {d.exists ? '' : ' (missing)'}
      </text>
    </g>
  );
});

/** The graph page's edge selection, reaching the edges the topology library renders. */
const EdgeSelection = createContext<{
  readonly selected: string | undefined;
  readonly select: (id: string) => void;
}>({
  selected: undefined,
  select: () => undefined,
});

const ConsoleEdge = observer(({ element }: { element: GraphElement }) => {
  const selection = useContext(EdgeSelection);
  const edge = element as Edge;
  const d = edge.getData() as GraphEdge;
  const s = edge.getStartPoint();
  const t = edge.getEndPoint();
  // Two protocols between the same nodes: draw them side by side (Kiali's double edge).
  const offset = d.protocol === 'tcp' ? -5 : 5;
  const dx = t.x - s.x;
  const dy = t.y - s.y;
  const len = Math.hypot(dx, dy) || 1;
  const ox = (-dy / len) * offset;
  const oy = (dx / len) * offset;
  const [x1, y1, x2, y2] = [s.x + ox, s.y + oy, t.x + ox, t.y + oy];
  const ux = dx / len;
  const uy = dy / len;
  const arrow = `${x2},${y2} ${x2 - ux * 10 - uy * 5},${y2 - uy * 10 + ux * 5} ${x2 - ux * 10 + uy * 5},${y2 - uy * 10 - ux * 5}`;
  const color = edgeColor(d);
  const rate = d.protocol === 'tcp' ? d.bytesPerSecond : d.requestsPerSecond;
  return (
    <g
      data-testid="graph-edge"
      data-protocol={d.protocol}
      data-source={d.source}
      data-target={d.target}
      data-rate={rate}
      data-color={color}
      data-mtls={String(d.mtls)}
      data-selected={String(selection.selected === d.id)}
      style={{ cursor: 'pointer' }}
      onClick={e => {
        e.stopPropagation();
        selection.select(d.id);
      }}
    >
      {/* A wide transparent stroke: the edge is easy to click. */}
      <path d={`M${x1},${y1} L${x2},${y2}`} stroke="transparent" strokeWidth={12} />
      <line
        x1={x1}
        y1={y1}
        x2={x2}
        y2={y2}
        stroke={color}
        strokeWidth={selection.selected === d.id ? 4 : 2}
      />
      <polygon points={arrow} fill={color} />
      <text
        x={(x1 + x2) / 2 + ox * 2}
        y={(y1 + y2) / 2 + oy * 2 + (d.protocol === 'tcp' ? -4 : 12)}
        textAnchor="middle"
        fontSize={11}
        fill={color}
      >
        {edgeLabel(d)}
      </text>
    </g>
  );
});

const componentFactory: ComponentFactory = (kind, type) => {
  if (kind === ModelKind.graph) return withPanZoom()(GraphComponent);
  if (type === 'waypoint-group') return WaypointGroupBox as ComponentType<{ element: GraphElement }>;
  if (kind === ModelKind.node) return ConsoleNode as ComponentType<{ element: GraphElement }>;
  return ConsoleEdge as ComponentType<{ element: GraphElement }>;
};

/**
 * Dagre draws small graphs well but its cost grows steeply with edges: 200 workloads and 1,500 edges
 * take minutes (and overflow the browser's stack). Above these sizes the graph is laid out in a grid,
 * which is immediate; the page says so.
 */
export const DAGRE_MAX_NODES = 80;
export const DAGRE_MAX_EDGES = 300;

export function layoutFor(view: GraphView): 'Dagre' | 'Grid' {
  return view.nodes.length > DAGRE_MAX_NODES || view.edges.length > DAGRE_MAX_EDGES ? 'Grid' : 'Dagre';
}

const layoutFactory: LayoutFactory = (type, graph) =>
  type === 'Grid'
    ? new GridLayout(graph, { nodeDistance: 40 })
    : new DagreLayout(graph, { rankdir: 'LR', ranksep: 160, nodesep: 60, edgesep: 30 });

export function toModel(view: GraphView, waypointView = false): Model {
  const ids = new Set(view.nodes.map(n => n.id));
  const groups = waypointView
    ? view.waypointGroups.map(g => ({
        id: g.id,
        type: 'waypoint-group',
        group: true,
        children: [
          ...g.members.map(m => m.id),
          ...(g.waypointNode === undefined ? [] : [g.waypointNode]),
        ].filter(id => ids.has(id)),
        style: { padding: 36 },
        data: g,
      }))
    : [];
  return {
    graph: { id: 'console-graph', type: 'graph', layout: layoutFor(view) },
    nodes: [
      ...view.nodes.map(n => ({ id: n.id, type: 'node', width: NODE_SIZE, height: NODE_SIZE, data: n })),
      ...groups,
    ],
    edges: view.edges.map(e => ({ id: e.id, type: 'edge', source: e.source, target: e.target, data: e })),
  };
}

/** A layout or drawing failure shows its reason instead of a blank page. */
class GraphErrorBoundary extends Component<{ readonly children: ReactNode }, { error: Error | undefined }> {
  override state: { error: Error | undefined } = { error: undefined };
  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }
  override render(): ReactNode {
    if (this.state.error !== undefined) {
      return (
        <Alert variant="danger" title="Cannot draw the graph" isInline data-testid="graph-failed">
          {this.state.error.message}. Choose fewer namespaces.
        </Alert>
      );
    }
    return this.props.children;
  }
}

function Topology({ view, waypointView }: { readonly view: GraphView; readonly waypointView: boolean }) {
  const controller = useMemo(() => {
    const c = new Visualization();
    c.registerComponentFactory(componentFactory);
    c.registerLayoutFactory(layoutFactory);
    c.fromModel({ graph: { id: 'console-graph', type: 'graph', layout: 'Dagre' } }, false);
    return c;
  }, []);
  const shape =
    view.nodes.map(n => n.id).join(',') +
    '|' +
    view.edges.map(e => e.id).join(',') +
    (waypointView ? '|' + view.waypointGroups.map(g => `${g.id}=${g.members.length}`).join(',') : '');
  useEffect(() => {
    controller.fromModel(toModel(view, waypointView), false);
    controller.getGraph().layout();
    const id = requestAnimationFrame(() => {
      controller.getGraph().fit(60);
    });
    return () => {
      cancelAnimationFrame(id);
    };
    // Re-layout only when nodes or edges change, not on every refresh of the rates.
  }, [controller, shape]);
  useEffect(() => {
    controller.fromModel(toModel(view, waypointView), true);
  }, [controller, view, waypointView]);
  return (
    <VisualizationProvider controller={controller}>
      <VisualizationSurface state={{}} />
    </VisualizationProvider>
  );
}

const TRAFFIC: readonly { readonly id: TrafficFilter; readonly text: string }[] = [
  { id: 'all', text: 'All traffic' },
  { id: 'tcp', text: 'TCP (ztunnel, L4)' },
  { id: 'http', text: 'HTTP (waypoint, L7)' },
];

function PolicyRows({ rows, testId }: { readonly rows: readonly EdgePolicyRow[]; readonly testId: string }) {
  return (
    <ul style={{ margin: '2px 0 4px 18px' }}>
      {rows.map(p => (
        <li
          key={`${p.namespace}/${p.name}`}
          data-testid={testId}
          data-policy={`${p.namespace}/${p.name}`}
          data-action={p.action}
          data-matches={p.matches === undefined ? '' : String(p.matches)}
        >
          <Label isCompact color={p.action === 'DENY' ? 'red' : p.action === 'ALLOW' ? 'green' : 'grey'}>
            {p.action}
          </Label>{' '}
          <strong>
            {p.namespace}/{p.name}
          </strong>
          : {p.note}
        </li>
      ))}
    </ul>
  );
}

function EdgePolicies({ edge }: { readonly edge: GraphEdge }) {
  // The request shape the waypoint's L7 rules are decided for; applied on "Evaluate".
  const [draft, setDraft] = useState<EdgeRequestInput>({ method: 'GET', path: '/', header: '' });
  const [request, setRequest] = useState<EdgeRequestInput>(draft);
  const { data, error } = useEdgePolicies(edge.source, edge.target, request);
  if (error !== null) {
    return (
      <div data-testid="edge-policies" data-verdict="unknown">
        Policies: {error.message}
      </div>
    );
  }
  if (data === undefined) return <Spinner size="sm" aria-label="loading the policies" />;
  const l7 = data.l7Verdict;
  return (
    <div
      data-testid="edge-policies"
      data-verdict={data.verdict}
      data-overall={data.overall}
      style={{ marginTop: 8 }}
    >
      <div>
        Verdict:{' '}
        <Label color={data.overall === 'ALLOW' ? 'green' : 'red'} data-testid="edge-overall">
          {data.overall}
        </Label>
      </div>
      <div
        data-testid="edge-mtls"
        data-strict={String(data.mtls.strict)}
        data-plaintext={String(data.mtls.plaintext)}
      >
        mTLS (PeerAuthentication
        {data.mtls.peerAuthentications.length === 0 ? '' : ` ${data.mtls.peerAuthentications.join(', ')}`}
        ): {data.mtls.summary}
      </div>
      <div>
        Authorization at the destination's ztunnel (port {data.port}, peer{' '}
        <code>{data.peerIdentity ?? 'no identity'}</code>, {data.peer}):{' '}
        <Label color={data.verdict === 'ALLOW' ? 'green' : 'red'} data-testid="edge-verdict">
          {data.verdict}
        </Label>{' '}
        {data.summary}
      </div>
      {data.l4.length === 0 && <div>No L4 policy applies to the destination.</div>}
      {data.l4.length > 0 && <PolicyRows rows={data.l4} testId="edge-policy-l4" />}
      {l7 !== undefined && (
        <div
          data-testid="edge-l7-verdict"
          data-verdict={l7.verdict}
          data-waypoint={l7.enforcedBy}
          style={{ marginTop: 4 }}
        >
          <form
            aria-label="request shape"
            style={{ display: 'flex', gap: 4, alignItems: 'center', flexWrap: 'wrap' }}
            onSubmit={e => {
              e.preventDefault();
              setRequest(draft);
            }}
          >
            Request:
            <input
              aria-label="request method"
              size={6}
              value={draft.method}
              onChange={e => {
                setDraft({ ...draft, method: e.target.value });
              }}
            />
            <input
              aria-label="request path"
              size={18}
              value={draft.path}
              onChange={e => {
                setDraft({ ...draft, path: e.target.value });
              }}
            />
            <input
              aria-label="request header"
              placeholder="header: value"
              size={18}
              value={draft.header}
              onChange={e => {
                setDraft({ ...draft, header: e.target.value });
              }}
            />
            <Button type="submit" variant="secondary" size="sm">
              Evaluate
            </Button>
          </form>
          <div>
            L7 at the waypoint <strong>{l7.enforcedBy}</strong> for{' '}
            <code data-testid="edge-l7-request">
              {l7.request.method} {l7.request.host}
              {l7.request.path}
              {Object.entries(l7.request.headers)
                .map(([k, v]) => ` ${k}: ${v}`)
                .join('')}
            </code>
            :{' '}
            <Label color={l7.verdict === 'ALLOW' ? 'green' : 'red'} data-testid="edge-l7-verdict-label">
              {l7.verdict}
            </Label>{' '}
            {l7.summary}
          </div>
        </div>
      )}
      {data.l7.length > 0 && (
        <>
          <div>
            Enforced by the waypoint
            {data.waypoint === undefined ? '' : ` ${data.waypoint.namespace}/${data.waypoint.name}`} (L7):
          </div>
          <PolicyRows rows={data.l7} testId="edge-policy-l7" />
        </>
      )}
      {data.notApplied.length > 0 && (
        <>
          <div>In scope but not applied:</div>
          <PolicyRows rows={data.notApplied} testId="edge-policy-not-applied" />
        </>
      )}
    </div>
  );
}

function EdgeExplainPanel({ edge, onClose }: { readonly edge: GraphEdge; readonly onClose: () => void }) {
  const x = edge.explain;
  return (
    <Card
      isCompact
      data-testid="edge-explain"
      data-edge={edge.id}
      data-component={x.component}
      data-reporter={x.reporter}
      style={{ marginBottom: 8 }}
    >
      <CardTitle>
        <Flex justifyContent={{ default: 'justifyContentSpaceBetween' }}>
          <FlexItem>
            {edge.source} → {edge.target}{' '}
            <Label isCompact color={edge.protocol === 'tcp' ? 'blue' : 'green'}>
              {edge.protocol === 'tcp' ? 'TCP · L4' : 'HTTP · L7'}
            </Label>{' '}
            {edgeLabel(edge)}
          </FlexItem>
          <FlexItem>
            <Button variant="link" isInline onClick={onClose}>
              Close
            </Button>
          </FlexItem>
        </Flex>
      </CardTitle>
      <CardBody>
        <div>
          Reported by <strong data-testid="edge-component">{x.component}</strong> (
          <code>reporter="{x.reporter}"</code>): {x.summary}.
        </div>
        <div data-testid="edge-pods">
          Reporting pods: {x.pods.length === 0 ? 'not labelled in these series' : x.pods.join(', ')}
        </div>
        <div style={{ marginTop: 4 }}>PromQL behind this edge:</div>
        {x.promql.map(q => (
          <pre
            key={q}
            data-testid="edge-promql"
            style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all', fontSize: 12 }}
          >
            {q}
          </pre>
        ))}
        <EdgePolicies edge={edge} />
      </CardBody>
    </Card>
  );
}

export function GraphPage({
  initial,
  initialTraffic = 'all',
}: {
  readonly initial: readonly string[];
  readonly initialTraffic?: TrafficFilter;
}) {
  const overview = useOverview();
  const [namespaces, setNamespaces] = useState<readonly string[]>(initial);
  const [showWaypoints, setShowWaypoints] = useState(false);
  const [waypointView, setWaypointView] = useState(false);
  const [traffic, setTraffic] = useState<TrafficFilter>(initialTraffic);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const { data, error, isPending } = useGraph(namespaces, showWaypoints, traffic);
  const all = overview.data?.namespaces ?? [];
  const selectedEdge = data?.edges.find(e => e.id === selected);
  const selection = useMemo(() => ({ selected, select: setSelected }), [selected]);
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Traffic graph</Title>
        <Flex style={{ marginTop: 8 }}>
          {all.map(ns => (
            <FlexItem key={ns.name}>
              <Checkbox
                id={`ns-${ns.name}`}
                label={ns.name}
                isChecked={namespaces.includes(ns.name)}
                onChange={(_e, checked) => {
                  setNamespaces(checked ? [...namespaces, ns.name] : namespaces.filter(n => n !== ns.name));
                }}
              />
            </FlexItem>
          ))}
          <FlexCheckbox
            id="show-waypoints"
            label="Show waypoints"
            checked={showWaypoints}
            onChange={setShowWaypoints}
          />
          <FlexCheckbox
            id="waypoint-view"
            label="Waypoint view"
            checked={waypointView}
            onChange={setWaypointView}
          />
          <FlexItem>
            <ToggleGroup aria-label="traffic" data-testid="traffic-filter" data-traffic={traffic}>
              {TRAFFIC.map(t => (
                <ToggleGroupItem
                  key={t.id}
                  text={t.text}
                  buttonId={`traffic-${t.id}`}
                  isSelected={traffic === t.id}
                  onChange={() => {
                    setTraffic(t.id);
                    setSelected(undefined);
                  }}
                />
              ))}
            </ToggleGroup>
          </FlexItem>
          <FlexItem data-testid="legend">
            <span style={{ color: EDGE_COLORS.tcp }}>━ TCP (ztunnel, L4)</span> ·{' '}
            <span style={{ color: EDGE_COLORS.healthy }}>━ HTTP (waypoint, L7)</span> · mTLS: both ends
            authenticated · click an edge to see where its numbers come from
          </FlexItem>
        </Flex>
      </PageSection>
      <PageSection isFilled>
        {namespaces.length === 0 && <p>Choose a namespace.</p>}
        {isPending && namespaces.length > 0 && <Spinner aria-label="loading the graph" />}
        {error !== null && (
          <Alert variant="danger" title="Cannot load the graph" isInline>
            {error.message}
          </Alert>
        )}
        {data?.metricsUnavailable !== undefined && (
          <Alert variant="warning" title="Metrics unavailable" isInline data-testid="metrics-unavailable">
            The graph shows workloads without traffic: {data.metricsUnavailable.message}
          </Alert>
        )}
        {data !== undefined && layoutFor(data) === 'Grid' && (
          <Alert
            variant="info"
            isInline
            isPlain
            title="Large graph: laid out in a grid"
            data-testid="grid-layout"
          >
            {data.nodes.length} nodes and {data.edges.length} edges are more than the layered layout draws
            quickly ({DAGRE_MAX_NODES} nodes, {DAGRE_MAX_EDGES} edges); choose fewer namespaces for it.
          </Alert>
        )}
        {selectedEdge !== undefined && (
          <EdgeExplainPanel
            edge={selectedEdge}
            onClose={() => {
              setSelected(undefined);
            }}
          />
        )}
        {data !== undefined && (
          <div
            style={{ height: 'calc(100vh - 240px)', minHeight: 400, border: '1px solid #d2d2d2' }}
            data-traffic={data.traffic}
            data-testid="graph"
            data-nodes={data.nodes.length}
            data-edges={data.edges.length}
            data-layout={layoutFor(data)}
            data-waypoint-view={String(waypointView)}
          >
            <GraphErrorBoundary key={namespaces.join(',')}>
              <EdgeSelection.Provider value={selection}>
                <Topology view={data} waypointView={waypointView} />
              </EdgeSelection.Provider>
            </GraphErrorBoundary>
          </div>
        )}
      </PageSection>
    </>
  );
}
