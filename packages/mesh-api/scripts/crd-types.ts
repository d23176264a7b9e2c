/**
 * Turns our CustomResourceDefinitions (`deploy/crds/*.yaml`) into TypeScript: one module per API
 * group with an interface per kind (the Kubernetes envelope around the spec) and per named part
 * of a spec, plus `crd-resources.ts`, the group, versions and plural of every kind. Pure: it reads
 * the CRDs and returns the files; `generate.ts` writes or checks them.
 *
 * The types come from each CRD's storage version (every served version must have the same schema)
 * through json-schema-to-typescript, after three adjustments of the OpenAPI schema:
 * - Kubernetes' extensions become JSON Schema: `x-kubernetes-preserve-unknown-fields` allows any
 *   other key, `x-kubernetes-int-or-string` is `number | string`; objects without it are closed
 *   (the apiserver prunes unknown fields), and CEL rules are dropped (they are not types);
 * - parts listed in {@link NAMES} get a title, so they become named, shared types (a name used
 *   twice in a group must describe the same shape);
 * - `metadata` is `ObjectMeta` (shaped like `V1ObjectMeta` of `@kubernetes/client-node`, see
 *   `src/kube-object.ts`), `apiVersion` and `kind` the literals the CRD serves.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { parse } from 'yaml';

export const PACKAGE_DIR = join(import.meta.dirname, '..');
export const CRD_DIR = join(PACKAGE_DIR, '..', '..', 'deploy', 'crds');
export const OUT_DIR = join(PACKAGE_DIR, 'src', 'generated');

/** The parts of a CRD this generator reads. */
export interface CrdDocument {
  readonly metadata: { readonly name: string };
  readonly spec: {
    readonly group: string;
    readonly scope: 'Namespaced' | 'Cluster';
    readonly names: { readonly kind: string; readonly plural: string; readonly singular?: string };
    readonly versions: readonly {
      readonly name: string;
      readonly served: boolean;
      readonly storage: boolean;
      readonly schema: { readonly openAPIV3Schema: Schema };
    }[];
  };
}

type Schema = Record<string, unknown>;

/**
 * Type names of spec (and status) parts, by kind and path (`[]` is an array's items, `{}` a map's values).
 * Every kind's `spec` is `<Kind>Spec` without being listed. Istio's proto message names where
 * they do not clash across groups.
 */
/**
 * The type name (interface and `CrdResource` key) of a CRD whose kind another group also defines;
 * every other CRD is named by its kind.
 */
export const TYPE_NAMES: Readonly<Record<string, string>> = {
  'gateways.networking.istio.io': 'IstioGateway',
};

function typeName(crd: CrdDocument): string {
  return TYPE_NAMES[crd.metadata.name] ?? crd.spec.names.kind;
}

export const NAMES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  AuthorizationPolicy: {
    'spec.selector': 'WorkloadSelector',
    'spec.targetRef': 'PolicyTargetReference',
    'spec.targetRefs[]': 'PolicyTargetReference',
    'spec.action': 'AuthorizationAction',
    'spec.provider': 'AuthorizationProvider',
    'spec.rules[]': 'PolicyRule',
    'spec.rules[].from[]': 'PolicyRuleFrom',
    'spec.rules[].from[].source': 'PolicySource',
    'spec.rules[].to[]': 'PolicyRuleTo',
    'spec.rules[].to[].operation': 'PolicyOperation',
    'spec.rules[].when[]': 'PolicyCondition',
  },
  PeerAuthentication: {
    'spec.selector': 'WorkloadSelector',
    'spec.mtls': 'MutualTls',
    'spec.mtls.mode': 'MtlsMode',
    'spec.portLevelMtls{}': 'MutualTls',
    'spec.portLevelMtls{}.mode': 'MtlsMode',
  },
  RequestAuthentication: {
    'spec.selector': 'WorkloadSelector',
    'spec.targetRef': 'PolicyTargetReference',
    'spec.targetRefs[]': 'PolicyTargetReference',
    'spec.jwtRules[]': 'JwtRule',
    'spec.jwtRules[].fromHeaders[]': 'JwtHeader',
    'spec.jwtRules[].outputClaimToHeaders[]': 'ClaimToHeader',
  },
  ServiceEntry: {
    'spec.ports[]': 'ServiceEntryPort',
    'spec.location': 'ServiceEntryLocation',
    'spec.resolution': 'ServiceEntryResolution',
    'spec.endpoints[]': 'WorkloadEntrySpec',
    'spec.workloadSelector': 'ServiceEntryWorkloadSelector',
  },
  WorkloadEntry: {},
  Gateway: {
    'spec.listeners[]': 'GatewayListener',
    'spec.listeners[].allowedRoutes': 'AllowedRoutes',
    'spec.listeners[].allowedRoutes.namespaces.selector': 'LabelSelector',
    'spec.addresses[]': 'GatewaySpecAddress',
    'status.addresses[]': 'GatewayStatusAddress',
  },
  GatewayClass: {},
};

/** Keywords that shape a TypeScript type; the rest (descriptions, bounds, patterns) do not. */
const SHAPE_KEYS = new Set([
  'type',
  'properties',
  'items',
  'required',
  'additionalProperties',
  'enum',
  'tsType',
]);

const PRETTIER = { singleQuote: true, arrowParens: 'avoid', printWidth: 110, trailingComma: 'all' } as const;

export function readCrds(dir: string = CRD_DIR): { file: string; crd: CrdDocument }[] {
  return readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .sort()
    .map(file => ({ file, crd: parse(readFileSync(join(dir, file), 'utf8')) as CrdDocument }));
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function storageVersion(crd: CrdDocument): CrdDocument['spec']['versions'][number] {
  const storage = crd.spec.versions.filter(v => v.storage);
  if (storage.length !== 1) throw new Error(`${crd.metadata.name}: expected one storage version`);
  const version = storage[0]!;
  const text = JSON.stringify(version.schema);
  for (const v of crd.spec.versions) {
    if (v.served && JSON.stringify(v.schema) !== text) {
      throw new Error(
        `${crd.metadata.name}: version ${v.name} has another schema than ${version.name}; ` +
          'the generator describes one schema per kind',
      );
    }
  }
  return version;
}

/** OpenAPI (structural, with Kubernetes extensions) → the JSON Schema json-schema-to-typescript reads. */
function toJsonSchema(node: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-')) continue;
    if (key === 'properties' && isSchema(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => [name, toJsonSchema(sub as Schema)]),
      );
    } else if ((key === 'items' || key === 'additionalProperties') && isSchema(value)) {
      out[key] = toJsonSchema(value);
    } else {
      out[key] = value;
    }
  }
  if (node['x-kubernetes-int-or-string'] === true) out['tsType'] = 'number | string';
  if (node['type'] === 'object' && out['additionalProperties'] === undefined) {
    out['additionalProperties'] = node['x-kubernetes-preserve-unknown-fields'] === true;
  }
  return out;
}

function shape(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(shape);
  if (!isSchema(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (!SHAPE_KEYS.has(key)) continue;
    out[key] =
      key === 'properties' && isSchema(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]))
        : shape(value);
  }
  return out;
}

/** The named parts of one group: the first schema seen under a name is the one emitted. */
class NamedParts {
  readonly #byName = new Map<string, { schema: Schema; shape: string; where: string }>();

  /** Returns the schema to use at `where`: the one already named `name`, or `schema` titled. */
  name(name: string, schema: Schema, where: string): Schema {
    const seen = this.#byName.get(name);
    const s = JSON.stringify(shape(schema));
    if (seen !== undefined) {
      if (seen.shape !== s)
        throw new Error(`${where} and ${seen.where} are both ${name} but differ in shape`);
      return seen.schema;
    }
    const titled = { ...schema, title: name };
    this.#byName.set(name, { schema: titled, shape: s, where });
    return titled;
  }
}

/** Titles the parts of `schema` listed for `kind`, walking its properties, items and maps. */
function nameParts(kind: string, schema: Schema, path: string, parts: NamedParts, used: Set<string>): Schema {
  const out: Schema = { ...schema };
  const props = schema['properties'];
  if (isSchema(props)) {
    out['properties'] = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, nameParts(kind, v as Schema, `${path}.${k}`, parts, used)]),
    );
  }
  if (isSchema(schema['items'])) {
    out['items'] = nameParts(kind, schema['items'], `${path}[]`, parts, used);
  }
  if (isSchema(schema['additionalProperties'])) {
    out['additionalProperties'] = nameParts(kind, schema['additionalProperties'], `${path}{}`, parts, used);
  }
  const name = path === 'spec' ? `${kind}Spec` : NAMES[kind]?.[path];
  if (name === undefined) return out;
  used.add(path);
  return parts.name(name, out, `${kind} ${path}`);
}

/** `security.istio.io` → `security-istio-io.ts`. */
export function groupModule(group: string): string {
  return `${group.replaceAll('.', '-')}.ts`;
}

function banner(files: readonly string[], what: string): string {
  return [
    `// generated by scripts/generate.ts from ${files.map(f => `deploy/crds/${f}`).join(', ')}; do not edit`,
    `// ${what}`,
  ].join('\n');
}

async function renderGroup(
  group: string,
  crds: readonly { file: string; crd: CrdDocument }[],
): Promise<string> {
  const parts = new NamedParts();
  const kinds: Schema = {};
  // A kind whose spec another kind embeds goes first, so its spec (with its description) is the one named.
  const embedded = new Set(Object.values(NAMES).flatMap(n => Object.values(n)));
  const ordered = [...crds].sort(
    (a, b) =>
      Number(!embedded.has(`${typeName(a.crd)}Spec`)) - Number(!embedded.has(`${typeName(b.crd)}Spec`)),
  );
  for (const { crd } of ordered) {
    const kind = typeName(crd);
    const root = toJsonSchema(storageVersion(crd).schema.openAPIV3Schema);
    const props = isSchema(root['properties']) ? root['properties'] : {};
    const used = new Set<string>();
    const spec = isSchema(props['spec']) ? nameParts(kind, props['spec'], 'spec', parts, used) : undefined;
    const apiVersions = crd.spec.versions.filter(v => v.served).map(v => `${group}/${v.name}`);
    const properties: Schema = {
      apiVersion: { type: 'string', enum: apiVersions },
      kind: { type: 'string', enum: [crd.spec.names.kind] },
      metadata: { tsType: 'ObjectMeta' },
    };
    if (spec !== undefined) properties['spec'] = spec;
    if (isSchema(props['status']))
      properties['status'] = nameParts(kind, props['status'], 'status', parts, used);
    const unused = Object.keys(NAMES[kind] ?? {}).filter(p => !used.has(p));
    if (unused.length > 0)
      throw new Error(`${kind}: NAMES lists paths the schema lacks: ${unused.join(', ')}`);
    kinds[kind] = {
      title: kind,
      description: `\`${apiVersions.join('`, `')}\` ${crd.spec.names.kind}, as read from and written to the Kubernetes API.`,
      type: 'object',
      properties,
      required: Array.isArray(root['required']) ? root['required'] : [],
      additionalProperties: false,
    };
  }
  const ROOT = 'GeneratedRoot';
  const root: JSONSchema = { title: ROOT, type: 'object', properties: kinds as JSONSchema['properties'] };
  const ts = await compile({ ...root, additionalProperties: false }, ROOT, {
    bannerComment: '',
    additionalProperties: false,
    format: true,
    style: PRETTIER,
    strictIndexSignatures: false,
    unknownAny: true,
    ignoreMinAndMaxItems: true,
  });
  // The root only gathers the kinds into one compilation; drop it.
  const body = ts
    .replace(new RegExp(`^export interface ${ROOT} \\{\\n[\\s\\S]*?^\\}\\n`, 'm'), '')
    .trimStart();
  if (body.includes(ROOT)) throw new Error(`${group}: could not drop the ${ROOT} interface`);
  return [
    banner(
      crds.map(c => c.file),
      `The ${group} kinds and the named parts of their specs.`,
    ),
    "import type { ObjectMeta } from '../kube-object.ts';",
    '',
    body,
  ].join('\n');
}

function renderResources(crds: readonly { file: string; crd: CrdDocument }[]): string {
  const lines = [
    banner(
      crds.map(c => c.file),
      'The group, served versions (storage version first) and plural of every kind we define CRDs for.',
    ),
    '',
    'export const CrdResource = {',
  ];
  for (const { crd } of [...crds].sort((a, b) => typeName(a.crd).localeCompare(typeName(b.crd)))) {
    const storage = storageVersion(crd).name;
    const versions = [
      storage,
      ...crd.spec.versions.filter(v => v.served && v.name !== storage).map(v => v.name),
    ];
    lines.push(
      `  ${typeName(crd)}: {`,
      `    group: '${crd.spec.group}',`,
      `    version: '${storage}',`,
      `    versions: [${versions.map(v => `'${v}'`).join(', ')}],`,
      `    kind: '${crd.spec.names.kind}',`,
      `    plural: '${crd.spec.names.plural}',`,
      `    namespaced: ${crd.spec.scope === 'Namespaced'},`,
      '  },',
    );
  }
  lines.push('} as const;', '', 'export type CrdKind = keyof typeof CrdResource;', '');
  return lines.join('\n');
}

/** Every generated file, by path under `src/generated/`. */
export async function generate(dir: string = CRD_DIR): Promise<Map<string, string>> {
  const crds = readCrds(dir);
  const groups = new Map<string, { file: string; crd: CrdDocument }[]>();
  for (const c of crds) {
    const list = groups.get(c.crd.spec.group) ?? [];
    list.push(c);
    groups.set(c.crd.spec.group, list);
  }
  const files = new Map<string, string>();
  files.set('crd-resources.ts', renderResources(crds));
  for (const [group, list] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    files.set(groupModule(group), await renderGroup(group, list));
  }
  return files;
}
