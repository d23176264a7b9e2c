/**
 * The informer's store of objects, keyed `namespace/name`. The informer is its single writer;
 * everyone else gets the read-only view.
 */
import { objectKey, type KubeObject } from './resources.ts';

export interface ReadonlyCache<T> {
  /** A namespaced object by namespace and name, or a cluster-scoped one by name. */
  get(name: string, namespace?: string): T | undefined;
  /** Every object (optionally of one namespace), in no particular order. */
  list(namespace?: string): T[];
  readonly size: number;
}

export class ObjectStore<T extends KubeObject> implements ReadonlyCache<T> {
  readonly #items = new Map<string, T>();

  get size(): number {
    return this.#items.size;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#items.get(namespace === undefined || namespace === '' ? name : `${namespace}/${name}`);
  }

  list(namespace?: string): T[] {
    const all = [...this.#items.values()];
    return namespace === undefined ? all : all.filter(o => o.metadata?.namespace === namespace);
  }

  /** Stores `obj`; answers the object it replaced. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    this.#items.set(key, obj);
    return old;
  }

  /** Removes the object with `obj`'s key; answers the cached one. */
  remove(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    this.#items.delete(key);
    return old;
  }

  entries(): [string, T][] {
    return [...this.#items.entries()];
  }
}
