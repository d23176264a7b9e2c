/** Packing and unpacking `google.protobuf.Any`-wrapped resources with typed errors. */
import { codecFor, isMessageTypeName } from './codec.ts';
import type { Decoded, Init, MessageTypeName } from './codec.ts';
import { XdsTypeUrlMismatchError, XdsUnknownTypeUrlError } from './errors.ts';
import type * as protobuf from './generated/google/protobuf.ts';
import { typeNameOfUrl } from './type-url.ts';
import type { MessageTypeUrl } from './type-url.ts';

/**
 * Encodes `value` as message `typeUrl` names and wraps it in an `Any`.
 * Throws {@link XdsUnknownTypeUrlError} for a type URL naming no message of this package and
 * `XdsEncodeError` for an invalid value.
 */
export function packAny<N extends MessageTypeName>(typeUrl: MessageTypeUrl<N>, value: Init<N>): protobuf.Any {
  const typeName = typeNameOfUrl(typeUrl);
  if (!isMessageTypeName(typeName)) throw new XdsUnknownTypeUrlError(typeUrl);
  return { type_url: typeUrl, value: codecFor(typeName).encode(value) };
}

/**
 * Decodes the message inside `any`, which must carry exactly `expectedTypeUrl`.
 * Throws {@link XdsUnknownTypeUrlError} when `expectedTypeUrl` names no message of this package,
 * {@link XdsTypeUrlMismatchError} when `any` is missing or of another type, and `XdsDecodeError`
 * (`XDS_DECODE_FAILED`) when its bytes are malformed.
 */
export function unpackAny<N extends MessageTypeName>(
  any: protobuf.AnyInit | null | undefined,
  expectedTypeUrl: MessageTypeUrl<N>,
): Decoded<N> {
  const typeName = typeNameOfUrl(expectedTypeUrl);
  if (!isMessageTypeName(typeName)) throw new XdsUnknownTypeUrlError(expectedTypeUrl);
  const actual = any?.type_url ?? '';
  if (actual !== expectedTypeUrl) throw new XdsTypeUrlMismatchError(expectedTypeUrl, actual);
  return codecFor(typeName as N).decode(any?.value ?? new Uint8Array(0));
}
