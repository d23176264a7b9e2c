/**
 * Generates `src/generated/` from the CRDs in `deploy/crds/` (see `crd-types.ts`).
 *
 *   npm run generate           # rewrite src/generated/
 *   npm run check-generated    # rewrite, then fail if git sees a change under src/generated/
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { OUT_DIR, PACKAGE_DIR, generate } from './crd-types.ts';

/** Writes only the files whose text changed and deletes stale ones. */
function write(files: Map<string, string>): void {
  for (const [path, text] of files) {
    const full = join(OUT_DIR, path);
    if (existsSync(full) && readFileSync(full, 'utf8') === text) continue;
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  if (!existsSync(OUT_DIR)) return;
  const stale = readdirSync(OUT_DIR, { recursive: true, withFileTypes: true })
    .filter(entry => entry.isFile())
    .map(entry => relative(OUT_DIR, join(entry.parentPath, entry.name)))
    .filter(path => !files.has(path));
  for (const path of stale) rmSync(join(OUT_DIR, path));
}

function readCurrent(files: Map<string, string>): Map<string, string | null> {
  const current = new Map<string, string | null>();
  for (const path of files.keys()) {
    try {
      current.set(path, readFileSync(join(OUT_DIR, path), 'utf8'));
    } catch {
      current.set(path, null);
    }
  }
  return current;
}

const files = await generate();
if (process.argv.includes('--check')) {
  const before = readCurrent(files);
  write(files);
  const changed = [...files].filter(([path, text]) => before.get(path) !== text).map(([path]) => path);
  const status = execFileSync('git', ['status', '--porcelain', '--', 'src/generated'], {
    cwd: PACKAGE_DIR,
    encoding: 'utf8',
  });
  if (status.trim() !== '' || changed.length > 0) {
    console.error('src/generated is out of date or not committed. Run `npm run generate` and commit it.');
    if (changed.length > 0) console.error(`regenerated files that differed: ${changed.join(', ')}`);
    console.error(status);
    console.error(
      execFileSync('git', ['diff', '--', 'src/generated'], { cwd: PACKAGE_DIR, encoding: 'utf8' }),
    );
    process.exit(1);
  }
  console.log(`src/generated is up to date (${files.size} files).`);
} else {
  write(files);
  console.log(`generated ${files.size} files in ${relative(PACKAGE_DIR, OUT_DIR)}`);
}
