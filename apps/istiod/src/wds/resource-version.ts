/** Content versions for WDS resources: equal content gives an equal version, across restarts. */
import { createHash } from 'node:crypto';

/**
 * A short hash of the JSON rendering. The WDS builders emit keys in a fixed order (map-like
 * records such as `Workload.services` are filled in sorted key order), so plain
 * `JSON.stringify` is canonical for them and far cheaper than sorting every object.
 */
export function contentVersion(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
}
