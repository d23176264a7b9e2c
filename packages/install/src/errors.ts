/** Typed errors of the installer; `code` is one of {@link InstallErrorCode}. */
import { MeshError, type MeshErrorOptions } from '@ambient-mesh/errors';

export const InstallErrorCode = {
  /** A manifest document lacks apiVersion, kind or metadata.name, or is not YAML. */
  InvalidManifest: 'INSTALL_INVALID_MANIFEST',
  /** The manifests directory (or a component's folder in it) does not exist. */
  ManifestsMissing: 'INSTALL_MANIFESTS_MISSING',
  /** Something did not become ready (or go away) before its deadline. */
  Timeout: 'INSTALL_TIMEOUT',
} as const;
export type InstallErrorCode = (typeof InstallErrorCode)[keyof typeof InstallErrorCode];

export class InstallError extends MeshError {
  declare readonly code: InstallErrorCode;

  constructor(code: InstallErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }
}
