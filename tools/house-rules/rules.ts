/**
 * The repository's house rules, checked over a repository root (the real one from cli.ts, small
 * fixture repositories from the tests):
 *
 * 1. `apps-never-import-apps`: an app (a folder under apps/ with a package.json) may neither
 *    depend on another app in its package.json nor import one, by package name or by a relative
 *    path into the other app's folder. e2e/, benchmarks/ and tools/ may import apps.
 * 2. `env-only-in-config`: in apps/<app>/src, only `src/config.ts` reads `process.env`. Tests
 *    (`*.test.ts`) and test helpers (any `testing/` folder) are exempt: they set up processes,
 *    they are not the app. Reads are `process.env`, `process['env']`, `const { env } = process`
 *    and `import { env } from 'node:process'`.
 * 3. `no-circular`: no import cycle between the source files of one project (apps/<app>/src,
 *    packages/<lib>/src, e2e/src, benchmarks, tools), found by dependency-cruiser. Type-only
 *    imports count: a cycle of types is still a knot in the design. Cycles between packages
 *    are already refused by npm and nx, which order builds by the package graph.
 * 4. `platform-from-runtime`: in apps/<app>/src, no file makes its own logger or metrics registry
 *    (`new Logs`, `Logs.wrap`, `createLogger`, `pino(...)`, `createRegistry`, `new Registry`,
 *    `collectDefaultMetrics`): the app gets both from @ambient-mesh/runtime's `createPlatform`.
 *    Tests and test helpers are exempt, as for rule 2.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { cruise } from 'dependency-cruiser';
import ts from 'typescript';

export const RuleName = {
  appsNeverImportApps: 'apps-never-import-apps',
  envOnlyInConfig: 'env-only-in-config',
  noCircular: 'no-circular',
  platformFromRuntime: 'platform-from-runtime',
} as const;
export type RuleName = (typeof RuleName)[keyof typeof RuleName];

export interface Violation {
  readonly rule: RuleName;
  /** Path relative to the repository root, with `/` separators. */
  readonly file: string;
  /** 1-based line, when the violation is one place in the file. */
  readonly line?: number;
  readonly message: string;
}

const SOURCE_FILE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'build', 'reports', 'coverage', '.nx', 'generated']);

function posix(path: string): string {
  return path.split(sep).join('/');
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name) && entry.name !== 'fixtures') walk(join(dir, entry.name), out);
    } else if (SOURCE_FILE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      out.push(join(dir, entry.name));
    }
  }
  return out;
}

interface App {
  readonly dir: string;
  readonly name: string;
  readonly manifest: Record<string, unknown>;
}

function appsOf(root: string): App[] {
  const appsDir = join(root, 'apps');
  if (!existsSync(appsDir)) return [];
  return readdirSync(appsDir, { withFileTypes: true })
    .filter(d => d.isDirectory() && existsSync(join(appsDir, d.name, 'package.json')))
    .map(d => {
      const dir = join(appsDir, d.name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      return { dir, name: String(manifest.name), manifest };
    });
}

function lineOf(source: string, position: number): number {
  return source.slice(0, position).split('\n').length;
}

/** Rule 1: no app depends on or imports another app. */
export function checkAppsNeverImportApps(root: string): Violation[] {
  const apps = appsOf(root);
  const out: Violation[] = [];
  for (const app of apps) {
    const others = apps.filter(a => a !== app);
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
      const deps = (app.manifest[field] ?? {}) as Record<string, string>;
      for (const other of others) {
        if (other.name in deps) {
          out.push({
            rule: RuleName.appsNeverImportApps,
            file: posix(relative(root, join(app.dir, 'package.json'))),
            message: `${app.name} lists the app ${other.name} in ${field}; move what both need into a library under packages/`,
          });
        }
      }
    }
    for (const file of walk(app.dir)) {
      const text = readFileSync(file, 'utf8');
      const { importedFiles } = ts.preProcessFile(text, true, true);
      for (const imported of importedFiles) {
        const specifier = imported.fileName;
        const target = others.find(
          other =>
            specifier === other.name ||
            specifier.startsWith(`${other.name}/`) ||
            (specifier.startsWith('.') && isInside(resolve(dirname(file), specifier), other.dir)),
        );
        if (target === undefined) continue;
        out.push({
          rule: RuleName.appsNeverImportApps,
          file: posix(relative(root, file)),
          line: lineOf(text, imported.pos),
          message: `${app.name} imports the app ${target.name} ('${specifier}'); move what both need into a library under packages/`,
        });
      }
    }
  }
  return out;
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && !/^[a-zA-Z]:/.test(rel));
}

/** True for files rule 2 exempts: the app's config module, tests, and test helpers. */
export function envReadAllowed(srcRelative: string): boolean {
  const path = posix(srcRelative);
  return (
    path === 'config.ts' ||
    /\.test\.[cm]?ts$/.test(path) ||
    path.startsWith('testing/') ||
    path.includes('/testing/')
  );
}

/** The places in a TypeScript source that read `process.env`. */
export function findEnvReads(text: string, fileName = 'file.ts'): { line: number; what: string }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: { line: number; what: string }[] = [];
  const at = (node: ts.Node, what: string): void => {
    found.push({ line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, what });
  };
  const isProcess = (node: ts.Node): boolean =>
    (ts.isIdentifier(node) && node.text === 'process') ||
    (ts.isPropertyAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'globalThis' &&
      node.name.text === 'process');
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'env' && isProcess(node.expression)) {
      at(node, 'process.env');
    } else if (
      ts.isElementAccessExpression(node) &&
      isProcess(node.expression) &&
      ts.isStringLiteralLike(node.argumentExpression) &&
      node.argumentExpression.text === 'env'
    ) {
      at(node, "process['env']");
    } else if (
      ts.isVariableDeclaration(node) &&
      ts.isObjectBindingPattern(node.name) &&
      node.initializer !== undefined &&
      isProcess(node.initializer) &&
      node.name.elements.some(e => (e.propertyName ?? e.name).getText(source) === 'env')
    ) {
      at(node, 'const { env } = process');
    } else if (
      ts.isImportDeclaration(node) &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      (node.moduleSpecifier.text === 'process' || node.moduleSpecifier.text === 'node:process') &&
      node.importClause?.namedBindings !== undefined &&
      ts.isNamedImports(node.importClause.namedBindings) &&
      node.importClause.namedBindings.elements.some(e => (e.propertyName ?? e.name).text === 'env')
    ) {
      at(node, `import { env } from '${node.moduleSpecifier.text}'`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Rule 2: only an app's src/config.ts reads process.env. */
export function checkEnvOnlyInConfig(root: string): Violation[] {
  const out: Violation[] = [];
  for (const app of appsOf(root)) {
    const src = join(app.dir, 'src');
    for (const file of walk(src)) {
      if (envReadAllowed(relative(src, file))) continue;
      for (const read of findEnvReads(readFileSync(file, 'utf8'), file)) {
        out.push({
          rule: RuleName.envOnlyInConfig,
          file: posix(relative(root, file)),
          line: read.line,
          message: `${read.what} outside src/config.ts: read the environment in the app's config module and pass the value in`,
        });
      }
    }
  }
  return out;
}

const LOGGER_OR_REGISTRY_CALLS = new Set(['createLogger', 'createRegistry', 'collectDefaultMetrics', 'pino']);
const LOGGER_OR_REGISTRY_CLASSES = new Set(['Logs', 'Registry']);

/** The places in a TypeScript source that make a logger or a metrics registry. */
export function findPlatformConstruction(
  text: string,
  fileName = 'file.ts',
): { line: number; what: string }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: { line: number; what: string }[] = [];
  const at = (node: ts.Node, what: string): void => {
    found.push({ line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, what });
  };
  const lastName = (e: ts.Expression): string | undefined =>
    ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined;
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node)) {
      const name = lastName(node.expression);
      if (name !== undefined && LOGGER_OR_REGISTRY_CLASSES.has(name)) at(node, `new ${name}(...)`);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const name = lastName(callee);
      if (name !== undefined && LOGGER_OR_REGISTRY_CALLS.has(name)) at(node, `${name}(...)`);
      if (
        ts.isPropertyAccessExpression(callee) &&
        ts.isIdentifier(callee.expression) &&
        callee.expression.text === 'Logs' &&
        callee.name.text === 'wrap'
      ) {
        at(node, 'Logs.wrap(...)');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Rule 4: apps take their logger and metrics registry from the runtime's `createPlatform`. */
export function checkPlatformFromRuntime(root: string): Violation[] {
  const out: Violation[] = [];
  for (const app of appsOf(root)) {
    const src = join(app.dir, 'src');
    for (const file of walk(src)) {
      if (envReadAllowed(relative(src, file))) continue;
      for (const made of findPlatformConstruction(readFileSync(file, 'utf8'), file)) {
        out.push({
          rule: RuleName.platformFromRuntime,
          file: posix(relative(root, file)),
          line: made.line,
          message: `${made.what} in an app: take logs and the metrics registry from @ambient-mesh/runtime's createPlatform (deps.platform)`,
        });
      }
    }
  }
  return out;
}

/** The source folders of every project, each cruised for cycles on its own. */
export function projectSourceDirs(root: string): string[] {
  const dirs: string[] = [];
  for (const parent of ['apps', 'packages']) {
    const full = join(root, parent);
    if (!existsSync(full)) continue;
    for (const d of readdirSync(full, { withFileTypes: true })) {
      const src = join(full, d.name, 'src');
      if (d.isDirectory() && existsSync(src) && statSync(src).isDirectory()) dirs.push(src);
    }
  }
  for (const single of ['e2e/src', 'benchmarks', 'tools']) {
    if (existsSync(join(root, single))) dirs.push(join(root, single));
  }
  return dirs;
}

/** Rule 3: no import cycle inside a project (dependency-cruiser's `circular` rule). */
export async function checkNoCircular(root: string): Promise<Violation[]> {
  const dirs = projectSourceDirs(root).map(d => posix(relative(root, d)));
  if (dirs.length === 0) return [];
  const previous = process.cwd();
  process.chdir(root);
  try {
    const result = await cruise(dirs, {
      validate: true,
      ruleSet: {
        forbidden: [{ name: RuleName.noCircular, severity: 'error', from: {}, to: { circular: true } }],
      },
      doNotFollow: { path: 'node_modules' },
      exclude: { path: '(^|/)(node_modules|dist|build|reports|coverage|fixtures|generated)/' },
      tsPreCompilationDeps: true,
      // Imports of other packages are not followed: a cycle is a knot inside one project.
      includeOnly: `^(${dirs.map(escapeRegExp).join('|')})/`,
    });
    if (typeof result.output === 'string')
      throw new Error('dependency-cruiser returned text, expected a result');
    const seen = new Set<string>();
    const out: Violation[] = [];
    for (const v of result.output.summary.violations) {
      if (v.rule.name !== RuleName.noCircular) continue;
      const cycle = [v.from, ...(v.cycle ?? []).map(c => c.name)];
      const key = [...cycle].sort().join(' ');
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        rule: RuleName.noCircular,
        file: v.from,
        message: `import cycle: ${cycle.join(' -> ')}`,
      });
    }
    return out;
  } finally {
    process.chdir(previous);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every rule over one repository root. */
export async function checkHouseRules(root: string): Promise<Violation[]> {
  return [
    ...checkAppsNeverImportApps(root),
    ...checkEnvOnlyInConfig(root),
    ...checkPlatformFromRuntime(root),
    ...(await checkNoCircular(root)),
  ];
}

export function formatViolation(v: Violation): string {
  return `${v.file}${v.line === undefined ? '' : `:${v.line}`}: [${v.rule}] ${v.message}`;
}
