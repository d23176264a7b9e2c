import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { defaultCacheRoot } from '../layout.ts';

export interface ImageEntry {
  readonly command: readonly string[];
  readonly args?: readonly string[];
  /** The image's environment (a Dockerfile's ENV): containers' own env wins. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * How the image's files are built from the repository (the local stand-in for `docker build`):
   * an argv run once when a cluster starts, before any pod, e.g. the ztunnel bundle its command runs.
   */
  readonly build?: readonly string[];
}

export interface ImageMap {
  readonly images: Readonly<Record<string, ImageEntry>>;
}

/** Repository root (two levels above e2e/src). */
export function repoRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function defaultImagesFile(): string {
  return join(repoRoot(), 'e2e', 'images.json');
}

export function loadImageMap(path = defaultImagesFile()): ImageMap {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<ImageMap>;
  if (typeof parsed.images !== 'object') {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `${path} has no "images" object; see e2e/images.json`,
    );
  }
  return { images: parsed.images };
}

/** The `build` argvs of the map's images, with {node}, {repo} and {cache} substituted. */
export function imageBuilds(
  map: ImageMap,
  nodeBinary = process.execPath,
): { image: string; argv: string[] }[] {
  return Object.entries(map.images)
    .filter(([, entry]) => entry.build !== undefined && entry.build.length > 0)
    .map(([image, entry]) => ({ image, argv: (entry.build ?? []).map(s => substitute(s, nodeBinary)) }));
}

function substitute(s: string, nodeBinary: string): string {
  return s
    .replaceAll('{node}', nodeBinary)
    .replaceAll('{repo}', repoRoot())
    .replaceAll('{cache}', defaultCacheRoot());
}

/** `repo/name:tag` or `repo/name@sha256:...` without tag or digest. */
export function imageName(image: string): string {
  const at = image.indexOf('@');
  const noDigest = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

/**
 * The argv a container runs: Kubernetes' rule (container command replaces the image's command,
 * container args replace the image's args), with {node}, {repo} and {cache} (the build cache,
 * `~/.cache/ambient-mesh`, where Go-built tools live) substituted.
 */
export function resolveArgv(
  map: ImageMap,
  image: string,
  command: readonly string[] | undefined,
  args: readonly string[] | undefined,
  nodeBinary = process.execPath,
): string[] {
  const entry = map.images[imageName(image)];
  if (entry === undefined && (command === undefined || command.length === 0)) {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `image '${image}' is not in the local image map (e2e/images.json) and the container sets no command`,
    );
  }
  const subst = (s: string): string => substitute(s, nodeBinary);
  const cmd = command !== undefined && command.length > 0 ? command : (entry?.command ?? []);
  const a = args ?? (command !== undefined && command.length > 0 ? [] : (entry?.args ?? []));
  return [...cmd, ...a].map(subst);
}

/** The image's own environment with {node} and {repo} substituted (empty for unknown images). */
export function imageEnv(
  map: ImageMap,
  image: string,
  nodeBinary = process.execPath,
): Record<string, string> {
  const env = map.images[imageName(image)]?.env ?? {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v
        .replaceAll('{node}', nodeBinary)
        .replaceAll('{repo}', repoRoot())
        .replaceAll('{cache}', defaultCacheRoot()),
    ]),
  );
}

/** Kubernetes' $(VAR) expansion in command/args; $$ escapes. Unknown references stay as written. */
export function expandVars(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : m;
  });
}
