import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterError, ClusterErrorCode, KubeApiError } from './errors.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface KubeList<T> {
  readonly items: T[];
  readonly metadata: { resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchHandle {
  stop(): void;
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly query?: Record<string, string | number | boolean | undefined>;
}

/**
 * A small Kubernetes REST client on top of `@kubernetes/client-node`'s KubeConfig (which handles
 * client certificates, tokens and in-cluster config). It speaks plain JSON paths so the kubelet
 * can use merge patches, status subresources and watches without the generated API surface.
 */
export class KubeClient {
  readonly config: KubeConfig;
  readonly server: string;

  constructor(config: KubeConfig) {
    this.config = config;
    const cluster = config.getCurrentCluster();
    if (cluster === null) {
      throw new ClusterError(
        ClusterErrorCode.Prerequisite,
        'the kubeconfig has no current cluster; check its context',
      );
    }
    this.server = cluster.server.replace(/\/$/, '');
  }

  static fromFile(path: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new KubeClient(kc);
  }

  /** In-cluster config: the projected token, ca.crt and KUBERNETES_SERVICE_HOST/PORT. */
  static inCluster(): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromCluster();
    return new KubeClient(kc);
  }

  private async options(
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<https.RequestOptions & { url: URL }> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const o: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(o);
    const headers = { ...(o.headers as Record<string, string>) };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    return { ...o, headers, url };
  }

  /** Sends a request and parses the JSON answer; a non-2xx status rejects with KubeApiError. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { url, ...o } = await this.options(method, path, opts);
    const payload =
      opts.body === undefined
        ? undefined
        : typeof opts.body === 'string'
          ? opts.body
          : JSON.stringify(opts.body);
    const headers = { ...(o.headers as Record<string, string>) };
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(url, { ...o, headers, timeout: 30_000 }, res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(toApiError(status, text, `${method} ${path}`));
            return;
          }
          const contentType = res.headers['content-type'] ?? '';
          resolve((contentType.includes('json') ? JSON.parse(text) : text) as T);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', e => {
        reject(
          new ClusterError(ClusterErrorCode.ApiError, `${method} ${path} failed: ${e.message}`, { cause: e }),
        );
      });
      req.end(payload);
    });
  }

  get<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  /** GET that answers undefined for 404. */
  async find<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** POST that treats 409 AlreadyExists as success. */
  async ensure(path: string, body: unknown): Promise<void> {
    try {
      await this.create(path, body);
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409)) throw e;
    }
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  }

  strategicPatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/strategic-merge-patch+json' });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  /** DELETE that treats 404 as success. */
  async delete(path: string, body?: unknown): Promise<void> {
    try {
      await this.request('DELETE', path, { body });
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 404)) throw e;
    }
  }

  /**
   * Lists `path` and then watches it from the list's resourceVersion, forever: on any stream end or
   * error it re-lists after a short pause. `onSync` gets every full list (objects may have vanished
   * while disconnected); `onEvent` gets each watch event.
   */
  reflect<T extends KubeObject>(
    path: string,
    query: Record<string, string>,
    handlers: {
      onSync(items: T[]): void;
      onEvent(type: WatchEventType, obj: T): void;
      onError?(err: unknown): void;
    },
  ): WatchHandle {
    let stopped = false;
    const isStopped = (): boolean => stopped;
    let current: { destroy(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const loop = async (): Promise<void> => {
      if (stopped) return;
      try {
        const list = await this.get<KubeList<T>>(path, query);
        if (isStopped()) return;
        handlers.onSync(list.items);
        await new Promise<void>((resolve, reject) => {
          void this.options('GET', path, {
            query: {
              ...query,
              watch: true,
              resourceVersion: list.metadata.resourceVersion,
              allowWatchBookmarks: true,
            },
          }).then(({ url, ...o }) => {
            if (stopped) {
              resolve();
              return;
            }
            const req = https.request(url, o, res => {
              if (res.statusCode !== 200) {
                res.resume();
                reject(
                  new KubeApiError(
                    res.statusCode ?? 0,
                    'WatchFailed',
                    `watch ${path}: HTTP ${res.statusCode}`,
                  ),
                );
                return;
              }
              let buffered = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                buffered += chunk;
                let nl = buffered.indexOf('\n');
                while (nl >= 0) {
                  const line = buffered.slice(0, nl).trim();
                  buffered = buffered.slice(nl + 1);
                  nl = buffered.indexOf('\n');
                  if (line === '') continue;
                  const ev = JSON.parse(line) as { type: WatchEventType; object: T };
                  if (ev.type === 'ERROR') {
                    req.destroy();
                    resolve();
                    return;
                  }
                  if (ev.type !== 'BOOKMARK') handlers.onEvent(ev.type, ev.object);
                }
              });
              res.on('end', () => {
                resolve();
              });
              res.on('error', reject);
            });
            req.on('error', reject);
            current = req;
            req.end();
          }, reject);
        });
      } catch (e) {
        if (!isStopped()) handlers.onError?.(e);
      }
      if (!isStopped()) timer = setTimeout(() => void loop(), 500);
    };
    void loop();
    return {
      stop() {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        current?.destroy();
      },
    };
  }
}

function toApiError(status: number, text: string, what: string): KubeApiError {
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    return new KubeApiError(status, s.reason ?? 'Unknown', `${what}: ${s.message ?? text}`);
  } catch {
    return new KubeApiError(status, 'Unknown', `${what}: HTTP ${status} ${text.slice(0, 200)}`);
  }
}
