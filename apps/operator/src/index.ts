// @ambient-mesh/operator: the Sail-compatible mesh operator's public surface (used by tests and tools).
export { OPERATOR_CRDS_DIR, celRules, loadCrds, sailCrdsDir, schemaAt } from './crds/sail-crds.ts';
export type { CelRule, CrdDocument, CrdVersion, JsonSchema, LocatedRule, PrinterColumn } from './crds/sail-crds.ts';
