/**
 * Typed encode/decode for every message of this package.
 *
 * `decode` = protobufjs decode + `toObject` with {@link DECODE_OPTIONS}, which is the shape the
 * generated decoded interfaces describe. Unknown fields are skipped. Any malformed input
 * (truncated, garbage, too deeply nested) throws {@link XdsDecodeError}; no partial object escapes.
 *
 * `encode` checks the value field by field (see `encode-input.ts`), runs protobufjs `verify`,
 * and writes canonical proto3 bytes (fields in tag order, zero scalars omitted). A bad value
 * throws {@link XdsEncodeError} with the field path.
 */
import type protobuf from 'protobufjs';
import { errorMessage } from '@ambient-mesh/errors';
import { prepareForEncode } from './encode-input.ts';
import { XdsDecodeError, XdsEncodeError, XdsUnknownMessageTypeError } from './errors.ts';
import type { MessageTypes } from './generated/registry.ts';
import { lookupMessageType } from './message-root.ts';

/** The `toObject` options the generated decoded types are written for. */
export const DECODE_OPTIONS: Readonly<protobuf.IConversionOptions> = Object.freeze({
  longs: Number,
  enums: Number,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
});

/** Full proto name of a message this package defines, e.g. `istio.workload.Address`. */
export type MessageTypeName = keyof MessageTypes;
/** The decoded shape of message `N`. */
export type Decoded<N extends MessageTypeName> = MessageTypes[N]['decoded'];
/** The encoding input of message `N`. */
export type Init<N extends MessageTypeName> = MessageTypes[N]['init'];

export interface MessageCodec<T, I> {
  /** Full proto name, e.g. `istio.workload.Address`. */
  readonly typeName: string;
  /** Encodes `value`; throws {@link XdsEncodeError} naming the offending field. */
  encode(value: I): Uint8Array;
  /**
   * Decodes `bytes`; throws {@link XdsDecodeError} on malformed input. Decoded `bytes` fields are
   * Node `Buffer`s (so `Uint8Array`s) that may share memory with `bytes`.
   */
  decode(bytes: Uint8Array): T;
}

class ReflectedCodec<T, I> implements MessageCodec<T, I> {
  readonly typeName: string;
  readonly #type: protobuf.Type;

  constructor(typeName: string, type: protobuf.Type) {
    this.typeName = typeName;
    this.#type = type;
  }

  encode(value: I): Uint8Array {
    const prepared = prepareForEncode(this.#type, value);
    if (!prepared.ok) throw new XdsEncodeError(this.typeName, prepared.issue.path, prepared.issue.detail);
    return this.#type.encode(prepared.value as Record<string, unknown>).finish();
  }

  decode(bytes: Uint8Array): T {
    if (!(bytes instanceof Uint8Array)) {
      throw new XdsDecodeError(this.typeName, `expected a Uint8Array, got ${typeof bytes}`);
    }
    let message: protobuf.Message;
    try {
      // Always through a Buffer view (no copy): protobufjs then reads strings with Node's fast
      // path and every decoded bytes field is a Buffer, whatever the caller passed.
      const view = Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      message = this.#type.decode(view);
    } catch (err) {
      throw new XdsDecodeError(this.typeName, errorMessage(err), err);
    }
    try {
      return this.#type.toObject(message, DECODE_OPTIONS) as T;
    } catch (err) {
      throw new XdsDecodeError(this.typeName, errorMessage(err), err);
    }
  }
}

const codecs = new Map<string, MessageCodec<unknown, unknown>>();

/**
 * The codec of message `typeName`. Throws {@link XdsUnknownMessageTypeError} for a name this
 * package does not define.
 */
export function codecFor<N extends MessageTypeName>(typeName: N): MessageCodec<Decoded<N>, Init<N>>;
export function codecFor(typeName: string): MessageCodec<unknown, unknown>;
export function codecFor(typeName: string): MessageCodec<unknown, unknown> {
  const cached = codecs.get(typeName);
  if (cached) return cached;
  const type = lookupMessageType(typeName);
  if (!type) throw new XdsUnknownMessageTypeError(typeName);
  const codec = new ReflectedCodec<unknown, unknown>(typeName, type);
  codecs.set(typeName, codec);
  return codec;
}

/** True when `typeName` is a message this package defines. */
export function isMessageTypeName(typeName: string): typeName is MessageTypeName {
  return lookupMessageType(typeName) !== null;
}

/** A codec whose type is resolved on first use, so importing the package stays cheap. */
function lazyCodec<N extends MessageTypeName>(typeName: N): MessageCodec<Decoded<N>, Init<N>> {
  return {
    typeName,
    encode: value => codecFor(typeName).encode(value),
    decode: bytes => codecFor(typeName).decode(bytes),
  };
}

export const AddressCodec = lazyCodec('istio.workload.Address');
export const WorkloadCodec = lazyCodec('istio.workload.Workload');
export const ServiceCodec = lazyCodec('istio.workload.Service');
export const AuthorizationCodec = lazyCodec('istio.security.Authorization');
export const DeltaDiscoveryRequestCodec = lazyCodec('envoy.service.discovery.v3.DeltaDiscoveryRequest');
export const DeltaDiscoveryResponseCodec = lazyCodec('envoy.service.discovery.v3.DeltaDiscoveryResponse');
export const DiscoveryRequestCodec = lazyCodec('envoy.service.discovery.v3.DiscoveryRequest');
export const DiscoveryResponseCodec = lazyCodec('envoy.service.discovery.v3.DiscoveryResponse');
export const ZdsHelloCodec = lazyCodec('istio.workload.zds.ZdsHello');
export const WorkloadRequestCodec = lazyCodec('istio.workload.zds.WorkloadRequest');
export const WorkloadResponseCodec = lazyCodec('istio.workload.zds.WorkloadResponse');
export const IstioCertificateRequestCodec = lazyCodec('istio.v1.auth.IstioCertificateRequest');
export const IstioCertificateResponseCodec = lazyCodec('istio.v1.auth.IstioCertificateResponse');
export const NodeCodec = lazyCodec('envoy.config.core.v3.Node');
export const ClientConfigCodec = lazyCodec('envoy.service.status.v3.ClientConfig');
export const StatusCodec = lazyCodec('google.rpc.Status');
export const StructCodec = lazyCodec('google.protobuf.Struct');
