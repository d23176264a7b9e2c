// @ambient-mesh/operator: the Sail-compatible mesh operator's public surface (used by tests and tools).
export { OPERATOR_CRDS_DIR, celRules, loadCrds, sailCrdsDir, schemaAt } from './crds/sail-crds.ts';
export type {
  CelRule,
  CrdDocument,
  CrdVersion,
  JsonSchema,
  LocatedRule,
  PrinterColumn,
} from './crds/sail-crds.ts';
export { build, ownerFromLabel } from './app.ts';
export type { AppDeps, Bound, ReconciledKind } from './app.ts';
export { loadConfig, ENV } from './config.ts';
export type { Config } from './config.ts';
export { ComponentReconciler } from './component-reconciler.ts';
export type { ComponentKind, ComponentSpec, ReconcileResult } from './component-reconciler.ts';
export { API_VERSION, FIELD_MANAGER, FINALIZER, GROUP, OWNER_LABEL, sailPath } from './resources.ts';
export type { SailCondition, SailKind, SailObject, SailStatus } from './resources.ts';
export { activeRevisionName, desiredRevision, pruneRevisions, resolveVersion } from './revisions.ts';
export type { IstioRevisionSpec, IstioSpec, PruneDecision, RevisionUsage } from './revisions.ts';
export { renderCni, renderIstiod, renderZtunnel } from './render.ts';
export type { RenderTarget } from './render.ts';
export { ConditionType, Reason, istioStatus, componentStatus, stateOf } from './status.ts';
export { CNI_VALUES, ISTIO_VALUES, ZTUNNEL_VALUES, checkValues } from './values.ts';
export type { CniValues, IstioValues, ValuesProblem, ZtunnelValues } from './values.ts';
export {
  IstioReconciler,
  DEFAULT_ISTIOD_REPLICAS,
  meshConfigDocument,
  revisionObjects,
} from './istio-reconciler.ts';
export type { IstioReconcileResult } from './istio-reconciler.ts';
export { EVENTS_NAMESPACE, eventObject, transitions } from './events.ts';
export type { Transition } from './events.ts';
export { OperatorMetrics } from './metrics.ts';
