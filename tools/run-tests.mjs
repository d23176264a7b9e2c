#!/usr/bin/env node
// The README's test command: every check and every test tier of every project, then one summary.
//
//   npm test                 # everything (nx run-many)
//   npm test -- --affected   # only projects affected since origin/main (nx affected)
//
// Each project's vitest run writes reports/vitest.json; this script adds them up and ends with
// the line "N passed, N failed, N skipped". Skipped tests are never counted as passed, and in CI
// (CI=true) any skipped test fails the run: every tier runs there, as root.
//
// In CI nothing is replayed from the Nx cache (`--skip-nx-cache`): Nx shares its cache between
// checkouts of this workspace on one machine, and the namespaced and cluster tiers depend on the
// machine (kernel, root, built binaries), which no cache key covers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const affected = process.argv.includes('--affected');
const targets = ['lint', 'typecheck', 'build', 'check-generated', 'check-package', 'test'];
const projectDirs = ['packages', 'apps', 'e2e', 'benchmarks', 'tools']
  .flatMap(dir => {
    const full = join(root, dir);
    if (!existsSync(full)) return [];
    if (existsSync(join(full, 'package.json'))) return [full];
    return readdirSync(full, { withFileTypes: true })
      .filter(d => d.isDirectory())
      .map(d => join(full, d.name));
  })
  .filter(dir => existsSync(join(dir, 'package.json')));

for (const dir of projectDirs) rmSync(join(dir, 'reports'), { recursive: true, force: true });

const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', FORCE_COLOR: '0' };
const args = [
  'nx',
  affected ? 'affected' : 'run-many',
  '-t',
  ...targets,
  '--outputStyle=stream',
  ...(process.env.CI === 'true' ? ['--skip-nx-cache'] : []),
];
const started = Date.now();
const manifests = spawnSync(process.execPath, [join(root, 'tools', 'check-manifests.mjs')], {
  stdio: 'inherit',
});
// The house rules (apps never import apps, env only in config.ts, no import cycles), as `npm run check`.
const houseRules = spawnSync(process.execPath, [join(root, 'tools', 'house-rules', 'cli.ts')], {
  stdio: 'inherit',
});
const run = spawnSync('npx', args, { cwd: root, env, stdio: 'inherit' });

let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
for (const dir of projectDirs) {
  const report = join(dir, 'reports', 'vitest.json');
  if (!existsSync(report)) continue;
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const p = r.numPassedTests ?? 0;
  const f = (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
  const s = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  passed += p;
  failed += f;
  skipped += s;
  rows.push(
    `  ${dir.slice(root.length).padEnd(28)} ${String(p).padStart(5)} passed ${String(f).padStart(3)} failed ${String(s).padStart(3)} skipped`,
  );
}

console.log('\nTest summary by project:');
for (const row of rows) console.log(row);
console.log(`  wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
const ciSkipFailure = process.env.CI === 'true' && skipped > 0;
if (ciSkipFailure)
  console.log(`  ${skipped} test(s) skipped in CI: every tier must run here, so this fails the run.`);
if (rows.length === 0) console.log('  no test report was written: nothing ran.');
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
const ok =
  manifests.status === 0 &&
  houseRules.status === 0 &&
  run.status === 0 &&
  failed === 0 &&
  !ciSkipFailure &&
  rows.length > 0;
process.exit(ok ? 0 : 1);
