/**
 * Typed errors of `@ambient-mesh/xds-types`. Every code starts with `XDS_` and is stable API.
 *
 * | code | class | thrown by |
 * | --- | --- | --- |
 * | `XDS_DECODE_FAILED` | {@link XdsDecodeError} | `codec.decode`, `unpackAny`, `fromStruct` |
 * | `XDS_ENCODE_INVALID` | {@link XdsEncodeError} | `codec.encode`, `packAny`, `toStruct` |
 * | `XDS_TYPE_URL_MISMATCH` | {@link XdsTypeUrlMismatchError} | `unpackAny` |
 * | `XDS_UNKNOWN_TYPE_URL` | {@link XdsUnknownTypeUrlError} | `packAny`, `unpackAny` |
 * | `XDS_UNKNOWN_MESSAGE_TYPE` | {@link XdsUnknownMessageTypeError} | `codecFor` |
 */
import { MeshError, errorMessage } from '@ambient-mesh/errors';

export const XdsErrorCode = {
  DECODE_FAILED: 'XDS_DECODE_FAILED',
  ENCODE_INVALID: 'XDS_ENCODE_INVALID',
  TYPE_URL_MISMATCH: 'XDS_TYPE_URL_MISMATCH',
  UNKNOWN_TYPE_URL: 'XDS_UNKNOWN_TYPE_URL',
  UNKNOWN_MESSAGE_TYPE: 'XDS_UNKNOWN_MESSAGE_TYPE',
} as const;
export type XdsErrorCode = (typeof XdsErrorCode)[keyof typeof XdsErrorCode];

/** Bytes that are not a valid encoding of the expected message (truncated, corrupt or of another type). */
export class XdsDecodeError extends MeshError {
  /** Full proto name of the message that was being decoded, e.g. `istio.workload.Address`. */
  readonly typeName: string;

  constructor(typeName: string, detail: string, cause?: unknown) {
    super(
      XdsErrorCode.DECODE_FAILED,
      `cannot decode ${typeName}: ${detail}; check that the bytes are one complete ${typeName} ` +
        '(framing, truncation, and the type URL the peer sent)',
      { cause },
    );
    this.typeName = typeName;
  }
}

/** A value that cannot be encoded as the message; `path` names the offending field. */
export class XdsEncodeError extends MeshError {
  readonly typeName: string;
  /** Dotted field path from the message root, e.g. `workload.addresses[1]`; empty for the root. */
  readonly path: string;

  constructor(typeName: string, path: string, detail: string) {
    super(
      XdsErrorCode.ENCODE_INVALID,
      `cannot encode ${typeName}: ${path === '' ? 'the value' : path}: ${detail}; ` +
        'check the field against the generated Init type',
    );
    this.typeName = typeName;
    this.path = path;
  }
}

/** An `Any` whose `type_url` is not the one the caller expected. */
export class XdsTypeUrlMismatchError extends MeshError {
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string) {
    super(
      XdsErrorCode.TYPE_URL_MISMATCH,
      `expected an Any of type ${expected} but got ${actual === '' ? 'an empty type URL' : actual}; ` +
        'check the type_url the resource was subscribed and sent with',
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** A type URL that names no message known to this package. */
export class XdsUnknownTypeUrlError extends MeshError {
  readonly typeUrl: string;

  constructor(typeUrl: string) {
    super(
      XdsErrorCode.UNKNOWN_TYPE_URL,
      `unknown type URL ${JSON.stringify(typeUrl)}; use one of the TypeUrl constants or ` +
        "'type.googleapis.com/<full message name>' for a message of @ambient-mesh/xds-types",
    );
    this.typeUrl = typeUrl;
  }
}

/** A full message name that this package does not define. */
export class XdsUnknownMessageTypeError extends MeshError {
  readonly typeName: string;

  constructor(typeName: string, cause?: unknown) {
    super(
      XdsErrorCode.UNKNOWN_MESSAGE_TYPE,
      `unknown message type ${JSON.stringify(typeName)}${cause === undefined ? '' : ` (${errorMessage(cause)})`}; ` +
        'pass a full name such as istio.workload.Address',
      { cause },
    );
    this.typeName = typeName;
  }
}
