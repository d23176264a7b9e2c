/**
 * Kubernetes informers (list + watch) feeding the WDS index.
 *
 * `@kubernetes/client-node`'s ListWatch relists when a watch ends with 410 Gone and emits
 * deletes for objects that disappeared meanwhile; any other error stops an informer, so this
 * module restarts it after a delay. Optional kinds (e.g. Gateway when the Gateway API CRDs are
 * absent) never block readiness.
 */
import { errorMessage } from '@ambient-mesh/errors';
import {
  ADD,
  CoreV1Api,
  CustomObjectsApi,
  DELETE,
  ERROR,
  makeInformer,
  UPDATE,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from '@ambient-mesh/runtime';
import type { Timers } from '../xds/push-queue.ts';
import { systemTimers } from '../xds/push-queue.ts';
import { ObjectKinds, type ObjectKind } from '../wds/wds-index.ts';
import type { KubeObject } from './objects.ts';

export interface WatchedKind {
  readonly kind: ObjectKind;
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<KubernetesObject>>;
  /** Not required for readiness (its API may not be installed). */
  readonly optional?: boolean;
}

export type InformerFactory = (
  path: string,
  list: () => Promise<KubernetesListObject<KubernetesObject>>,
) => Informer<KubernetesObject> & Partial<ObjectCache<KubernetesObject>>;

export interface ObjectSink {
  upsert(kind: ObjectKind, obj: KubeObject): unknown;
  delete(kind: ObjectKind, obj: KubeObject): unknown;
}

export interface KubeWatcherOptions {
  readonly kinds: readonly WatchedKind[];
  readonly sink: ObjectSink;
  readonly informerFactory: InformerFactory;
  readonly logger: Logger;
  readonly retryDelayMs?: number;
  readonly timers?: Timers;
}

export class KubeWatcher {
  readonly #opts: KubeWatcherOptions;
  readonly #timers: Timers;
  readonly #informers: Informer<KubernetesObject>[] = [];
  readonly #synced = new Set<ObjectKind>();
  readonly #retries = new Set<unknown>();
  #stopped = false;

  constructor(opts: KubeWatcherOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
  }

  /** True once every required kind has completed its first list. */
  get synced(): boolean {
    return this.#opts.kinds.every(k => k.optional === true || this.#synced.has(k.kind));
  }

  /** Starts every informer; resolves when the required ones have listed once (or failed to). */
  async start(): Promise<void> {
    await Promise.all(this.#opts.kinds.map(k => this.#startKind(k)));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const r of this.#retries) this.#timers.clearTimeout(r);
    this.#retries.clear();
    await Promise.all(this.#informers.map(i => i.stop()));
  }

  async #startKind(k: WatchedKind): Promise<void> {
    const { sink, logger } = this.#opts;
    const informer = this.#opts.informerFactory(k.path, k.list);
    this.#informers.push(informer);
    const apply = (deleted: boolean) => (obj: KubernetesObject) => {
      try {
        if (deleted) sink.delete(k.kind, obj);
        else sink.upsert(k.kind, obj);
      } catch (err) {
        logger.error({ kind: k.kind, err: errorMessage(err) }, 'failed to apply a Kubernetes event');
      }
    };
    informer.on(ADD, apply(false));
    informer.on(UPDATE, apply(false));
    informer.on(DELETE, apply(true));
    informer.on(ERROR, err => {
      // stop() aborts the open watches: that is not a failure.
      if (this.#stopped) return;
      logger.warn({ kind: k.kind, err: errorMessage(err) }, 'watch failed; restarting the informer');
      this.#scheduleRestart(k, informer);
    });
    try {
      await informer.start();
      this.#synced.add(k.kind);
      logger.info({ kind: k.kind }, 'informer synced');
    } catch (err) {
      logger.warn({ kind: k.kind, err: errorMessage(err) }, 'initial list failed; retrying');
      this.#scheduleRestart(k, informer);
    }
  }

  #scheduleRestart(k: WatchedKind, informer: Informer<KubernetesObject>): void {
    if (this.#stopped) return;
    const handle = this.#timers.setTimeout(() => {
      this.#retries.delete(handle);
      if (this.#stopped) return;
      informer.start().then(
        () => {
          this.#synced.add(k.kind);
        },
        (err: unknown) => {
          this.#opts.logger.warn({ kind: k.kind, err: errorMessage(err) }, 'informer restart failed');
          this.#scheduleRestart(k, informer);
        },
      );
    }, this.#opts.retryDelayMs ?? 5000);
    this.#retries.add(handle);
  }
}

/** The kinds istiod watches, as list functions over the Kubernetes API. */
export function istiodWatchedKinds(kc: KubeConfig): WatchedKind[] {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const customList =
    (group: string, version: string, plural: string) =>
    async (): Promise<KubernetesListObject<KubernetesObject>> =>
      (await custom.listClusterCustomObject({
        group,
        version,
        plural,
      })) as KubernetesListObject<KubernetesObject>;
  return [
    { kind: ObjectKinds.NAMESPACE, path: '/api/v1/namespaces', list: () => core.listNamespace() },
    { kind: ObjectKinds.NODE, path: '/api/v1/nodes', list: () => core.listNode() },
    { kind: ObjectKinds.SERVICE, path: '/api/v1/services', list: () => core.listServiceForAllNamespaces() },
    { kind: ObjectKinds.POD, path: '/api/v1/pods', list: () => core.listPodForAllNamespaces() },
    {
      kind: ObjectKinds.AUTHORIZATION_POLICY,
      path: '/apis/security.istio.io/v1/authorizationpolicies',
      list: customList('security.istio.io', 'v1', 'authorizationpolicies'),
    },
    {
      kind: ObjectKinds.PEER_AUTHENTICATION,
      path: '/apis/security.istio.io/v1/peerauthentications',
      list: customList('security.istio.io', 'v1', 'peerauthentications'),
    },
    {
      kind: ObjectKinds.GATEWAY,
      path: '/apis/gateway.networking.k8s.io/v1/gateways',
      list: customList('gateway.networking.k8s.io', 'v1', 'gateways'),
      optional: true,
    },
  ];
}

/** The production informer factory. */
export function kubeInformerFactory(kc: KubeConfig): InformerFactory {
  return (path, list) => makeInformer(kc, path, list);
}
