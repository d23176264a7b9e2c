/**
 * Finds or builds upstream istiod (and istio's echo server/client) with
 * tools/install-deps.d/istio-upstream.sh, which caches them under
 * ~/.cache/ambient-mesh/istio/<label>/ and prints that dir last.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { runBuildScript } from '../exec.ts';

export interface UpstreamIstio {
  /** The cache dir of this build, e.g. `~/.cache/ambient-mesh/istio/1.27.3`. */
  readonly dir: string;
  /** The version label (`1.27.3`, or `<minor>-<commit>` when built from a branch commit). */
  readonly version: string;
  /** `istio.io/istio@<pseudo-version>` it was built from. */
  readonly module: string;
  readonly pilotDiscovery: string;
  /** Istio's echo server and client, or undefined when built with ISTIO_UPSTREAM_ECHO=0. */
  readonly echoServer: string | undefined;
  readonly echoClient: string | undefined;
  /** Istio CRDs (`crd-all.gen.yaml`) and the Gateway API CRDs istio's tests apply. */
  readonly crdFiles: readonly string[];
  /** `build-info.txt` as key → value (build_seconds, size_bytes.<binary>, go, ...). */
  readonly buildInfo: Readonly<Record<string, string>>;
}

/** The repository's tools/install-deps.d/istio-upstream.sh. */
export function upstreamInstallScriptPath(): string {
  return join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    '..',
    'tools',
    'install-deps.d',
    'istio-upstream.sh',
  );
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Reads `key=value` lines. */
export function parseBuildInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** Describes the build in `dir` (the script's output dir); throws when istiod is missing there. */
export function upstreamIstioAt(dir: string): UpstreamIstio {
  const infoPath = join(dir, 'build-info.txt');
  const buildInfo = existsSync(infoPath) ? parseBuildInfo(readFileSync(infoPath, 'utf8')) : {};
  const pilotDiscovery = join(dir, 'bin', 'pilot-discovery');
  if (!executable(pilotDiscovery)) {
    throw new ClusterError(
      ClusterErrorCode.BinaryMissing,
      `${pilotDiscovery} is missing; run tools/install-deps.d/istio-upstream.sh and read its output`,
    );
  }
  const optional = (name: string): string | undefined => {
    const p = join(dir, 'bin', name);
    return executable(p) ? p : undefined;
  };
  return {
    dir,
    version: buildInfo.version ?? dir.split('/').at(-1) ?? '',
    module: buildInfo.module ?? '',
    pilotDiscovery,
    echoServer: optional('echo-server'),
    echoClient: optional('echo-client'),
    crdFiles: [join(dir, 'crds', 'crd-all.gen.yaml'), join(dir, 'crds', 'gateway-api-crd.yaml')],
    buildInfo,
  };
}

/**
 * Runs the install script (a no-op when the cache is complete; a cold build takes a long time on
 * 2 cores) and describes the result. Progress lines go to `onProgress`.
 */
export async function ensureUpstreamIstio(
  onProgress: (line: string) => void = () => undefined,
): Promise<UpstreamIstio> {
  const script = upstreamInstallScriptPath();
  const dir = await runBuildScript(script, {
    progressPrefix: '[istio-upstream]',
    onProgress,
    what: 'upstream istiod',
    needs: 'Go and the Go module proxy',
  });
  return upstreamIstioAt(dir);
}
