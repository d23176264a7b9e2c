/**
 * Generates `src/generated/` from the `.proto` files under `proto/`.
 *
 *   npm run generate           # rewrite src/generated/
 *   npm run check-generated    # rewrite, then fail if git sees a change under src/generated/
 *
 * The protos are loaded with protobufjs reflection (the well-known google.protobuf types come from
 * protobufjs's built-in common protos). The output is:
 * - `descriptor.ts`: the JSON descriptor the runtime loads with `Root.fromJSON` (no .proto reading
 *   at run time, so the package works from `dist`);
 * - one module per proto package with a decoded interface and an `Init` interface per message and
 *   an `as const` object plus a union type per enum;
 * - `registry.ts`: every message's full name mapped to its decoded and Init types.
 *
 * The decoded interfaces describe what `Type.toObject` returns with the options in
 * `src/decode-options.ts`: camelCase names, scalars/repeated/maps always present, singular
 * messages `T | null`, oneof members optional plus the virtual oneof-case property.
 */
import { dirname, join, relative } from 'node:path';
import protobuf from 'protobufjs';
import { writeOrCheckGenerated } from '../../../tools/generated-files.ts';

const PACKAGE_DIR = join(import.meta.dirname, '..');
const PROTO_DIR = join(PACKAGE_DIR, 'proto');
const OUT_DIR = join(PACKAGE_DIR, 'src', 'generated');

/** Entry files; their imports are followed. */
const PROTO_FILES = [
  'istio/workload/workload.proto',
  'istio/workload/zds.proto',
  'istio/security/authorization.proto',
  'istio/v1/auth/ca.proto',
  'envoy/config/core/v3/base.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/status/v3/csds.proto',
  'google/rpc/status.proto',
];

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBER_TYPES = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // google/protobuf/* stays unresolved so protobufjs serves its built-in common protos.
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target);
  root.loadSync(PROTO_FILES, { keepCase: false, alternateCommentMode: true });
  root.resolveAll();
  return root;
}

/** A proto package: a namespace that directly holds messages, enums or services. */
interface ProtoPackage {
  readonly fullName: string;
  readonly types: protobuf.Type[];
  readonly enums: protobuf.Enum[];
  readonly sources: Set<string>;
}

function collectPackages(root: protobuf.Root): Map<string, ProtoPackage> {
  const packages = new Map<string, ProtoPackage>();
  const visit = (ns: protobuf.NamespaceBase, pkg: ProtoPackage | null): void => {
    for (const child of ns.nestedArray) {
      if (
        child instanceof protobuf.Type ||
        child instanceof protobuf.Enum ||
        child instanceof protobuf.Service
      ) {
        const owner = pkg ?? packageOf(packages, ns);
        if (child instanceof protobuf.Type) owner.types.push(child);
        if (child instanceof protobuf.Enum) owner.enums.push(child);
        if (child.filename) owner.sources.add(sourceName(child.filename));
        if (child instanceof protobuf.Type) visit(child, owner);
      } else if (child instanceof protobuf.Namespace) {
        visit(child, null);
      }
    }
  };
  visit(root, null);
  return packages;
}

function packageOf(packages: Map<string, ProtoPackage>, ns: protobuf.NamespaceBase): ProtoPackage {
  const fullName = ns.fullName.replace(/^\./, '');
  let pkg = packages.get(fullName);
  if (!pkg) {
    pkg = { fullName, types: [], enums: [], sources: new Set() };
    packages.set(fullName, pkg);
  }
  return pkg;
}

function sourceName(filename: string): string {
  if (filename.startsWith(PROTO_DIR)) return 'proto/' + relative(PROTO_DIR, filename);
  return `protobufjs's built-in ${filename}`;
}

/** `istio.workload` → `istio/workload.ts` (relative to src/generated). */
function modulePath(pkgName: string): string {
  return pkgName.split('.').join('/') + '.ts';
}

/** `istio.workload` → `istio_workload`, the alias used to import another package's types. */
function moduleAlias(pkgName: string): string {
  return pkgName.replace(/\./g, '_');
}

function fullNameOf(obj: protobuf.ReflectionObject): string {
  return obj.fullName.replace(/^\./, '');
}

/** The TS name of a message or enum inside its package: nested names joined with `_`. */
function localName(obj: protobuf.ReflectionObject, pkgName: string): string {
  return fullNameOf(obj)
    .slice(pkgName.length + 1)
    .split('.')
    .join('_');
}

function packageNameOf(obj: protobuf.ReflectionObject, packages: Map<string, ProtoPackage>): string {
  let parent = obj.parent;
  while (parent && parent instanceof protobuf.Type) parent = parent.parent;
  const name = parent ? fullNameOf(parent) : '';
  if (!packages.has(name)) throw new Error(`BUG: no package for ${obj.fullName}`);
  return name;
}

class ModuleWriter {
  readonly pkg: ProtoPackage;
  readonly packages: Map<string, ProtoPackage>;
  readonly imports = new Set<string>();
  readonly lines: string[] = [];

  constructor(pkg: ProtoPackage, packages: Map<string, ProtoPackage>) {
    this.pkg = pkg;
    this.packages = packages;
  }

  /** A reference to a message or enum type from this module, importing its package if needed. */
  ref(obj: protobuf.ReflectionObject, suffix = ''): string {
    const pkgName = packageNameOf(obj, this.packages);
    const name = localName(obj, pkgName) + suffix;
    if (pkgName === this.pkg.fullName) return name;
    this.imports.add(pkgName);
    return `${moduleAlias(pkgName)}.${name}`;
  }

  scalarType(type: string, init: boolean): string {
    if (type === 'string') return 'string';
    if (type === 'bool') return 'boolean';
    if (type === 'bytes') return 'Uint8Array';
    if (NUMBER_TYPES.has(type)) return 'number';
    if (LONG_TYPES.has(type)) return init ? 'number | bigint | string' : 'number';
    throw new Error(`BUG: unhandled scalar type ${type}`);
  }

  elementType(field: protobuf.Field, init: boolean): string {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) return this.ref(resolved);
    if (resolved instanceof protobuf.Type) return this.ref(resolved, init ? 'Init' : '');
    return this.scalarType(field.type, init);
  }

  fieldType(field: protobuf.Field, init: boolean): string {
    const element = this.elementType(field, init);
    if (field instanceof protobuf.MapField) {
      const record = `Record<string, ${element}>`;
      return init ? `Readonly<${record}>` : record;
    }
    if (field.repeated) {
      const needsParens = element.includes(' ');
      const base = needsParens ? `(${element})` : element;
      return init ? `readonly ${base}[]` : `${base}[]`;
    }
    if (field.resolvedType instanceof protobuf.Type && !field.partOf) return `${element} | null`;
    return element;
  }

  comment(text: string | null, indent: string): void {
    const body = (text ?? '').trim();
    if (!body) return;
    const lines = body.split('\n').map(line => line.trim());
    if (lines.length === 1) {
      this.lines.push(`${indent}/** ${lines[0] ?? ''} */`);
      return;
    }
    this.lines.push(`${indent}/**`);
    for (const line of lines) this.lines.push(line ? `${indent} * ${line}` : `${indent} *`);
    this.lines.push(`${indent} */`);
  }

  writeEnum(en: protobuf.Enum): void {
    const name = localName(en, this.pkg.fullName);
    const what = `Proto enum \`${fullNameOf(en)}\`.`;
    this.comment(en.comment ? `${en.comment}\n\n${what}` : what, '');
    this.lines.push(`export const ${name} = {`);
    for (const [key, value] of Object.entries(en.values)) {
      this.comment(en.comments[key] ?? null, '  ');
      this.lines.push(`  ${key}: ${value},`);
    }
    this.lines.push('} as const;');
    this.lines.push(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
    this.lines.push('');
  }

  writeMessage(type: protobuf.Type, init: boolean): void {
    const name = localName(type, this.pkg.fullName) + (init ? 'Init' : '');
    const what = init
      ? `The encoding input of \`${fullNameOf(type)}\`: every field optional.`
      : `A decoded \`${fullNameOf(type)}\`.`;
    this.comment(type.comment ? `${type.comment}\n\n${what}` : what, '');
    const fields = type.fieldsArray.slice().sort((a, b) => a.id - b.id);
    if (fields.length === 0) {
      this.lines.push(
        `// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- an empty message`,
      );
      this.lines.push(`export interface ${name} {}`);
      this.lines.push('');
      return;
    }
    this.lines.push(`export interface ${name} {`);
    for (const field of fields) {
      const optional = init || field.partOf ? '?' : '';
      this.comment(field.comment ? `${field.comment}\n\nField ${field.id}.` : `Field ${field.id}.`, '  ');
      this.lines.push(`  ${field.name}${optional}: ${this.fieldType(field, init)};`);
    }
    for (const oneof of type.oneofsArray) {
      const members = oneof.fieldsArray.map(f => `'${f.name}'`).join(' | ');
      this.comment(`Which member of oneof \`${oneof.name}\` is set (absent when none is).`, '  ');
      this.lines.push(`  ${oneof.name}?: ${members};`);
    }
    this.lines.push('}');
    this.lines.push('');
  }

  render(): string {
    const header = [
      `// generated by scripts/generate.ts from ${[...this.pkg.sources].sort().join(', ')}; do not edit`,
      `// Proto package \`${this.pkg.fullName}\`.`,
      '',
    ];
    const here = dirname(modulePath(this.pkg.fullName));
    const imports = [...this.imports].sort().map(pkgName => {
      let rel = relative(here, modulePath(pkgName));
      if (!rel.startsWith('.')) rel = './' + rel;
      return `import type * as ${moduleAlias(pkgName)} from '${rel}';`;
    });
    return [...header, ...imports, ...(imports.length ? [''] : []), ...this.lines].join('\n');
  }
}

function renderModule(pkg: ProtoPackage, packages: Map<string, ProtoPackage>): string {
  const writer = new ModuleWriter(pkg, packages);
  for (const en of pkg.enums) writer.writeEnum(en);
  for (const type of pkg.types) {
    writer.writeMessage(type, false);
    writer.writeMessage(type, true);
  }
  return writer.render();
}

function renderDescriptor(root: protobuf.Root, sources: string[]): string {
  return [
    `// generated by scripts/generate.ts from ${sources.join(', ')}; do not edit`,
    '// The protobufjs JSON descriptor of every type, loaded at run time with Root.fromJSON.',
    "import type { INamespace } from 'protobufjs';",
    '',
    '// A plain const first: the descriptor has keys (protoName, keyType) that INamespace does not declare.',
    `const json = ${JSON.stringify(root.toJSON(), null, 2)};`,
    '',
    'export const descriptor: INamespace = json;',
    '',
  ].join('\n');
}

function renderRegistry(packages: Map<string, ProtoPackage>, sources: string[]): string {
  const names = [...packages.keys()].sort();
  const lines = [
    `// generated by scripts/generate.ts from ${sources.join(', ')}; do not edit`,
    '// Every message type by full name, with its decoded and Init (encoding input) types.',
    ...names.map(n => `import type * as ${moduleAlias(n)} from './${modulePath(n)}';`),
    '',
    'export interface MessageTypes {',
  ];
  const all: string[] = [];
  for (const n of names) {
    const pkg = packages.get(n)!;
    for (const type of pkg.types) {
      const full = fullNameOf(type);
      const local = `${moduleAlias(n)}.${localName(type, n)}`;
      all.push(full);
      lines.push(`  '${full}': { decoded: ${local}; init: ${local}Init };`);
    }
  }
  lines.push('}', '', '/** The full name of every message type, in package order. */');
  lines.push('export const messageTypeNames: readonly (keyof MessageTypes)[] = [');
  for (const full of all) lines.push(`  '${full}',`);
  lines.push('];', '');
  return lines.join('\n');
}

function generate(): Map<string, string> {
  const root = loadRoot();
  const packages = collectPackages(root);
  const sources = [...new Set([...packages.values()].flatMap(p => [...p.sources]))]
    .filter(s => s.startsWith('proto/'))
    .sort();
  const files = new Map<string, string>();
  files.set('descriptor.ts', renderDescriptor(root, sources));
  files.set('registry.ts', renderRegistry(packages, sources));
  for (const pkg of packages.values()) files.set(modulePath(pkg.fullName), renderModule(pkg, packages));
  return files;
}

writeOrCheckGenerated({ packageDir: PACKAGE_DIR, outDir: OUT_DIR, files: generate() });
