/**
 * The libraries as another team gets them: every library under packages/ is built and packed
 * with `npm pack`, installed from those tarballs into a fresh project in a temporary folder,
 * and every ```ts example of every library README is compiled there with a strict consumer's
 * settings (`strict`, `skipLibCheck: false`, `module`/`moduleResolution` node16) and run with
 * node. Each example runs on loopback, finishes by itself and exits 0.
 *
 * Libraries are discovered (packages/* with a non-private package.json), so a new library's
 * README is covered as soon as it exists. Blocks marked `<!-- not-compiled -->` are fragments and
 * are skipped (see readme-examples.ts).
 */
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractExamples, importedPackages } from './readme-examples.ts';

const root = join(import.meta.dirname, '..', '..');
const node = process.execPath;
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

interface Library {
  readonly dir: string;
  readonly name: string;
  readonly short: string;
  /** Every version the library's manifest pins (dependencies, dev and peer). */
  readonly pins: Readonly<Record<string, string>>;
}

interface Example {
  readonly library: Library;
  readonly file: string;
  readonly where: string;
  readonly code: string;
}

function discoverLibraries(): Library[] {
  const packages = join(root, 'packages');
  return readdirSync(packages, { withFileTypes: true })
    .filter(d => d.isDirectory() && existsSync(join(packages, d.name, 'package.json')))
    .map(d => {
      const dir = join(packages, d.name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        private?: boolean;
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
      };
      const pins = {
        ...manifest.peerDependencies,
        ...manifest.devDependencies,
        ...manifest.dependencies,
      };
      return { dir, name: manifest.name, short: d.name, pins, private: manifest.private === true };
    })
    .filter(l => !l.private)
    .map(({ dir, name, short, pins }) => ({ dir, name, short, pins }));
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 300_000,
): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, NX_DAEMON: 'false', FORCE_COLOR: '0' },
  });
}

function mustRun(what: string, command: string, args: readonly string[], cwd: string): string {
  const result = run(command, args, cwd);
  if (result.status !== 0) {
    throw new Error(
      `${what} failed (exit ${String(result.status)}${result.error ? `, ${result.error.message}` : ''}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** dist/ exists and is newer than every file under src/ (and the manifest). */
function distIsFresh(dir: string): boolean {
  const dist = join(dir, 'dist');
  if (!existsSync(join(dist, 'index.js'))) return false;
  const oldestOutput = statSync(join(dist, 'index.js')).mtimeMs;
  return oldestOutput >= Math.max(newestMtime(join(dir, 'src')), statSync(join(dir, 'package.json')).mtimeMs);
}

const libraries = discoverLibraries();
const examples: Example[] = [];
for (const library of libraries) {
  const readme = join(library.dir, 'README.md');
  if (!existsSync(readme)) continue;
  for (const block of extractExamples(readFileSync(readme, 'utf8'))) {
    if (block.optedOut) continue;
    examples.push({
      library,
      file: `${library.short}-${block.index}`,
      where: `packages/${library.short}/README.md:${block.line}`,
      code: block.code,
    });
  }
}

let work = '';
let compiled: SpawnSyncReturns<string> | undefined;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ambient-mesh-consumer-'));
  const tarballs = join(work, 'tarballs');
  const project = join(work, 'project');
  mkdirSync(tarballs);
  mkdirSync(join(project, 'src'), { recursive: true });

  const specs: Record<string, string> = {};
  for (const library of libraries) {
    // nx builds every library before this test (tools' test target depends on their build);
    // build here only what is stale, so a direct `vitest run` works too.
    if (!distIsFresh(library.dir)) {
      mustRun(`build of ${library.name}`, 'npm', ['run', 'build', '--silent'], library.dir);
    }
    const packed = mustRun(
      `npm pack of ${library.name}`,
      'npm',
      ['pack', '--json', '--silent', '--pack-destination', tarballs],
      library.dir,
    );
    const [info] = JSON.parse(packed) as [{ filename: string }];
    specs[library.name] = `file:${join(tarballs, info.filename)}`;
  }

  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  // A third-party package an example imports (e.g. @grpc/grpc-js) is installed at the version
  // its library pins; an import that no library pins fails the install step with its name.
  const extra: Record<string, string> = { '@types/node': rootManifest.devDependencies['@types/node']! };
  for (const example of examples) {
    for (const name of importedPackages(example.code)) {
      if (name in specs || libraries.some(l => l.name === name)) continue;
      const version = example.library.pins[name];
      if (version === undefined) {
        throw new Error(`${example.where} imports ${name}, which ${example.library.name} does not pin`);
      }
      extra[name] = version;
    }
  }
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify(
      {
        name: 'ambient-mesh-consumer',
        private: true,
        type: 'module',
        dependencies: { ...specs, ...extra },
        // Libraries depend on each other by version: take those from the tarballs too.
        overrides: specs,
        allowScripts: Object.fromEntries(libraries.map(l => [l.name, true])),
      },
      null,
      2,
    ),
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2024'],
          module: 'node16',
          moduleResolution: 'node16',
          types: ['node'],
          strict: true,
          skipLibCheck: false,
          outDir: 'dist',
          rootDir: 'src',
        },
        include: ['src'],
      },
      null,
      2,
    ),
  );
  for (const example of examples) {
    writeFileSync(join(project, 'src', `${example.file}.ts`), `// ${example.where}\n${example.code}`);
  }
  mustRun(
    'npm install of the tarballs',
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline'],
    project,
  );
  compiled = run(node, [tsc, '-p', 'tsconfig.json'], project);
}, 900_000);

afterAll(() => {
  if (work !== '' && process.env.CONSUMER_KEEP !== '1') rmSync(work, { recursive: true, force: true });
});

describe('the libraries from their npm tarballs, in a strict consumer project', () => {
  it('finds every library and at least one example per README', () => {
    expect(libraries.length).toBeGreaterThan(0);
    for (const library of libraries) {
      expect(existsSync(join(library.dir, 'README.md')), `${library.name} has a README`).toBe(true);
    }
    expect(examples.length).toBeGreaterThanOrEqual(libraries.length);
  });

  it('compiles every README example (strict, skipLibCheck false, node16)', () => {
    expect(compiled, 'the project was set up').toBeDefined();
    expect(`${compiled!.stdout}${compiled!.stderr}`).toBe('');
    expect(compiled!.status).toBe(0);
  });

  for (const example of examples) {
    it(`runs ${example.where}`, () => {
      const script = join(work, 'project', 'dist', `${example.file}.js`);
      expect(existsSync(script), `${example.file}.js was compiled`).toBe(true);
      const result = run(node, [script], join(work, 'project'), 60_000);
      expect(result.error, `${result.stdout}\n${result.stderr}`).toBeUndefined();
      expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    }, 90_000);
  }
});
