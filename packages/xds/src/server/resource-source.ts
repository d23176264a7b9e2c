/** What a server serves: the current resources of each type, read when a response is built. */
import type { core, protobuf } from '@ambient-mesh/xds-types';

export interface VersionedResource<T = unknown> {
  /** Changes whenever the value changes; compared with what a client holds. */
  readonly version: string;
  readonly value: T;
}

export interface ResourceSource {
  /** The current resources of a registered type, by name. */
  resources(typeUrl: string): ReadonlyMap<string, VersionedResource>;
}

/**
 * A response built on request rather than from a `ResourceSource`: debug types such as istiod's
 * `istio.io/debug/syncz`. Its resources are sent as they are (SotW: not wrapped in
 * `envoy.service.discovery.v3.Resource`, delta: named by `name`), it is never pushed and never appears in the sync status.
 */
export interface GeneratedResponse {
  readonly resources: readonly { readonly name: string; readonly resource: protobuf.AnyInit }[];
  /** Sent as the response's `control_plane`. */
  readonly controlPlane?: core.ControlPlaneInit;
}

/**
 * Answers a request for a type URL that no registered type serves; `undefined` when it does not
 * handle that type URL either (the request is then ignored as an unknown type). May throw an
 * `XdsError`; the stream then fails with its message.
 */
export type Generate = (typeUrl: string, resourceNames: readonly string[]) => GeneratedResponse | undefined;

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
  /** Generated (debug) types for this stream's client; none when absent. */
  readonly generate?: Generate;
  /** Milliseconds since the epoch; recorded as each type's last send time. Default `Date.now`. */
  now?(): number;
}

/** What a stream reports to its server. */
export interface StreamEvents {
  nack?(typeUrl: string, nonce: string, message: string): void;
  unknownType?(typeUrl: string): void;
}
