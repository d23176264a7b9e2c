/**
 * The console API's domain types: what the backend computes and the browser draws. Types only, no
 * runtime imports, so the web bundle shares them (`src/web` imports this file as types).
 */

/** How a workload takes part in the mesh, as Kiali badges it. */
export type MeshMode = 'L7' | 'L4' | 'sidecar' | 'out-of-mesh';

/** Which object's `istio.io/use-waypoint` label binds a workload or service to its waypoint. */
export type LabelledBy = 'workload' | 'service' | 'namespace';

export interface WaypointRef {
  readonly name: string;
  readonly namespace: string;
  readonly labelledBy: LabelledBy;
  /** A Gateway of class `istio-waypoint` with this name exists. */
  readonly exists: boolean;
}

export interface NamespaceView {
  readonly name: string;
  /** `istio.io/dataplane-mode=ambient` on the namespace. */
  readonly ambient: boolean;
  readonly workloads: number;
  /** The namespace's own `istio.io/use-waypoint`, if any. */
  readonly waypoint: WaypointRef | undefined;
}

export interface ControlPlaneView {
  readonly namespace: string;
  /** ztunnel runs (at least one ztunnel pod): the mesh is in ambient mode. */
  readonly ambient: boolean;
  readonly ztunnels: readonly ZtunnelPod[];
  readonly istiodPods: number;
}

export interface ZtunnelPod {
  readonly name: string;
  readonly namespace: string;
  readonly node: string | undefined;
  readonly ready: boolean;
}

export interface WorkloadView {
  readonly namespace: string;
  readonly name: string;
  /** Where the name comes from: the owning controller, or the pod itself. */
  readonly kind: string;
  readonly pods: number;
  readonly mode: MeshMode;
  /** Redirection installed on every pod (`ambient.istio.io/redirection=enabled`). */
  readonly redirected: boolean;
  /** The waypoint serving it (workload label, else a selecting service's, else the namespace's). */
  readonly waypoint: WaypointRef | undefined;
  readonly isWaypoint: boolean;
  readonly isZtunnel: boolean;
}

export type Severity = 'error' | 'warning' | 'info';

/** One ambient validation finding, with Kiali's KIA13xx code. */
export interface Validation {
  readonly code: string;
  readonly severity: Severity;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly message: string;
}

export type EdgeProtocol = 'tcp' | 'http';
export type EdgeHealth = 'healthy' | 'degraded' | 'failure';

export interface GraphNode {
  /** `<namespace>/<workload>`, or `svc:<namespace>/<service>` for a service with no known workload. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly type: 'workload' | 'service' | 'waypoint' | 'unknown';
  readonly mode: MeshMode | undefined;
}

export interface GraphEdge {
  /** `<source>><target>:<protocol>`: an L4 and an L7 edge between the same nodes both exist. */
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly protocol: EdgeProtocol;
  /** L4 (from ztunnel): bytes per second, sent plus received. */
  readonly bytesPerSecond: number;
  /** L7 (from a waypoint): requests per second and the share answered with 4xx/5xx. */
  readonly requestsPerSecond: number;
  readonly errorRate: number;
  readonly health: EdgeHealth;
  /** Every series of the edge reported `connection_security_policy="mutual_tls"`. */
  readonly mtls: boolean;
  /** Which reporter the numbers come from: `destination`/`source` (ztunnel) or `waypoint`. */
  readonly reporter: string;
  /** Where the edge's telemetry came from, and the PromQL behind it ("edge explain"). */
  readonly explain: EdgeExplain;
}

/** An edge's provenance: the proxy that reported it and the queries that reproduce its numbers. */
export interface EdgeExplain {
  /** `ztunnel` for L4 (`istio_tcp_*`), `waypoint` for L7 (`istio_requests_total`). */
  readonly component: 'ztunnel' | 'waypoint';
  readonly reporter: string;
  /** What the reporter means, in words. */
  readonly summary: string;
  /** The reporting proxies' pods (Prometheus's `pod` target label), when the series carry it. */
  readonly pods: readonly string[];
  /** PromQL narrowed to this edge; running it in Prometheus gives the edge's rate. */
  readonly promql: readonly string[];
}

/** One AuthorizationPolicy as it bears on an edge. */
export interface EdgePolicyRow {
  readonly namespace: string;
  readonly name: string;
  /** ALLOW, DENY, AUDIT or CUSTOM. */
  readonly action: string;
  /** Its rules match this connection (L4) or the request shape (L7); undefined: not evaluated. */
  readonly matches: boolean | undefined;
  /** How it applies (scope, attachment) or why it does not. */
  readonly note: string;
}

/** The HTTP request an edge's L7 policies are decided for. */
export interface EdgeRequest {
  readonly method: string;
  readonly path: string;
  /** `:authority`; by default the destination's first Service hostname. */
  readonly host: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Which AuthorizationPolicies apply to an edge's source → destination, and ztunnel's decision. */
export interface EdgePoliciesView {
  readonly source: string;
  readonly target: string;
  /** The source workload's SPIFFE identity (its pods' ServiceAccount). */
  readonly sourceIdentity: string | undefined;
  /** The identity the destination's ztunnel authenticates: the source's, or its waypoint's. */
  readonly peerIdentity: string | undefined;
  /** Who that peer is, in words. */
  readonly peer: string;
  readonly port: number;
  /** The waypoint serving the destination, when it exists. */
  readonly waypoint: WaypointRef | undefined;
  /** ztunnel's L4 decision at the destination. */
  readonly verdict: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly summary: string;
  readonly decidingPolicy: string | undefined;
  /** PeerAuthentication for the destination: STRICT denies plaintext (a source outside the mesh). */
  readonly mtls: {
    readonly strict: boolean;
    /** The PeerAuthentications that apply (`ns/name`). */
    readonly peerAuthentications: readonly string[];
    /** The source connects in plaintext (it is outside the mesh, or unknown). */
    readonly plaintext: boolean;
    readonly summary: string;
  };
  /** The waypoint's decision for `request`, when a waypoint serves the destination. */
  readonly l7Verdict:
    | {
        /** `ns/name` of the waypoint that enforces the L7 policies. */
        readonly enforcedBy: string;
        readonly request: EdgeRequest;
        readonly verdict: 'ALLOW' | 'DENY';
        readonly reason: string;
        readonly summary: string;
        readonly decidingPolicy: string | undefined;
      }
    | undefined;
  /** ztunnel's and the waypoint's decisions together: DENY when either denies. */
  readonly overall: 'ALLOW' | 'DENY';
  /** Policies ztunnel evaluates for the destination, in its order. */
  readonly l4: readonly EdgePolicyRow[];
  /** Policies the destination's waypoint enforces (targetRef to it, its Service or the class). */
  readonly l7: readonly EdgePolicyRow[];
  /** Policies in scope that are not applied (malformed, dry-run, CUSTOM/AUDIT for ztunnel). */
  readonly notApplied: readonly EdgePolicyRow[];
}

/** The graph's traffic filter: every edge, only ztunnel's L4 (TCP) or only waypoints' L7 (HTTP). */
export type TrafficFilter = 'all' | 'tcp' | 'http';

/** Metrics could not be read; the graph says so instead of drawing nothing. */
export interface MetricsUnavailable {
  readonly code: 'METRICS_UNAVAILABLE';
  readonly message: string;
}

export interface GraphView {
  readonly namespaces: readonly string[];
  readonly traffic: TrafficFilter;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** Set when Prometheus could not answer: nodes come from Kubernetes alone, edges are empty. */
  readonly metricsUnavailable: MetricsUnavailable | undefined;
  /** The waypoint-level view: workload nodes grouped by the waypoint serving them. */
  readonly waypointGroups: readonly WaypointGroup[];
}

export interface WaypointGroupMember {
  /** A workload node's id. */
  readonly id: string;
  /** Which `istio.io/use-waypoint` label binds it: the workload's, a Service's or the namespace's. */
  readonly labelledBy: LabelledBy;
}

/** One waypoint and the graph's workload nodes it serves. */
export interface WaypointGroup {
  /** `waypoint-group:<namespace>/<name>`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  /** A Gateway of class `istio-waypoint` with this name exists. */
  readonly exists: boolean;
  /** The waypoint's own node id, when it is drawn ("Show waypoints"). */
  readonly waypointNode: string | undefined;
  readonly members: readonly WaypointGroupMember[];
}

export interface OverviewView {
  readonly controlPlane: ControlPlaneView;
  readonly namespaces: readonly NamespaceView[];
}

export interface ConfigObjectView {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly conditions: readonly {
    readonly type: string;
    readonly status: string;
    readonly reason?: string;
    readonly message?: string;
  }[];
  readonly validations: readonly Validation[];
  /** The object does not convert to a valid policy: what is wrong, field by field. */
  readonly error: ConfigError | undefined;
}

/** A config object in the cluster that is malformed (it passed the CRD schema, not Istio's rules). */
export interface ConfigError {
  readonly code: 'CONSOLE_CONFIG_INVALID';
  readonly message: string;
  readonly fields: readonly { readonly path: string; readonly message: string }[];
}

export interface EnrolledService {
  readonly namespace: string;
  readonly name: string;
  readonly labelledBy: LabelledBy;
}

export interface EnrolledWorkload {
  readonly namespace: string;
  readonly name: string;
  readonly kind: string;
  readonly pods: number;
  readonly labelledBy: LabelledBy;
}

/** A waypoint (a Gateway of class `istio-waypoint`) and what it serves. */
export interface WaypointView {
  readonly namespace: string;
  readonly name: string;
  /** `istio.io/waypoint-for` on the Gateway (`service` when unset, as istiod defaults it). */
  readonly waypointFor: string;
  /** The Gateway's `Programmed` condition, if istiod wrote one. */
  readonly programmed:
    { readonly status: string; readonly reason?: string; readonly message?: string } | undefined;
  /** Its proxies' pods, and how many are Ready. */
  readonly pods: number;
  readonly readyPods: number;
  /** Its proxies' pod names. */
  readonly proxyPods: readonly string[];
  readonly services: readonly EnrolledService[];
  readonly workloads: readonly EnrolledWorkload[];
  /** Its proxies' xDS sync state from istiod (`/api/waypoints` fills it). */
  readonly sync?: WaypointSyncView;
}

/** One waypoint proxy's xDS sync state, as `istioctl proxy-status` shows it. */
export interface WaypointProxySync {
  readonly pod: string;
  /** False when no istiod lists this proxy among its xDS streams. */
  readonly connected: boolean;
  readonly istiod: string | undefined;
  /** Short type name (`CDS`, `LDS`, ...) to `SYNCED`, `STALE`, `NOT SENT` or `ERROR`. */
  readonly types: Readonly<Record<string, string>>;
}

export interface WaypointSyncView {
  readonly proxies: readonly WaypointProxySync[];
  /** The sync state could not be read from any istiod. */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

export type LogSource = 'app' | 'ztunnel' | 'waypoint';

export interface LogLine {
  /** RFC 3339 from the kubelet (`timestamps=true`); lines are ordered by it. */
  readonly time: string;
  readonly source: LogSource;
  readonly pod: string;
  readonly text: string;
}

/** A workload's app log merged with the ztunnel and waypoint lines about it. */
export interface LogsView {
  readonly namespace: string;
  readonly workload: string;
  readonly lines: readonly LogLine[];
  /** Pods whose log could not be read (the rest is still shown). */
  readonly errors: readonly { readonly source: LogSource; readonly pod: string; readonly message: string }[];
}

export interface IstioConfigView {
  readonly objects: readonly ConfigObjectView[];
  /** Every finding, including those about workloads and namespaces rather than config objects. */
  readonly validations: readonly Validation[];
}

/** One pod of a workload: where it runs, whether ztunnel captures it, and that node's ztunnel. */
export interface PodView {
  readonly name: string;
  readonly node: string | undefined;
  readonly ip: string | undefined;
  readonly ready: boolean;
  /** HBONE when ztunnel's redirection is installed in the pod, else plain TCP. */
  readonly protocol: 'HBONE' | 'TCP';
  /** The ztunnel on the pod's node (its detail page), if one runs there. */
  readonly ztunnel: ZtunnelPod | undefined;
}

export interface WorkloadDetailView {
  readonly workload: WorkloadView;
  readonly pods: readonly PodView[];
  /** Services selecting its pods. */
  readonly services: readonly string[];
}

export interface ServiceView {
  readonly namespace: string;
  readonly name: string;
  /** The Service's (or its namespace's) waypoint. */
  readonly waypoint: WaypointRef | undefined;
  /** Workloads whose pods it selects. */
  readonly workloads: readonly string[];
}

/** ztunnel's `/config_dump`, as `istioctl ztunnel-config` and Kiali's ztunnel tab show it. */
export interface ZtunnelWorkloadRow {
  readonly namespace: string;
  readonly name: string;
  readonly workloadName: string;
  readonly ips: readonly string[];
  readonly node: string;
  readonly protocol: string;
  readonly serviceAccount: string;
  readonly waypoint: string | undefined;
  readonly status: string;
}

export interface ZtunnelServiceRow {
  readonly namespace: string;
  readonly name: string;
  readonly hostname: string;
  readonly vips: readonly string[];
  /** `port -> targetPort` pairs. */
  readonly ports: readonly string[];
  readonly endpoints: number;
  readonly healthyEndpoints: number;
  readonly waypoint: string | undefined;
}

export interface ZtunnelPolicyRow {
  readonly namespace: string;
  readonly name: string;
  readonly scope: string;
  readonly action: string;
  readonly rules: number;
  readonly dryRun: boolean;
}

export interface ZtunnelCertificateRow {
  readonly identity: string;
  readonly state: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
  /** Certificates in the chain (leaf first) and roots. */
  readonly chain: number;
  readonly roots: number;
}

export interface ZtunnelFilter {
  /** Only rows of this namespace (`--workload-namespace`). */
  readonly namespace: string | undefined;
  /** Only workloads on the ztunnel's own node (`--node`). */
  readonly thisNode: boolean;
  /** Case-insensitive substring of a row's name, namespace, address or identity. */
  readonly search: string | undefined;
}

export interface ZtunnelConfigView {
  readonly pod: ZtunnelPod;
  readonly filter: ZtunnelFilter;
  readonly workloads: readonly ZtunnelWorkloadRow[];
  readonly services: readonly ZtunnelServiceRow[];
  readonly policies: readonly ZtunnelPolicyRow[];
  readonly certificates: readonly ZtunnelCertificateRow[];
  /** Row counts before the filter. */
  readonly totals: {
    readonly workloads: number;
    readonly services: number;
    readonly policies: number;
    readonly certificates: number;
  };
  /** The config dump could not be read: what to check (the rest of the page still shows the pod). */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

/** L4: ztunnel's telemetry; L7: a waypoint's. */
export type TelemetryLayer = 'L4' | 'L7';

export interface MetricSeries {
  readonly id: string;
  readonly layer: TelemetryLayer;
  readonly reporter: string;
  readonly label: string;
  readonly promql: string;
  /** [unix seconds, value] */
  readonly points: readonly (readonly [number, number])[];
}

export interface MetricChart {
  readonly id:
    | 'request_rate'
    | 'error_rate'
    | 'latency'
    | 'tcp_sent'
    | 'tcp_received'
    | 'tcp_opened'
    | 'tcp_closed'
    | 'memory'
    | 'cpu';
  readonly title: string;
  readonly unit: 'req/s' | 'ratio' | 'ms' | 'B/s' | 'conn/s' | 'bytes' | 'cores';
  readonly series: readonly MetricSeries[];
}

export interface MetricsView {
  /** `ztunnel`: one ztunnel pod's own traffic (Kiali's ztunnel Metrics tab), by its `pod` label. */
  readonly kind: 'workload' | 'service' | 'ztunnel';
  readonly namespace: string;
  readonly name: string;
  readonly direction: 'inbound' | 'outbound';
  /** The range: `duration` seconds back from `end`, one point every `step` seconds. */
  readonly end: number;
  readonly duration: number;
  readonly step: number;
  readonly window: string;
  readonly charts: readonly MetricChart[];
  readonly metricsUnavailable: MetricsUnavailable | undefined;
}

/** A workload, as a span's end resolves to one. */
export interface WorkloadRef {
  readonly namespace: string;
  readonly name: string;
}

/** No tracing backend is configured, or it could not answer. */
export interface TracingUnavailable {
  readonly code: 'TRACING_NOT_CONFIGURED' | 'TRACING_UNAVAILABLE';
  readonly message: string;
}

/** One span of a waypoint, with its ends resolved to workloads (which Kiali cannot do in ambient). */
export interface SpanView {
  readonly traceId: string;
  readonly spanId: string;
  readonly operation: string;
  /** The span's service name (the waypoint, `<name>.<namespace>`). */
  readonly proxy: string;
  /** Unix milliseconds. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly statusCode: number | undefined;
  readonly error: boolean;
  /** The calling workload (the span's downstream `peer.address`), when known. */
  readonly source: WorkloadRef | undefined;
  /** The called workload (`upstream_address`, else `upstream_cluster`'s Service), when known. */
  readonly destination: WorkloadRef | undefined;
}

export interface TracesView {
  readonly namespace: string;
  readonly workload: string;
  /** The waypoint serving the workload, as a tracing service name (`<name>.<namespace>`), if any. */
  readonly service: string | undefined;
  /** Every tracing service asked (that waypoint first, then the others). */
  readonly services: readonly string[];
  readonly spans: readonly SpanView[];
  readonly tracingUnavailable: TracingUnavailable | undefined;
  /** Why there can be no spans (no waypoint runs). */
  readonly note?: string;
}
