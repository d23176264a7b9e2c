// Loading the operator's CustomResourceDefinitions (deploy/operator/crds) and the Sail operator's
// (shared/crds beside the repository, for compatibility checks), plus the schema walks the
// compatibility test compares them with.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** The parts of a CustomResourceDefinition the operator and its tests read. */
export interface CrdDocument {
  readonly metadata: { readonly name: string };
  readonly spec: {
    readonly group: string;
    readonly scope: string;
    readonly names: Readonly<Record<string, unknown>>;
    readonly versions: readonly CrdVersion[];
  };
}

export interface CrdVersion {
  readonly name: string;
  readonly served: boolean;
  readonly storage: boolean;
  readonly deprecated?: boolean;
  readonly additionalPrinterColumns?: readonly PrinterColumn[];
  readonly schema: { readonly openAPIV3Schema: JsonSchema };
}

export interface PrinterColumn {
  readonly name: string;
  readonly jsonPath: string;
  readonly type: string;
}

/** An OpenAPI v3 schema node as it appears in a CRD (the keywords read here). */
export interface JsonSchema {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly items?: JsonSchema;
  readonly additionalProperties?: JsonSchema | boolean;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly default?: unknown;
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly [keyword: string]: unknown;
}

export interface CelRule {
  readonly rule: string;
  readonly message?: string;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** deploy/operator/crds in this repository. */
export const OPERATOR_CRDS_DIR = join(REPO_ROOT, 'deploy', 'operator', 'crds');

const SAIL_RELEASE = 'sail-operator-release-1.27';

/**
 * Where Sail's CRDs are: `SAIL_CRDS_DIR`, else `shared/crds/<release>` beside the repository
 * (CI), else beside the folder holding the checkout (a git worktree). Undefined when absent. The
 * caller passes the environment (the compatibility test passes `process.env`).
 */
export function sailCrdsDir(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const candidates = [
    env['SAIL_CRDS_DIR'],
    join(REPO_ROOT, '..', 'shared', 'crds', SAIL_RELEASE),
    join(REPO_ROOT, '..', '..', 'shared', 'crds', SAIL_RELEASE),
  ];
  return candidates.find((dir): dir is string => dir !== undefined && existsSync(dir));
}

/** Every CRD in the YAML files of `dir`, keyed by kind. */
export function loadCrds(dir: string): Map<string, CrdDocument> {
  const byKind = new Map<string, CrdDocument>();
  for (const file of readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const crd = doc.toJS() as Partial<CrdDocument> | null;
      if (crd?.spec === undefined || crd.metadata === undefined) continue;
      byKind.set(String(crd.spec.names['kind']), crd as CrdDocument);
    }
  }
  return byKind;
}

/** A CEL rule with the schema path it is attached to ("" is the object root). */
export interface LocatedRule extends CelRule {
  readonly path: string;
}

/**
 * Every CEL rule in `schema`, skipping the subtrees whose path is in `skip` (for example
 * `spec.values`, whose Helm-values rules Sail generates from Istio's protos).
 */
export function celRules(schema: JsonSchema, skip: readonly string[] = [], path = ''): LocatedRule[] {
  if (skip.includes(path)) return [];
  const rules: LocatedRule[] = (schema['x-kubernetes-validations'] ?? []).map(r => ({
    path,
    rule: r.rule,
    ...(r.message === undefined ? {} : { message: r.message }),
  }));
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    rules.push(...celRules(child, skip, path === '' ? name : `${path}.${name}`));
  }
  if (schema.items !== undefined) rules.push(...celRules(schema.items, skip, `${path}[]`));
  return rules;
}

/** The schema node at a dotted property path, or undefined. */
export function schemaAt(schema: JsonSchema, path: string): JsonSchema | undefined {
  let node: JsonSchema | undefined = schema;
  for (const part of path.split('.')) node = node?.properties?.[part];
  return node;
}
