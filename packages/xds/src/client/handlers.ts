/**
 * What a client hands its resources to: one handler per type URL that applies a response's
 * resources and returns the ones it rejected (never throws across the stream). `typedHandler`
 * decodes each `Any` with a registered resource type first, rejecting what does not decode.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { protobuf } from '@ambient-mesh/xds-types';
import type { Rejection } from '../nack.ts';
import type { ResourceType } from '../resource-types.ts';

export interface IncomingResource {
  readonly name: string;
  readonly version: string;
  /** Delta `Resource.aliases`; empty for SotW. */
  readonly aliases: readonly string[];
  readonly resource: protobuf.Any | null;
}

/** Applies one response's resources of one type; returns the ones it rejected. */
export interface ResourceHandler {
  readonly typeUrl: string;
  /** Names to subscribe to; absent or empty: every resource of the type (wildcard). */
  readonly resourceNames?: readonly string[];
  /**
   * SotW only: the name of a resource that arrived without the `Resource` wrapper. Without it,
   * such resources are rejected.
   */
  nameOf?(resource: protobuf.Any): string;
  /**
   * Applies them; returns the rejected ones, or a promise of them when applying needs I/O (the
   * ACK or NACK then waits for it, and later responses are handled after it, in order).
   */
  handle(
    resources: readonly IncomingResource[],
    removed: readonly string[],
  ): readonly Rejection[] | Promise<readonly Rejection[]>;
}

export interface DecodedResource<T> {
  readonly name: string;
  readonly version: string;
  readonly value: T;
}

export interface TypedHandlerOptions<T> {
  readonly type: ResourceType<T>;
  readonly resourceNames?: readonly string[];
  /** SotW only: the name of an unwrapped resource, from its decoded value. */
  readonly nameOf?: (value: T) => string;
  /** Applies the decoded resources; may reject more of them (validation). */
  apply(accepted: readonly DecodedResource<T>[], removed: readonly string[]): readonly Rejection[];
}

/** A handler that decodes every resource with `type` and rejects, by name, what does not decode. */
export function typedHandler<T>(options: TypedHandlerOptions<T>): ResourceHandler {
  const { type } = options;
  const nameOf = options.nameOf;
  return {
    typeUrl: type.typeUrl,
    ...(options.resourceNames === undefined ? {} : { resourceNames: options.resourceNames }),
    ...(nameOf === undefined ? {} : { nameOf: (any: protobuf.Any) => nameOf(type.decode(any.value)) }),
    handle(resources, removed) {
      const accepted: DecodedResource<T>[] = [];
      const rejected: Rejection[] = [];
      for (const r of resources) {
        if (r.resource === null) {
          rejected.push({ name: r.name, reason: 'the resource carries no value' });
          continue;
        }
        if (r.resource.type_url !== type.typeUrl) {
          rejected.push({ name: r.name, reason: `expected ${type.typeUrl}, got ${r.resource.type_url}` });
          continue;
        }
        try {
          accepted.push({ name: r.name, version: r.version, value: type.decode(r.resource.value) });
        } catch (err) {
          rejected.push({ name: r.name, reason: errorMessage(err) });
        }
      }
      const more = options.apply(accepted, removed);
      return [...rejected, ...more];
    },
  };
}
