/**
 * Finds the Go HBONE peer (tools/hbone-peer, built by tools/install-deps.d/hbone-peer.sh) for the
 * interop tests: `HBONE_PEER_BIN`, or the cache path keyed by the hash of the tool's sources
 * (the same hash the build script computes).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const repoRoot = new URL('../../../../', import.meta.url).pathname;

export function hbonePeerPath(): string {
  const fromEnv = process.env.HBONE_PEER_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const src = join(repoRoot, 'tools', 'hbone-peer');
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(src, file)));
  const cache = process.env.AMBIENT_MESH_CACHE ?? join(homedir(), '.cache', 'ambient-mesh');
  return join(cache, 'hbone-peer', hash.digest('hex').slice(0, 16), 'hbone-peer');
}

/** The binary's path; throws with the command to run when it has not been built. */
export function requireHbonePeer(): string {
  const path = hbonePeerPath();
  if (!existsSync(path)) {
    throw new Error(
      `the Go HBONE interop peer is missing at ${path}: run "bash tools/install-deps.d/hbone-peer.sh" ` +
        '(needs Go and the Go module proxy), or set HBONE_PEER_BIN',
    );
  }
  return path;
}
