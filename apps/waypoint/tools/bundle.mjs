// Bundles the waypoint into one minified ES module (dist/waypoint.mjs): the shipping form of the
// image and of the local cluster. Workspace packages are taken from their TypeScript sources.
// The Envoy protos are loaded here, once, and the bundle carries their serialized root in place of
// src/xds/envoy-proto-files.ts, so it neither reads nor parses a .proto file at start.
//   node apps/waypoint/tools/bundle.mjs [entry] [out]   (default src/main.ts -> dist/waypoint.mjs)
import { renameSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'rolldown';

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = process.argv[2] ?? resolve(appDir, 'src/main.ts');
const outFile = process.argv[3] ?? resolve(appDir, 'dist/waypoint.mjs');
const outDir = dirname(resolve(outFile));
const protoFiles = resolve(appDir, 'src/xds/envoy-proto-files.ts');

/** `import.meta.url` of a bundled source file, kept relative to the bundle (package.json). */
const metaUrl = {
  name: 'source-import-meta-url',
  transform(code, id) {
    if (!code.includes('import.meta.url') || id.includes('node_modules') || id === protoFiles) return null;
    const rel = relative(outDir, id).split('\\').join('/');
    return {
      code: code.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`),
      map: null,
    };
  },
};

// The same root the source form loads (Node runs the TypeScript module as it is), serialized.
const { loadEnvoyRoot } = await import(pathToFileURL(protoFiles).href);
const descriptor = JSON.stringify(JSON.stringify(loadEnvoyRoot().toJSON()));
const envoyProtos = {
  name: 'envoy-protos-serialized',
  load(id) {
    if (id !== protoFiles) return null;
    return [
      "import protobuf from 'protobufjs';",
      'export function loadEnvoyRoot() {',
      `  const root = protobuf.Root.fromJSON(JSON.parse(${descriptor}));`,
      '  root.resolveAll();',
      '  return root;',
      '}',
    ].join('\n');
  },
};

/**
 * Packages that ship pre-bundled ESM with a runtime `__require(<package>)` (their own
 * `createRequire(import.meta.url)`; `@opentelemetry/otlp-grpc-exporter-base` does so for
 * `@grpc/grpc-js`) would load a second copy from node_modules at run time, or none in the image:
 * its objects then fail the bundled copy's `instanceof` checks ("Channel credentials must be a
 * ChannelCredentials object"). Such requires of packages are bound to the bundled module instead.
 */
const runtimeRequires = {
  name: 'bundle-runtime-requires',
  transform(code, id) {
    if (!id.includes('node_modules') || !code.includes('__require(')) return null;
    const specifiers = new Map();
    const rewritten = code.replace(/\b__require\((["'])([^"'`]+)\1\)/g, (call, _q, specifier) => {
      if (isBuiltin(specifier)) return call;
      if (!specifiers.has(specifier)) specifiers.set(specifier, `__bundled_require_${specifiers.size}`);
      return specifiers.get(specifier);
    });
    if (specifiers.size === 0) return null;
    const imports = [...specifiers].map(
      ([specifier, name]) => `import ${name} from ${JSON.stringify(specifier)};`,
    );
    return { code: `${imports.join('\n')}\n${rewritten}`, map: null };
  },
};

await build({
  input: entry,
  platform: 'node',
  resolve: { conditionNames: ['@ambient-mesh/source', 'node', 'import', 'default'] },
  plugins: [envoyProtos, metaUrl, runtimeRequires],
  external: [/\.node$/],
  // Written aside and renamed: a cluster starting meanwhile never runs half a file.
  // ASCII only, so V8 keeps the retained source as a one-byte string (half the memory).
  output: {
    file: `${outFile}.${process.pid}.tmp`,
    format: 'esm',
    minify: true,
    charset: 'ascii',
    codeSplitting: false,
  },
  logLevel: 'warn',
});
renameSync(`${outFile}.${process.pid}.tmp`, outFile);
console.error(`bundled ${relative(process.cwd(), entry)} -> ${relative(process.cwd(), outFile)}`);
