/** The typed errors of `@ambient-mesh/xds`, each with a stable code. */
import { MeshError, type MeshErrorOptions } from '@ambient-mesh/errors';

export const XdsErrorCode = {
  /** A resource type was registered twice under one type URL. */
  DuplicateType: 'XDS_DUPLICATE_TYPE',
  /** Two handlers were given for one type URL. */
  DuplicateHandler: 'XDS_DUPLICATE_HANDLER',
  /** A resource of a type URL that is not registered had to be encoded. */
  UnknownType: 'XDS_UNKNOWN_TYPE',
  /** A client was built with no handler, or with options that contradict each other. */
  InvalidOptions: 'XDS_INVALID_OPTIONS',
  /** The bearer token for the control plane could not be read. */
  TokenUnreadable: 'XDS_TOKEN_UNREADABLE',
} as const;
export type XdsErrorCode = (typeof XdsErrorCode)[keyof typeof XdsErrorCode];

/** Every error this package throws; `code` is one of {@link XdsErrorCode}. */
export class XdsError extends MeshError {
  declare readonly code: XdsErrorCode;

  constructor(code: XdsErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }
}
