import { MeshError, type MeshErrorOptions } from '@ambient-mesh/errors';

/** Stable codes of the delta-xDS test client. */
export const XdsClientErrorCode = {
  /** The gRPC stream ended or failed (TLS, authentication, istiod closed it). */
  StreamFailed: 'XDS_CLIENT_STREAM_FAILED',
  /** A `waitFor` condition did not hold before its deadline. */
  Timeout: 'XDS_CLIENT_TIMEOUT',
  /** A response carried a resource this client could not decode. */
  BadResponse: 'XDS_CLIENT_BAD_RESPONSE',
  /** The client was used after `close()`, or connected twice. */
  InvalidState: 'XDS_CLIENT_INVALID_STATE',
} as const;
export type XdsClientErrorCode = (typeof XdsClientErrorCode)[keyof typeof XdsClientErrorCode];

/** Every error the delta-xDS test client raises. `code` is one of {@link XdsClientErrorCode}. */
export class XdsClientError extends MeshError {
  declare readonly code: XdsClientErrorCode;

  constructor(code: XdsClientErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }
}
