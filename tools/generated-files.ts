// Writes a package's generated sources, or checks that they are committed and current. The one
// implementation behind each generator script's `generate` and `check-generated`
// (packages/mesh-api/scripts/generate.ts, packages/xds-types/scripts/generate.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

export interface GeneratedFiles {
  /** The package root (where git is asked). */
  readonly packageDir: string;
  /** The folder the files go to; it holds nothing else (stale files are deleted). */
  readonly outDir: string;
  /** Path below `outDir` -> text. */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * Writes only the files whose text changed and deletes stale ones, so a check run (which
 * regenerates) never leaves a moment where a file is missing while other tasks read the tree.
 */
function write({ outDir, files }: GeneratedFiles): void {
  for (const [path, text] of files) {
    const full = join(outDir, path);
    if (existsSync(full) && readFileSync(full, 'utf8') === text) continue;
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  if (!existsSync(outDir)) return;
  const stale = readdirSync(outDir, { recursive: true, withFileTypes: true })
    .filter(entry => entry.isFile())
    .map(entry => relative(outDir, join(entry.parentPath, entry.name)))
    .filter(path => !files.has(path));
  for (const path of stale) rmSync(join(outDir, path));
}

function readCurrent({ outDir, files }: GeneratedFiles): Map<string, string | null> {
  const current = new Map<string, string | null>();
  for (const path of files.keys()) {
    try {
      current.set(path, readFileSync(join(outDir, path), 'utf8'));
    } catch {
      current.set(path, null);
    }
  }
  return current;
}

/**
 * `generate`: writes the files. `--check` in `argv`: writes them, then exits 1 (printing the
 * difference) when a file changed or git sees an uncommitted change in `outDir`.
 */
export function writeOrCheckGenerated(
  generated: GeneratedFiles,
  argv: readonly string[] = process.argv,
): void {
  const { packageDir, outDir, files } = generated;
  const outRel = relative(packageDir, outDir);
  if (!argv.includes('--check')) {
    write(generated);
    console.log(`generated ${files.size} files in ${outRel}`);
    return;
  }
  const before = readCurrent(generated);
  write(generated);
  const changed = [...files].filter(([path, text]) => before.get(path) !== text).map(([path]) => path);
  const status = execFileSync('git', ['status', '--porcelain', '--', outRel], {
    cwd: packageDir,
    encoding: 'utf8',
  });
  if (status.trim() !== '' || changed.length > 0) {
    console.error(`${outRel} is out of date or not committed. Run \`npm run generate\` and commit it.`);
    if (changed.length > 0) console.error(`regenerated files that differed: ${changed.join(', ')}`);
    console.error(status);
    console.error(execFileSync('git', ['diff', '--', outRel], { cwd: packageDir, encoding: 'utf8' }));
    process.exit(1);
  }
  console.log(`${outRel} is up to date (${files.size} files).`);
}
