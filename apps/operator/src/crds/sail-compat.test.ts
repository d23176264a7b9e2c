// Compatibility of deploy/operator/crds with the Sail operator's CRDs (release 1.27): the same
// names, scopes, versions, printer columns, defaults, enums and CEL rules, and every sample CR
// validates against both with the same defaulted result.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  OPERATOR_CRDS_DIR,
  celRules,
  loadCrds,
  sailCrdsDir,
  schemaAt,
  type CrdDocument,
  type CrdVersion,
  type JsonSchema,
} from './sail-crds.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const KINDS = ['Istio', 'IstioRevision', 'IstioRevisionTag', 'IstioCNI', 'ZTunnel'] as const;

interface Sample {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

function samples(file: string): Sample[] {
  return parseAllDocuments(readFileSync(join(HERE, 'testdata', file), 'utf8')).map(d => d.toJS() as Sample);
}

function version(crd: CrdDocument, name: string): CrdVersion {
  const found = crd.spec.versions.find(v => v.name === name);
  if (found === undefined) throw new Error(`${crd.metadata.name} has no version ${name}`);
  return found;
}

const ajv = new Ajv({ strict: false, validateFormats: false, useDefaults: true, allErrors: true });
const compiled = new Map<JsonSchema, ValidateFunction>();
function validator(schema: JsonSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** Validates a copy of `cr` (defaults applied, as the apiserver does) and returns it. */
function admit(crd: CrdDocument, cr: Sample): { valid: boolean; defaulted: Sample; errors: string[] } {
  const defaulted = structuredClone(cr);
  const fn = validator(version(crd, cr.apiVersion.split('/')[1] ?? '').schema.openAPIV3Schema);
  const valid = fn(defaulted);
  return { valid, defaulted, errors: (fn.errors ?? []).map(e => `${e.instancePath} ${e.message ?? ''}`) };
}

/** Dotted paths (outside arrays) of the schema nodes under `schema` that carry a default. */
function defaultPaths(schema: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (child.default !== undefined) out.push(path);
    out.push(...defaultPaths(child, path));
  }
  return out;
}

const sailDir = sailCrdsDir(process.env);

describe('operator CRDs', () => {
  it('are generated from scripts/generate-crds.mjs (no hand edits)', () => {
    expect(() =>
      execFileSync(process.execPath, [join(HERE, '..', '..', 'scripts', 'generate-crds.mjs'), '--check'], {
        stdio: 'pipe',
      }),
    ).not.toThrow();
  });

  it('declare the five sailoperator.io kinds', () => {
    const ours = loadCrds(OPERATOR_CRDS_DIR);
    expect([...ours.keys()].sort()).toEqual([...KINDS].sort());
    for (const crd of ours.values()) expect(crd.spec.group).toBe('sailoperator.io');
  });
});

describe('compatibility with the Sail operator CRDs', () => {
  let ours: Map<string, CrdDocument>;
  let sail: Map<string, CrdDocument>;

  beforeAll(() => {
    if (sailDir === undefined) {
      throw new Error(
        'Sail CRDs not found: expected shared/crds beside the repository, or set SAIL_CRDS_DIR',
      );
    }
    ours = loadCrds(OPERATOR_CRDS_DIR);
    sail = loadCrds(sailDir);
  });

  const pair = (kind: string): [CrdDocument, CrdDocument] => {
    const o = ours.get(kind);
    const s = sail.get(kind);
    if (o === undefined || s === undefined) throw new Error(`missing ${kind}`);
    return [o, s];
  };

  it.each(KINDS)('%s has Sail’s names, scope and versions', kind => {
    const [o, s] = pair(kind);
    expect(o.metadata.name).toBe(s.metadata.name);
    expect(o.spec.scope).toBe(s.spec.scope);
    expect(o.spec.names).toEqual(s.spec.names);
    const shape = (c: CrdDocument) =>
      c.spec.versions.map(v => ({
        name: v.name,
        served: v.served,
        storage: v.storage,
        deprecated: v.deprecated ?? false,
      }));
    expect(shape(o)).toEqual(shape(s));
  });

  it.each(KINDS)('%s has Sail’s printer columns', kind => {
    const [o, s] = pair(kind);
    const columns = (v: CrdVersion) =>
      (v.additionalPrinterColumns ?? []).map(c => ({ name: c.name, jsonPath: c.jsonPath, type: c.type }));
    for (const v of s.spec.versions) expect(columns(version(o, v.name)), v.name).toEqual(columns(v));
  });

  it.each(KINDS)('%s has Sail’s CEL rules outside spec.values', kind => {
    const [o, s] = pair(kind);
    for (const v of s.spec.versions) {
      const skip = ['spec.values'];
      expect(celRules(version(o, v.name).schema.openAPIV3Schema, skip), v.name).toEqual(
        celRules(v.schema.openAPIV3Schema, skip),
      );
    }
  });

  it.each(KINDS)('%s has Sail’s spec fields, defaults, required lists and enums', kind => {
    const [o, s] = pair(kind);
    for (const v of s.spec.versions) {
      const oSpec = schemaAt(version(o, v.name).schema.openAPIV3Schema, 'spec');
      const sSpec = schemaAt(v.schema.openAPIV3Schema, 'spec');
      expect(Object.keys(oSpec?.properties ?? {}).sort()).toEqual(
        Object.keys(sSpec?.properties ?? {}).sort(),
      );
      expect(oSpec?.default).toEqual(sSpec?.default);
      expect(oSpec?.required).toEqual(sSpec?.required);
      for (const [field, sField] of Object.entries(sSpec?.properties ?? {})) {
        const oField = oSpec?.properties?.[field];
        expect(oField?.default, `${v.name} spec.${field}.default`).toEqual(sField.default);
        // An enum's order carries no meaning (Sail's own lists differ in order between kinds).
        const sorted = (e: readonly unknown[] | undefined) =>
          e === undefined ? undefined : [...e].map(String).sort();
        expect(sorted(oField?.enum), `${v.name} spec.${field}.enum`).toEqual(sorted(sField.enum));
        if (field === 'values' && oField !== undefined) {
          expect(Object.keys(oField.properties ?? {}).sort()).toEqual(
            Object.keys(sField.properties ?? {}).sort(),
          );
          // Every default Sail sets in the values subset we type, we set too.
          for (const path of defaultPaths(sField)) {
            const mine = schemaAt(oField, path);
            if (mine !== undefined)
              expect(mine.default, `${v.name} values.${path}`).toEqual(schemaAt(sField, path)?.default);
          }
        }
      }
      const status = (c: JsonSchema | undefined) => Object.keys(c?.properties ?? {}).sort();
      expect(status(schemaAt(version(o, v.name).schema.openAPIV3Schema, 'status'))).toEqual(
        status(schemaAt(v.schema.openAPIV3Schema, 'status')),
      );
    }
  });

  it.each(
    samples('sail-samples.yaml').map(cr => [`${cr.apiVersion} ${cr.kind}/${cr.metadata.name}`, cr] as const),
  )('sample %s is valid for both and defaults the same', (_label, cr) => {
    const [o, s] = pair(cr.kind);
    const theirs = admit(s, cr);
    const mine = admit(o, cr);
    expect(theirs.errors).toEqual([]);
    expect(mine.errors).toEqual([]);
    expect(mine.defaulted).toEqual(theirs.defaulted);
  });

  it.each(samples('sail-invalid.yaml').map(cr => [`${cr.kind}/${cr.metadata.name}`, cr] as const))(
    'invalid sample %s is refused by both',
    (_label, cr) => {
      const [o, s] = pair(cr.kind);
      expect(admit(s, cr).valid).toBe(false);
      expect(admit(o, cr).valid).toBe(false);
    },
  );
});
