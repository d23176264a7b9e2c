/**
 * A typed informer: list a collection, then watch it from the list's resourceVersion, keeping a
 * read-only cache and calling add/update/delete handlers.
 *
 * - A watch that ends (server timeout, dropped connection, apiserver restart) resumes from the
 *   last resourceVersion seen (events and bookmarks advance it): no relist, no duplicate events.
 * - 410 Gone (the resourceVersion was compacted) relists at once; objects that vanished while
 *   disconnected are reported as deletes, changed ones as updates.
 * - Any other failure waits a capped exponential back-off with jitter, then resumes (or relists
 *   when no list succeeded yet). A watch that ends at once without events also backs off, so a
 *   server that closes every stream is not hammered.
 * - `synced` resolves after the first list; handlers registered before `start()` see every object
 *   of it as an add.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { ObjectStore, type ReadonlyCache } from './cache.ts';
import type { KubeClient, Query } from './client.ts';
import { KubeError, KubeErrorCode, isGone } from './errors.ts';
import { objectKey, type KubeList, type KubeObject } from './resources.ts';
import { sleep, systemTimers, type Timers } from './timers.ts';
import type { WatchEvent } from './watch-stream.ts';

/** Where an informer lists and watches; `KubeClient` provides it through {@link clientSource}. */
export interface ListWatchSource<T> {
  list(signal: AbortSignal): Promise<KubeList<T>>;
  watch(resourceVersion: string, signal: AbortSignal, onEvent: (event: WatchEvent<T>) => void): Promise<void>;
}

export interface InformerHandlers<T> {
  readonly add?: (obj: T) => void;
  readonly update?: (oldObj: T, newObj: T) => void;
  readonly delete?: (obj: T) => void;
}

export interface InformerOptions<T> {
  /** For messages: `pods`, `authorizationpolicies`. */
  readonly name: string;
  readonly source: ListWatchSource<T>;
  readonly timers?: Timers;
  readonly backoff?: BackoffOptions;
  /** Every list or watch failure (the informer keeps going); default: ignored. */
  readonly onError?: (
    err: unknown,
    context: { readonly relisting: boolean; readonly retryInMs: number },
  ) => void;
  /** A handler threw; default: reported through `onError`. */
  readonly onHandlerError?: (err: unknown) => void;
  /** A watch shorter than this that delivered nothing counts as a failure (default 1 s). */
  readonly minWatchMs?: number;
}

/** The list-watch source of a collection path (`/api/v1/pods`) of a client. */
export function clientSource<T>(
  client: KubeClient,
  path: string,
  options: { readonly query?: Query; readonly timeoutSeconds?: () => number } = {},
): ListWatchSource<T> {
  const query = options.query ?? {};
  // Spread the watches' server-side timeouts (5-10 min) like client-go does.
  const timeoutSeconds = options.timeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));
  return {
    list: () => client.list<T>(path, query),
    watch: (resourceVersion, signal, onEvent) =>
      client.watch<T>(path, { query, resourceVersion, timeoutSeconds: timeoutSeconds(), signal }, onEvent),
  };
}

type Listeners<T> = { [K in keyof InformerHandlers<T>]-?: Set<NonNullable<InformerHandlers<T>[K]>> };

export class Informer<T extends KubeObject> {
  readonly #opts: InformerOptions<T>;
  readonly #timers: Timers;
  readonly #backoff: Backoff;
  readonly #store = new ObjectStore<T>();
  readonly #listeners: Listeners<T> = { add: new Set(), update: new Set(), delete: new Set() };
  readonly #abort = new AbortController();
  readonly #synced: Promise<void>;
  #resolveSynced: () => void = () => undefined;
  #rejectSynced: (err: unknown) => void = () => undefined;
  #hasSynced = false;
  #resourceVersion: string | undefined;
  #running: Promise<void> | undefined;
  #lists = 0;
  #watches = 0;

  constructor(options: InformerOptions<T>) {
    this.#opts = options;
    this.#timers = options.timers ?? systemTimers;
    this.#backoff = new Backoff(options.backoff);
    this.#synced = new Promise<void>((resolve, reject) => {
      this.#resolveSynced = resolve;
      this.#rejectSynced = reject;
    });
    // A stop before sync rejects `synced`; nobody awaiting it is not an unhandled rejection.
    this.#synced.catch(() => undefined);
  }

  /** The objects as last seen; the informer is its only writer. */
  get cache(): ReadonlyCache<T> {
    return this.#store;
  }

  /** Resolves after the first successful list; rejects with `KUBE_INFORMER_STOPPED` on an earlier stop. */
  get synced(): Promise<void> {
    return this.#synced;
  }

  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** The resourceVersion the next watch starts from. */
  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  /** Lists done (the first, then one per 410 Gone or failed first list). */
  get lists(): number {
    return this.#lists;
  }

  /** Watches opened. */
  get watches(): number {
    return this.#watches;
  }

  /** Registers handlers; answers a function that removes them. */
  on(handlers: InformerHandlers<T>): () => void {
    const added: [keyof Listeners<T>, unknown][] = [];
    const given: Record<keyof Listeners<T>, unknown> = {
      add: handlers.add,
      update: handlers.update,
      delete: handlers.delete,
    };
    for (const key of ['add', 'update', 'delete'] as const) {
      const h = given[key];
      if (h === undefined) continue;
      (this.#listeners[key] as Set<unknown>).add(h);
      added.push([key, h]);
    }
    return () => {
      for (const [key, h] of added) (this.#listeners[key] as Set<unknown>).delete(h);
    };
  }

  /** Starts listing and watching (once); resolves as `synced` does. */
  start(): Promise<void> {
    this.#running ??= this.#run();
    return this.#synced;
  }

  /** Stops watching; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#abort.abort();
    if (!this.#hasSynced) {
      this.#rejectSynced(
        new KubeError(KubeErrorCode.Stopped, `informer ${this.#opts.name} stopped before its first list`),
      );
    }
    await this.#running;
  }

  #isStopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!this.#isStopped()) {
      let relisting = this.#resourceVersion === undefined;
      let events = 0;
      try {
        if (this.#resourceVersion === undefined) await this.#list(signal);
        relisting = false;
        if (this.#isStopped()) return;
        const opened = this.#timers.now();
        this.#watches++;
        await this.#opts.source.watch(this.#resourceVersion ?? '', signal, ev => {
          events++;
          this.#apply(ev);
        });
        if (this.#isStopped()) return;
        if (events > 0 || this.#timers.now() - opened >= (this.#opts.minWatchMs ?? 1000)) {
          this.#backoff.reset();
          continue;
        }
        // Ended at once with nothing: treat like a failure so a closing server is not hammered.
        await sleep(this.#timers, this.#backoff.next(), signal);
      } catch (err) {
        if (this.#isStopped()) return;
        if (isGone(err)) {
          // The resourceVersion was compacted: relist now (a failing list backs off below).
          this.#resourceVersion = undefined;
          this.#opts.onError?.(err, { relisting: true, retryInMs: 0 });
          continue;
        }
        // A watch that delivered events was healthy: its failure starts the back-off afresh.
        if (events > 0) this.#backoff.reset();
        const delay = this.#backoff.next();
        this.#opts.onError?.(err, { relisting, retryInMs: delay });
        await sleep(this.#timers, delay, signal);
      }
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    this.#lists++;
    const list = await this.#opts.source.list(signal);
    if (this.#isStopped()) return;
    const seen = new Set<string>();
    for (const obj of list.items) {
      seen.add(objectKey(obj));
      const old = this.#store.upsert(obj);
      if (old === undefined) this.#emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.#emitUpdate(old, obj);
    }
    for (const [key, obj] of this.#store.entries()) {
      if (seen.has(key)) continue;
      this.#store.remove(obj);
      this.#emit('delete', obj);
    }
    this.#resourceVersion = list.metadata.resourceVersion ?? '';
    this.#backoff.reset();
    if (!this.#hasSynced) {
      this.#hasSynced = true;
      this.#resolveSynced();
    }
  }

  #apply(ev: WatchEvent<T>): void {
    const rv = ev.object.metadata?.resourceVersion;
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const old = this.#store.upsert(ev.object);
        if (old === undefined) this.#emit('add', ev.object);
        else this.#emitUpdate(old, ev.object);
        break;
      }
      case 'DELETED': {
        const old = this.#store.remove(ev.object);
        this.#emit('delete', old ?? ev.object);
        break;
      }
      case 'BOOKMARK':
        break;
    }
    if (rv !== undefined && rv !== '') this.#resourceVersion = rv;
  }

  #emit(kind: 'add' | 'delete', obj: T): void {
    for (const h of this.#listeners[kind])
      this.#guard(() => {
        h(obj);
      });
  }

  #emitUpdate(oldObj: T, newObj: T): void {
    for (const h of this.#listeners.update)
      this.#guard(() => {
        h(oldObj, newObj);
      });
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.#opts.onHandlerError) this.#opts.onHandlerError(err);
      else
        this.#opts.onError?.(
          new Error(`informer ${this.#opts.name}: a handler threw: ${errorMessage(err)}`, { cause: err }),
          { relisting: false, retryInMs: 0 },
        );
    }
  }
}
