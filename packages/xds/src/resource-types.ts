/**
 * The resource-type registry: which type URLs a server serves or a client understands, each
 * with its encoder and decoder (usually an `@ambient-mesh/xds-types` codec).
 */
import type { MessageCodec } from '@ambient-mesh/xds-types';
import { XdsError, XdsErrorCode } from './errors.ts';

export interface ResourceType<T = unknown> {
  readonly typeUrl: string;
  /** The `Any.value` bytes of `value`. */
  encode(value: T): Uint8Array;
  /** The value of `Any.value` bytes; throws on malformed input. */
  decode(bytes: Uint8Array): T;
}

/** A resource type from a codec: `resourceType(TypeUrl.address, AddressCodec)`. */
export function resourceType<T, I = T>(typeUrl: string, codec: MessageCodec<T, I>): ResourceType<T> {
  return {
    typeUrl,
    encode: value => codec.encode(value as unknown as I),
    decode: bytes => codec.decode(bytes),
  };
}

export class ResourceTypeRegistry {
  readonly #types = new Map<string, ResourceType>();

  constructor(types: readonly ResourceType[] = []) {
    for (const type of types) this.register(type);
  }

  /** Adds a type; throws `XDS_DUPLICATE_TYPE` if its type URL is already registered. */
  register<T>(type: ResourceType<T>): this {
    if (this.#types.has(type.typeUrl)) {
      throw new XdsError(XdsErrorCode.DuplicateType, `type ${type.typeUrl} is already registered`);
    }
    this.#types.set(type.typeUrl, type);
    return this;
  }

  get(typeUrl: string): ResourceType | undefined {
    return this.#types.get(typeUrl);
  }

  has(typeUrl: string): boolean {
    return this.#types.has(typeUrl);
  }

  get typeUrls(): readonly string[] {
    return [...this.#types.keys()];
  }
}
