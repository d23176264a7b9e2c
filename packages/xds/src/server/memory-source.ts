/**
 * A `ResourceSource` held in memory: set and delete resources by type URL and name; each call
 * returns the `ResourceChanges` to push. Versions are a per-source counter. For tests, tools and
 * small servers; a real control plane implements `ResourceSource` over its own index.
 */
import type { ResourceChanges } from './push-queue.ts';
import type { ResourceSource, VersionedResource } from './resource-source.ts';

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();

export class MemoryResourceSource implements ResourceSource {
  readonly #types = new Map<string, Map<string, VersionedResource>>();
  #version = 0;

  resources(typeUrl: string): ReadonlyMap<string, VersionedResource> {
    return this.#types.get(typeUrl) ?? EMPTY;
  }

  /** Adds or replaces a resource; returns the change to push. */
  set(typeUrl: string, name: string, value: unknown): ResourceChanges {
    let byName = this.#types.get(typeUrl);
    if (byName === undefined) {
      byName = new Map();
      this.#types.set(typeUrl, byName);
    }
    byName.set(name, { version: `v${++this.#version}`, value });
    return new Map([[typeUrl, new Set([name])]]);
  }

  /** Removes a resource; returns the change to push (empty when it did not exist). */
  delete(typeUrl: string, name: string): ResourceChanges {
    const existed = this.#types.get(typeUrl)?.delete(name) ?? false;
    return new Map([[typeUrl, new Set(existed ? [name] : [])]]);
  }
}
