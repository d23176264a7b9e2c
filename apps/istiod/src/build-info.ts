/**
 * istiod's build information: the version comes from this package's package.json (the same file
 * whether running from src/ or dist/, both one level below it), never a constant. `versionString`
 * is upstream's `BuildInfo.String()` layout, `<version>-<gitRevision>-<buildStatus>`, which is what
 * `/version` on 15014 and the `pilot_info` metric carry.
 */
import { packageVersion as readPackageVersion } from '@ambient-mesh/runtime';

export interface BuildInfo {
  readonly version: string;
  readonly gitRevision: string;
  readonly buildStatus: string;
  readonly gitTag: string;
}

const packageVersion = readPackageVersion(new URL('../package.json', import.meta.url));

export const buildInfo: BuildInfo = {
  version: packageVersion,
  gitRevision: 'unknown',
  buildStatus: 'Clean',
  gitTag: packageVersion,
};

/** Upstream's `BuildInfo.String()`: `1.2.3-<revision>-<status>`. */
export function versionString(info: BuildInfo = buildInfo): string {
  return `${info.version}-${info.gitRevision}-${info.buildStatus}`;
}
