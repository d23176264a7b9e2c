#!/usr/bin/env node
// Keeps the workspace's package.json files consistent (a small sherif): run by `npm test` and
// `npm run check`. Prints every problem with its file, exits 1 if there is any.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const problems = [];
const readJson = file => JSON.parse(readFileSync(file, 'utf8'));
const rootPkg = readJson(join(root, 'package.json'));

const dirsOf = parent =>
  existsSync(join(root, parent))
    ? readdirSync(join(root, parent), { withFileTypes: true })
        .filter(d => d.isDirectory() && existsSync(join(root, parent, d.name, 'package.json')))
        .map(d => join(parent, d.name))
    : [];
const libraries = dirsOf('packages');
const privates = [
  ...dirsOf('apps'),
  ...['e2e', 'benchmarks', 'tools'].filter(d => existsSync(join(root, d, 'package.json'))),
];
const manifests = new Map(
  [...libraries, ...privates].map(dir => [dir, readJson(join(root, dir, 'package.json'))]),
);
const versions = new Map([...manifests.values()].map(p => [p.name, p.version]));

const depFields = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'];
const exactVersion = /^\d+\.\d+\.\d+(-[\w.]+)?$/;

function checkDeps(where, pkg) {
  for (const field of depFields) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (versions.has(name)) {
        if (field !== 'peerDependencies' && range !== versions.get(name)) {
          problems.push(
            `${where}: ${field}.${name} is "${range}", but the workspace has ${versions.get(name)}`,
          );
        }
      } else if (!exactVersion.test(range)) {
        problems.push(`${where}: ${field}.${name} is "${range}": pin an exact version`);
      }
    }
  }
}

checkDeps('package.json', rootPkg);
const nxVersions = new Set(
  Object.entries(rootPkg.devDependencies ?? {})
    .filter(([name]) => name === 'nx' || name.startsWith('@nx/'))
    .map(([, v]) => v),
);
if (nxVersions.size > 1)
  problems.push(`package.json: nx packages must share one version, found ${[...nxVersions].join(', ')}`);

for (const dir of libraries) {
  const p = manifests.get(dir);
  const where = `${dir}/package.json`;
  const expectName = `@ambient-mesh/${dir.slice('packages/'.length)}`;
  if (p.name !== expectName) problems.push(`${where}: name should be ${expectName}`);
  if (p.private) problems.push(`${where}: a library under packages/ is published, so it is not private`);
  if (p.license !== 'Apache-2.0') problems.push(`${where}: license must be Apache-2.0`);
  if (p.type !== 'module') problems.push(`${where}: type must be "module"`);
  if (p.engines?.node !== '>=22') problems.push(`${where}: engines.node must be ">=22"`);
  if (!('sideEffects' in p)) problems.push(`${where}: declare sideEffects`);
  if (!Array.isArray(p.files) || !p.files.includes('dist'))
    problems.push(`${where}: files must include dist`);
  if (p.publishConfig?.access !== 'public') problems.push(`${where}: publishConfig.access must be public`);
  if (p.repository?.directory !== dir) problems.push(`${where}: repository.directory must be ${dir}`);
  const dot = p.exports?.['.'];
  const keys = dot && typeof dot === 'object' ? Object.keys(dot) : [];
  if (keys[0] !== '@ambient-mesh/source' || !keys.includes('types') || keys.at(-1) !== 'default') {
    problems.push(
      `${where}: exports["."] must list @ambient-mesh/source first, then types, and default last`,
    );
  }
  for (const script of ['build', 'typecheck', 'lint', 'test', 'check-package']) {
    if (!p.scripts?.[script]) problems.push(`${where}: missing script "${script}"`);
  }
  for (const file of ['README.md', 'LICENSE']) {
    if (!existsSync(join(root, dir, file))) problems.push(`${dir}: missing ${file}`);
  }
  checkDeps(where, p);
}

for (const dir of privates) {
  const p = manifests.get(dir);
  const where = `${dir}/package.json`;
  // A published app (the CLI) says so with publishConfig.access "public"; every other one is private.
  const publishedApp = dir.startsWith('apps/') && p.publishConfig?.access === 'public';
  if (!p.private && !publishedApp) problems.push(`${where}: apps, e2e and benchmarks are private`);
  if (p.type !== 'module') problems.push(`${where}: type must be "module"`);
  if (dir.startsWith('apps/')) {
    for (const script of ['build', 'typecheck', 'lint', 'test']) {
      if (!p.scripts?.[script]) problems.push(`${where}: missing script "${script}"`);
    }
  }
  checkDeps(where, p);
}

if (problems.length > 0) {
  console.error(`check-manifests: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`check-manifests: ${manifests.size} workspace manifests consistent`);
