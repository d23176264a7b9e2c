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
}

/** Metrics could not be read; the graph says so instead of drawing nothing. */
export interface MetricsUnavailable {
  readonly code: 'METRICS_UNAVAILABLE';
  readonly message: string;
}

export interface GraphView {
  readonly namespaces: readonly string[];
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** Set when Prometheus could not answer: nodes come from Kubernetes alone, edges are empty. */
  readonly metricsUnavailable: MetricsUnavailable | undefined;
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
  readonly services: readonly EnrolledService[];
  readonly workloads: readonly EnrolledWorkload[];
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
