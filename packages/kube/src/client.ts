/**
 * A Kubernetes REST client over JSON paths. Authentication (client certificates, bearer tokens,
 * exec plugins, in-cluster service accounts) is `@kubernetes/client-node`'s `KubeConfig`; the
 * requests are plain `http`/`https` so callers get merge, strategic and apply patches, status
 * subresources, pod proxies and watch streams without the generated API surface. Every failure is
 * a `KubeApiError` (the apiserver answered) or a `KubeUnreachableError` (it did not).
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfigHandle } from './kube-config.ts';
import {
  KubeApiError,
  KubeError,
  KubeErrorCode,
  KubeUnreachableError,
  isAlreadyExists,
  isNotFound,
} from './errors.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import { ResourceResolver, type KubeList, type KubeObject } from './resources.ts';
import { parseWatchLines, type WatchEvent } from './watch-stream.ts';

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface RequestOptions {
  readonly body?: unknown;
  /** Default `application/json` when there is a body. */
  readonly contentType?: string;
  readonly query?: Query;
  readonly signal?: AbortSignal;
  /** Socket idle timeout (default 30 s). */
  readonly timeoutMs?: number;
}

export interface ApplyOptions {
  /** Who owns the applied fields (`metadata.managedFields[].manager`). */
  readonly fieldManager: string;
  /** Take over fields another manager owns (default false: a conflict is a 409). */
  readonly force?: boolean;
  /** Apply to a subresource, e.g. `status`. */
  readonly subresource?: string;
}

export interface DeleteOptions {
  readonly propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  readonly gracePeriodSeconds?: number;
  /** Delete only this incarnation (uid) or version of the object. */
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

export interface WatchOptions {
  readonly query?: Query;
  /** The resourceVersion to watch from (events after it). */
  readonly resourceVersion?: string | undefined;
  /** Ask the server to end the stream after this long (it may end it sooner). */
  readonly timeoutSeconds?: number;
  readonly signal?: AbortSignal;
}

export const MergePatch = 'application/merge-patch+json';
export const StrategicMergePatch = 'application/strategic-merge-patch+json';
export const JsonPatch = 'application/json-patch+json';
export const ApplyPatch = 'application/apply-patch+yaml';

export class KubeClient {
  readonly config: KubeConfigHandle;
  /** The apiserver URL without a trailing slash. */
  readonly server: string;
  readonly resources: ResourceResolver;

  constructor(config: KubeConfigHandle) {
    this.config = config;
    const cluster = config.getCurrentCluster();
    if (cluster === null) {
      throw new KubeError(
        KubeErrorCode.Config,
        'the kubeconfig has no current cluster; check its current-context',
      );
    }
    this.server = cluster.server.replace(/\/$/, '');
    this.resources = new ResourceResolver(path => this.get(path));
  }

  /** From a kubeconfig file (empty: `$KUBECONFIG`, in-cluster, `~/.kube/config`). */
  static fromFile(file: string): KubeClient {
    return new KubeClient(loadKubeConfig({ file }));
  }

  /** The pod's service account: projected token, `ca.crt`, `KUBERNETES_SERVICE_HOST/PORT`. */
  static inCluster(): KubeClient {
    return new KubeClient(loadKubeConfig({ inCluster: true }));
  }

  async #requestOptions(
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<{ url: URL; options: https.RequestOptions }> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const options: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(options);
    const headers: Record<string, string> = { ...(options.headers as Record<string, string>) };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    return { url, options: { ...options, headers, ...(opts.signal ? { signal: opts.signal } : {}) } };
  }

  #send(
    url: URL,
    options: https.RequestOptions,
    onResponse: (res: http.IncomingMessage) => void,
  ): http.ClientRequest {
    return url.protocol === 'http:'
      ? http.request(url, options, onResponse)
      : https.request(url, options, onResponse);
  }

  /** Sends a request and parses the JSON answer (text when it is not JSON). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const operation = `${method} ${path}`;
    const { url, options } = await this.#requestOptions(method, path, opts);
    const payload =
      opts.body === undefined
        ? undefined
        : typeof opts.body === 'string'
          ? opts.body
          : JSON.stringify(opts.body);
    const headers = { ...(options.headers as Record<string, string>) };
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    return new Promise<T>((resolve, reject) => {
      const req = this.#send(url, { ...options, headers, timeout: opts.timeoutMs ?? 30_000 }, res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', e => {
          reject(new KubeUnreachableError(operation, e));
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(KubeApiError.fromResponse(status, text, operation));
            return;
          }
          const type = res.headers['content-type'] ?? '';
          try {
            resolve((type.includes('json') && text !== '' ? JSON.parse(text) : text) as T);
          } catch (e) {
            reject(new KubeApiError(status, 'BadResponse', operation, `unparsable JSON (${String(e)})`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', e => {
        reject(new KubeUnreachableError(operation, e));
      });
      req.end(payload);
    });
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query === undefined ? {} : { query });
  }

  /** GET that answers undefined for 404. */
  async find<T>(path: string, query?: Query): Promise<T | undefined> {
    try {
      return await this.get<T>(path, query);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Lists a collection (`/api/v1/pods`, with `labelSelector`/`fieldSelector` in `query`). */
  list<T>(path: string, query?: Query): Promise<KubeList<T>> {
    return this.get<KubeList<T>>(path, query);
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** POST that takes AlreadyExists as done; answers whether it created the object. */
  async ensure(path: string, body: unknown): Promise<boolean> {
    try {
      await this.create(path, body);
      return true;
    } catch (e) {
      if (isAlreadyExists(e)) return false;
      throw e;
    }
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: MergePatch });
  }

  strategicPatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: StrategicMergePatch });
  }

  jsonPatch<T>(path: string, ops: readonly unknown[]): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, contentType: JsonPatch });
  }

  /**
   * Server-side apply: the apiserver merges `obj` into the live object and records
   * `fieldManager` as the owner of every field it sets.
   */
  async apply<T>(obj: KubeObject & { readonly [field: string]: unknown }, options: ApplyOptions): Promise<T> {
    const path = await this.resources.objectPath(obj, options.subresource);
    return this.request<T>('PATCH', path, {
      body: obj,
      contentType: ApplyPatch,
      query: { fieldManager: options.fieldManager, ...(options.force === true ? { force: true } : {}) },
    });
  }

  /** DELETE that takes 404 as done; answers whether the object was there. */
  async delete(path: string, options: DeleteOptions = {}): Promise<boolean> {
    try {
      const body =
        Object.keys(options).length === 0
          ? undefined
          : { kind: 'DeleteOptions', apiVersion: 'v1', ...options };
      await this.request('DELETE', path, body === undefined ? {} : { body });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** GETs `path` of a pod's port through the apiserver's pod proxy; text. */
  proxyGet(namespace: string, pod: string, port: number, path: string): Promise<string> {
    const p = path.startsWith('/') ? path : `/${path}`;
    return this.request<string>(
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${port}/proxy${p}`,
    ).then(v => (typeof v === 'string' ? v : JSON.stringify(v)));
  }

  /**
   * Opens a watch on a collection and calls `onEvent` per event. Resolves when the server ends the
   * stream (timeout, apiserver restart) or `signal` aborts; rejects on a non-200 answer, a broken
   * stream, or an `ERROR` event (a 410 Gone arrives that way: `isGone(err)`).
   */
  async watch<T>(
    path: string,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
  ): Promise<void> {
    const operation = `WATCH ${path}`;
    const query: Query = {
      ...options.query,
      watch: true,
      allowWatchBookmarks: true,
      ...(options.resourceVersion !== undefined && options.resourceVersion !== ''
        ? { resourceVersion: options.resourceVersion }
        : {}),
      ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}),
    };
    const { url, options: o } = await this.#requestOptions('GET', path, { query });
    const signal = options.signal;
    if (signal?.aborted === true) return;
    const idleMs = ((options.timeoutSeconds ?? 600) + 60) * 1000;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = (): void => {
        req.destroy();
        done();
      };
      const req = this.#send(url, { ...o, timeout: idleMs }, res => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            done(
              KubeApiError.fromResponse(
                res.statusCode ?? 0,
                Buffer.concat(chunks).toString('utf8'),
                operation,
              ),
            );
          });
          res.on('error', e => {
            done(new KubeUnreachableError(operation, e));
          });
          return;
        }
        const parse = parseWatchLines<T>(operation);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (settled) return;
          try {
            for (const ev of parse(chunk)) onEvent(ev);
          } catch (e) {
            req.destroy();
            done(e instanceof Error ? e : new Error(String(e)));
          }
        });
        res.on('end', () => {
          done();
        });
        res.on('error', e => {
          done(signal?.aborted === true ? undefined : new KubeUnreachableError(operation, e));
        });
        // Closed with neither an end nor an error (a reset some Node versions report only so).
        res.on('close', () => {
          done(
            signal?.aborted === true
              ? undefined
              : new KubeUnreachableError(operation, new Error('stream closed')),
          );
        });
      });
      req.on('timeout', () => req.destroy(new Error('watch idle timeout')));
      req.on('error', e => {
        done(signal?.aborted === true ? undefined : new KubeUnreachableError(operation, e));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end();
    });
  }
}
