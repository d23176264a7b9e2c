/** What a server serves: the current resources of each type, read when a response is built. */

export interface VersionedResource<T = unknown> {
  /** Changes whenever the value changes; compared with what a client holds. */
  readonly version: string;
  readonly value: T;
}

export interface ResourceSource {
  /** The current resources of a registered type, by name. */
  resources(typeUrl: string): ReadonlyMap<string, VersionedResource>;
}

/** What a stream needs from its server: resources, encoding (cached), nonces, the push version. */
export interface StreamServices {
  readonly source: ResourceSource;
  /** The `Any.value` bytes of a resource; cached per resource object by the server. */
  encode(typeUrl: string, resource: VersionedResource): Uint8Array;
  /** The bytes of an `envoy.service.discovery.v3.Resource` carrying `resource` (SotW); cached. */
  encodeWrapped(typeUrl: string, name: string, resource: VersionedResource): Uint8Array;
  /** True when the type URL is registered. */
  serves(typeUrl: string): boolean;
  nextNonce(): string;
  /** The server's current push version (`version_info` / `system_version_info`). */
  version(): string;
}

/** What a stream reports to its server. */
export interface StreamEvents {
  nack?(typeUrl: string, nonce: string, message: string): void;
  unknownType?(typeUrl: string): void;
}
