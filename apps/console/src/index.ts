// @ambient-mesh/console: the console's server, for embedding and tests.
export { build } from './app.ts';
export type { AppDeps, Bound } from './app.ts';
export { loadConfig, ENV, DEFAULT_PORT } from './config.ts';
export type { Config } from './config.ts';
export { buildGraph } from './graph.ts';
export { validate, ValidationCode } from './validations.ts';
export { controlPlaneView, namespaceViews, workloadViews } from './mesh-view.ts';
export { httpPrometheus, parseVectorResponse, l4Queries, l7Query } from './prometheus.ts';
export type { PrometheusClient, QueryResult, Sample } from './prometheus.ts';
export type { MeshSnapshot } from './snapshot.ts';
export { ConsoleErrorCode } from './errors.ts';
export type {
  ControlPlaneView,
  GraphEdge,
  GraphNode,
  GraphView,
  IstioConfigView,
  MeshMode,
  NamespaceView,
  OverviewView,
  Validation,
  WorkloadView,
} from './model.ts';
