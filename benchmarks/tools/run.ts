// Runs the benchmark of one area, or all of them:
//   npm run bench -w benchmarks -- [area ...]
// Each area is a folder with a run.ts that prints its results as Markdown and exits 0.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('..', import.meta.url).pathname;
const areas = readdirSync(here, { withFileTypes: true })
  .filter(d => d.isDirectory() && existsSync(join(here, d.name, 'run.ts')))
  .map(d => d.name);
const wanted = process.argv.slice(2);
const unknown = wanted.filter(a => !areas.includes(a));
if (unknown.length > 0) {
  console.error(`unknown benchmark area(s): ${unknown.join(', ')}; known: ${areas.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const area of wanted.length > 0 ? wanted : areas) {
  console.log(`\n## ${area}\n`);
  const r = spawnSync(process.execPath, ['--conditions=@ambient-mesh/source', join(here, area, 'run.ts')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
