// Bundles ztunnel into one minified ES module (dist/ztunnel.mjs): the shipping form of the
// image and of the local cluster. Workspace packages are taken from their TypeScript sources.
import { renameSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = process.argv[2] ?? resolve(appDir, 'src/main.ts');
const outFile = process.argv[3] ?? resolve(appDir, 'dist/ztunnel.mjs');
const outDir = dirname(resolve(outFile));

/** `import.meta.url` of a bundled source file, kept relative to the bundle (addon, package.json). */
const metaUrl = {
  name: 'source-import-meta-url',
  transform(code, id) {
    if (!code.includes('import.meta.url') || id.includes('node_modules')) return null;
    const rel = relative(outDir, id).split('\\').join('/');
    return {
      code: code.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`),
      map: null,
    };
  },
};

await build({
  input: entry,
  platform: 'node',
  resolve: { conditionNames: ['@ambient-mesh/source', 'node', 'import', 'default'] },
  plugins: [metaUrl],
  external: [/\.node$/],
  // Written aside and renamed: a cluster starting meanwhile never runs half a file.
  // ZT_BUNDLE_NO_MINIFY keeps names readable, for CPU profiles.
  // ASCII only: one non-Latin-1 character (a dash in a message) makes V8 keep the whole source,
  // which it retains for lazy compilation, as a two-byte string, 1.2 MiB more of resident heap.
  output: {
    file: `${outFile}.${process.pid}.tmp`,
    format: 'esm',
    minify: process.env.ZT_BUNDLE_NO_MINIFY === undefined,
    charset: 'ascii',
    codeSplitting: false,
  },
  logLevel: 'warn',
});
renameSync(`${outFile}.${process.pid}.tmp`, outFile);
console.error(`bundled ${relative(process.cwd(), entry)} -> ${relative(process.cwd(), outFile)}`);
