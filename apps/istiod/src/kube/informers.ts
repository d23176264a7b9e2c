/**
 * The Kubernetes informers feeding the WDS index, one per watched kind, on `@ambient-mesh/kube`.
 *
 * Each informer lists, then watches from the last resourceVersion; a 410 Gone relists (objects
 * that disappeared meanwhile arrive as deletes) and any other failure backs off with jitter and
 * resumes, so nothing here restarts informers. Optional kinds (Gateway when the Gateway API CRDs
 * are absent) never block readiness.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { Informer, KubeClient, clientSource, type InformerHandlers, type Timers } from '@ambient-mesh/kube';
import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import type { Logger } from '@ambient-mesh/runtime';
import { ObjectKinds, type ObjectKind } from '../wds/wds-index.ts';
import { WaypointKinds, type WaypointKind } from '../waypoint/waypoint-index.ts';
import type { KubeObject } from './objects.ts';

/** The `istio` mesh ConfigMap's informer (istiod's namespace), routed to the mesh config. */
export const MESH_CONFIG_KIND = 'MeshConfigMap';
/** Secrets of istiod's namespace (`cacerts`, the serving certificate), routed to the CA runtime. */
export const ISTIOD_SECRETS_KIND = 'IstiodSecrets';
export type WatchedKindName =
  ObjectKind | WaypointKind | typeof MESH_CONFIG_KIND | typeof ISTIOD_SECRETS_KIND;

export interface WatchedKind {
  readonly kind: WatchedKindName;
  /** The collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
  /** List/watch query parameters, e.g. a `fieldSelector`. */
  readonly query?: Readonly<Record<string, string>>;
  /** Not required for readiness (its API may not be installed). */
  readonly optional?: boolean;
}

/** What the watcher needs of an informer; `@ambient-mesh/kube`'s `Informer` is one. */
export interface KindInformer {
  on(handlers: InformerHandlers<KubeObject>): () => void;
  /** Resolves after the first list; rejects only when stopped first. */
  start(): Promise<void>;
  readonly hasSynced: boolean;
  stop(): Promise<void>;
}

/**
 * Feeds every add, update and delete of `informer` to `apply` (`deleted` true for a delete); an
 * exception `apply` throws goes to `onError` instead of the informer. Returns the unsubscribe.
 */
export function applyEvents(
  informer: KindInformer,
  apply: (obj: KubeObject, deleted: boolean) => void,
  onError: (err: unknown) => void,
): () => void {
  const safe = (obj: KubeObject, deleted: boolean): void => {
    try {
      apply(obj, deleted);
    } catch (err) {
      onError(err);
    }
  };
  return informer.on({
    add: o => {
      safe(o, false);
    },
    update: (_old, o) => {
      safe(o, false);
    },
    delete: o => {
      safe(o, true);
    },
  });
}

/** A list or watch failure the informer recovers from by itself (relist, or back-off and resume). */
export type InformerErrorReporter = (
  err: unknown,
  context: { readonly relisting: boolean; readonly retryInMs: number },
) => void;

export type InformerFactory = (kind: WatchedKind, onError: InformerErrorReporter) => KindInformer;

export interface ObjectSink {
  upsert(kind: WatchedKindName, obj: KubeObject): unknown;
  delete(kind: WatchedKindName, obj: KubeObject): unknown;
}

export interface KubeWatcherOptions {
  readonly kinds: readonly WatchedKind[];
  readonly sink: ObjectSink;
  readonly informerFactory: InformerFactory;
  readonly logger: Logger;
  /** Unused: informers back off on their own. Kept so existing callers compile. */
  readonly retryDelayMs?: number;
  readonly timers?: Timers;
}

export class KubeWatcher {
  readonly #opts: KubeWatcherOptions;
  readonly #informers = new Map<WatchedKindName, KindInformer>();
  #stopped = false;

  constructor(opts: KubeWatcherOptions) {
    this.#opts = opts;
  }

  /** True once every required kind has completed its first list. */
  get synced(): boolean {
    return this.#opts.kinds.every(
      k => k.optional === true || this.#informers.get(k.kind)?.hasSynced === true,
    );
  }

  /** Starts every informer; resolves when the required ones have listed once, or on stop(). */
  async start(): Promise<void> {
    const required: Promise<void>[] = [];
    for (const k of this.#opts.kinds) {
      const started = this.#startKind(k);
      if (k.optional !== true) required.push(started);
    }
    await Promise.all(required);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#informers.values()].map(i => i.stop()));
  }

  async #startKind(k: WatchedKind): Promise<void> {
    const { sink, logger } = this.#opts;
    const informer = this.#opts.informerFactory(k, (err, ctx) => {
      if (this.#stopped) return;
      // A missing optional API (404 until its CRDs are installed) is expected: debug only.
      logger[k.optional === true ? 'debug' : 'warn'](
        { kind: k.kind, err: errorMessage(err), relisting: ctx.relisting, retryInMs: ctx.retryInMs },
        'list/watch failed; retrying',
      );
    });
    this.#informers.set(k.kind, informer);
    const apply = (deleted: boolean, obj: KubeObject): void => {
      try {
        if (deleted) sink.delete(k.kind, obj);
        else sink.upsert(k.kind, obj);
      } catch (err) {
        logger.error({ kind: k.kind, err: errorMessage(err) }, 'failed to apply a Kubernetes event');
      }
    };
    informer.on({
      add: obj => {
        apply(false, obj);
      },
      update: (_old, obj) => {
        apply(false, obj);
      },
      delete: obj => {
        apply(true, obj);
      },
    });
    try {
      await informer.start();
      logger.info({ kind: k.kind }, 'informer synced');
    } catch (err) {
      // Only a stop before the first list rejects: a shutdown, not a failure.
      if (!this.#stopped)
        logger.warn({ kind: k.kind, err: errorMessage(err) }, 'informer ended before syncing');
    }
  }
}

/** The kinds istiod watches; `namespace` is istiod's (where the `istio` mesh ConfigMap lives). */
export function istiodWatchedKinds(namespace = 'istio-system'): WatchedKind[] {
  return [
    { kind: MESH_CONFIG_KIND, path: `/api/v1/namespaces/${namespace}/configmaps` },
    { kind: ObjectKinds.NAMESPACE, path: '/api/v1/namespaces' },
    { kind: ObjectKinds.NODE, path: '/api/v1/nodes' },
    { kind: ObjectKinds.SERVICE, path: '/api/v1/services' },
    { kind: ObjectKinds.POD, path: '/api/v1/pods' },
    { kind: ObjectKinds.AUTHORIZATION_POLICY, path: '/apis/security.istio.io/v1/authorizationpolicies' },
    { kind: ObjectKinds.PEER_AUTHENTICATION, path: '/apis/security.istio.io/v1/peerauthentications' },
    { kind: ObjectKinds.GATEWAY, path: '/apis/gateway.networking.k8s.io/v1/gateways', optional: true },
    { kind: ObjectKinds.ENDPOINT_SLICE, path: '/apis/discovery.k8s.io/v1/endpointslices' },
    { kind: ObjectKinds.SERVICE_ENTRY, path: '/apis/networking.istio.io/v1/serviceentries' },
    { kind: ObjectKinds.WORKLOAD_ENTRY, path: '/apis/networking.istio.io/v1/workloadentries' },
    // The waypoint's L7 config (Envoy xDS); optional: their CRDs may not be installed.
    { kind: WaypointKinds.HTTP_ROUTE, path: '/apis/gateway.networking.k8s.io/v1/httproutes', optional: true },
    { kind: WaypointKinds.GRPC_ROUTE, path: '/apis/gateway.networking.k8s.io/v1/grpcroutes', optional: true },
    // Experimental channel only (v1alpha2): absent on clusters with the standard CRDs.
    {
      kind: WaypointKinds.TCP_ROUTE,
      path: '/apis/gateway.networking.k8s.io/v1alpha2/tcproutes',
      optional: true,
    },
    // Experimental channel only (ingress TLS passthrough listeners).
    {
      kind: WaypointKinds.TLS_ROUTE,
      path: '/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes',
      optional: true,
    },
    {
      kind: WaypointKinds.REFERENCE_GRANT,
      path: '/apis/gateway.networking.k8s.io/v1beta1/referencegrants',
      optional: true,
    },
    {
      kind: WaypointKinds.DESTINATION_RULE,
      path: '/apis/networking.istio.io/v1/destinationrules',
      optional: true,
    },
    {
      kind: WaypointKinds.REQUEST_AUTHENTICATION,
      path: '/apis/security.istio.io/v1/requestauthentications',
      optional: true,
    },
    {
      kind: WaypointKinds.ENVOY_FILTER,
      path: '/apis/networking.istio.io/v1alpha3/envoyfilters',
      optional: true,
    },
    {
      kind: WaypointKinds.VIRTUAL_SERVICE,
      path: '/apis/networking.istio.io/v1/virtualservices',
      optional: true,
    },
    { kind: WaypointKinds.TELEMETRY, path: '/apis/telemetry.istio.io/v1/telemetries', optional: true },
    // Ingress gateways' certificates (HTTPS listeners' certificateRefs): TLS Secrets only.
    {
      kind: WaypointKinds.SECRET,
      path: '/api/v1/secrets',
      query: { fieldSelector: 'type=kubernetes.io/tls' },
      optional: true,
    },
    // DestinationRule `tls.credentialName` (TLS origination): generic Secrets holding a CA.
    {
      kind: WaypointKinds.CREDENTIAL_SECRET,
      path: '/api/v1/secrets',
      query: { fieldSelector: 'type=Opaque' },
      optional: true,
    },
  ];
}

/** The Secrets of istiod's namespace: `cacerts` and the serving certificate Secret. Optional. */
export function istiodSecretsKind(namespace = 'istio-system'): WatchedKind {
  return { kind: ISTIOD_SECRETS_KIND, path: `/api/v1/namespaces/${namespace}/secrets`, optional: true };
}

/** The production informer factory: list + watch through the kubeconfig's apiserver. */
export function kubeInformerFactory(
  kc: KubeConfig,
  options: { readonly timers?: Timers } = {},
): InformerFactory {
  const client = new KubeClient(kc);
  return (k, onError) =>
    new Informer<KubeObject>({
      name: k.kind,
      source: clientSource<KubeObject>(
        client,
        k.path,
        k.query === undefined ? {} : { query: { ...k.query } },
      ),
      ...(options.timers === undefined ? {} : { timers: options.timers }),
      onError,
    });
}
