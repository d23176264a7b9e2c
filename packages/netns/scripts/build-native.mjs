#!/usr/bin/env node
// The package's install script: compiles the addon with node-gyp into build/Release.
//
// - Skips the build when build/Release/ambient_netns.node is newer than binding.gyp and every
//   native source, so repeated `npm install` runs in a workspace do not delete a working binary.
// - `--force` always rebuilds (the package's `build:native` script).
// - Off Linux it builds nothing: the package then fails at load time with a clear error.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const binary = join(root, 'build', 'Release', 'ambient_netns.node');

if (process.platform !== 'linux') {
  console.log(`@ambient-mesh/netns: not building the addon on ${process.platform} (Linux only)`);
  process.exit(0);
}

const sources = [
  join(root, 'binding.gyp'),
  ...readdirSync(join(root, 'src'))
    .filter(name => name.endsWith('.cc') || name.endsWith('.h'))
    .map(name => join(root, 'src', name)),
];
const newestSource = Math.max(...sources.map(path => statSync(path).mtimeMs));
const fresh = existsSync(binary) && statSync(binary).mtimeMs >= newestSource;
if (fresh && !process.argv.includes('--force')) {
  console.log('@ambient-mesh/netns: addon is up to date');
  process.exit(0);
}

const gyp = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: false });
if (gyp.error) {
  console.error(`@ambient-mesh/netns: cannot run node-gyp: ${gyp.error.message}`);
  process.exit(1);
}
process.exit(gyp.status ?? 1);
