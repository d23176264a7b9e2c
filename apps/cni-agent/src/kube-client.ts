/**
 * The Kubernetes side of the agent, on `@ambient-mesh/kube`: a Pod informer limited to this node
 * (`spec.nodeName=<node>`), a Namespace informer, a live Pod GET, and the merge-patch of the
 * `ambient.istio.io/redirection` annotation on `pods/status`. The informers resume their watches
 * from the last resourceVersion, relist on 410 Gone and back off with jitter on failures, so
 * nothing here restarts them. Objects become `PodView` / `NamespaceView` here; nothing else in
 * the agent sees Kubernetes types.
 */
import { errorMessage } from '@ambient-mesh/errors';
import {
  Informer,
  KubeClient as RestClient,
  clientSource,
  isNotFound,
  isTransient,
  loadKubeConfig as loadConfig,
} from '@ambient-mesh/kube';
import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import type { V1DaemonSet, V1Namespace, V1Pod } from '@kubernetes/client-node';
import { Annotation } from './enrolment.ts';
import type { RedirectionState } from './enrolment.ts';
import { KubeApiError } from './errors.ts';
import type { NamespaceView, PodView } from './kube-types.ts';
import { decideShutdown } from './shutdown.ts';
import type { ShutdownVerdict } from './shutdown.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { KubeApi } from './reconciler.ts';
import type { Timers } from '@ambient-mesh/runtime';
import { systemTimers } from '@ambient-mesh/runtime';

export function toPodView(pod: V1Pod): PodView {
  const md = pod.metadata;
  const ips = (pod.status?.podIPs ?? []).map(p => p.ip).filter(ip => ip !== '');
  const podIp = pod.status?.podIP;
  return {
    uid: md?.uid ?? '',
    name: md?.name ?? '',
    namespace: md?.namespace ?? '',
    nodeName: pod.spec?.nodeName ?? '',
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    labels: md?.labels ?? {},
    annotations: md?.annotations ?? {},
    ips: ips.length > 0 ? ips : podIp !== undefined && podIp !== '' ? [podIp] : [],
    phase: pod.status?.phase ?? 'Pending',
    deleting: md?.deletionTimestamp != null,
    hostNetwork: pod.spec?.hostNetwork ?? false,
  };
}

export function toNamespaceView(ns: V1Namespace): NamespaceView {
  return { name: ns.metadata?.name ?? '', labels: ns.metadata?.labels ?? {} };
}

export interface KubeEventHandlers {
  podChanged(pod: PodView): void;
  podDeleted(pod: PodView): void;
  namespaceChanged(namespace: NamespaceView): void;
}

/** Loads the kubeconfig: the given file, else in-cluster, else the default locations. */
export function loadKubeConfig(file: string | null): KubeConfig {
  return loadConfig({ file });
}

export class KubeClient implements KubeApi {
  readonly #rest: RestClient;
  readonly #pods: Informer<V1Pod>;
  readonly #namespaces: Informer<V1Namespace>;
  readonly #logger: Logger;
  readonly #timers: Timers;
  #stopped = false;

  constructor(kc: KubeConfig, nodeName: string, logger: Logger, timers: Timers = systemTimers) {
    this.#rest = new RestClient(kc);
    this.#logger = logger;
    this.#timers = timers;
    const informerTimers = { ...timers, now: () => performance.now() };
    const report =
      (what: string) =>
      (err: unknown, ctx: { readonly relisting: boolean; readonly retryInMs: number }): void => {
        if (this.#stopped) return;
        this.#logger.warn(
          { informer: what, err: errorMessage(err), relisting: ctx.relisting, retryInMs: ctx.retryInMs },
          'list/watch failed; retrying',
        );
      };
    this.#pods = new Informer<V1Pod>({
      name: 'pods',
      source: clientSource<V1Pod>(this.#rest, '/api/v1/pods', {
        query: { fieldSelector: `spec.nodeName=${nodeName}` },
      }),
      timers: informerTimers,
      onError: report('pods'),
    });
    this.#namespaces = new Informer<V1Namespace>({
      name: 'namespaces',
      source: clientSource<V1Namespace>(this.#rest, '/api/v1/namespaces'),
      timers: informerTimers,
      onError: report('namespaces'),
    });
  }

  /** Starts both informers; resolves after their first list (cache synced). */
  async start(handlers: KubeEventHandlers): Promise<void> {
    this.#pods.on({
      add: pod => {
        handlers.podChanged(toPodView(pod));
      },
      update: (_old, pod) => {
        handlers.podChanged(toPodView(pod));
      },
      delete: pod => {
        handlers.podDeleted(toPodView(pod));
      },
    });
    this.#namespaces.on({
      add: ns => {
        handlers.namespaceChanged(toNamespaceView(ns));
      },
      update: (_old, ns) => {
        handlers.namespaceChanged(toNamespaceView(ns));
      },
    });
    try {
      await Promise.all([this.#namespaces.start(), this.#pods.start()]);
    } catch (err) {
      throw new KubeApiError('list pods and namespaces', err);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([this.#pods.stop(), this.#namespaces.stop()]);
  }

  listPods(): PodView[] {
    return this.#pods.cache.list().map(toPodView);
  }

  getPod(namespace: string, name: string): PodView | undefined {
    const pod = this.#pods.cache.get(name, namespace);
    return pod === undefined ? undefined : toPodView(pod);
  }

  getNamespace(name: string): NamespaceView | undefined {
    const ns = this.#namespaces.cache.get(name);
    return ns === undefined ? undefined : toNamespaceView(ns);
  }

  async fetchPod(namespace: string, name: string): Promise<PodView | undefined> {
    try {
      return toPodView(await this.#rest.get<V1Pod>(podPath(namespace, name)));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new KubeApiError(`get pod ${namespace}/${name}`, err);
    }
  }

  /**
   * Why this agent is stopping, as upstream's node agent tells it (istio/istio#54180): its own
   * pod's owning DaemonSet still there and not being deleted means a restart or an upgrade (the
   * chained plugin stays); a DaemonSet that is gone or being deleted, or any failure to tell,
   * means an uninstall (the plugin is removed).
   */
  async shutdownVerdict(namespace: string, podName: string | null): Promise<ShutdownVerdict> {
    if (podName === null) return decideShutdown({ kind: 'unknown', detail: 'POD_NAME is not set' });
    try {
      const pod = await this.#rest.find<V1Pod>(podPath(namespace, podName));
      if (pod === undefined)
        return decideShutdown({ kind: 'unknown', detail: `pod ${namespace}/${podName} not found` });
      const owner = pod.metadata?.ownerReferences?.find(o => o.kind === 'DaemonSet' && o.controller === true);
      if (owner === undefined) return decideShutdown({ kind: 'no-owner' });
      const ds = await this.#rest.find<V1DaemonSet>(
        `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(owner.name)}`,
      );
      return decideShutdown(
        ds === undefined
          ? { kind: 'daemonset-gone', name: owner.name }
          : { kind: 'daemonset', name: owner.name, deleting: ds.metadata?.deletionTimestamp != null },
      );
    } catch (err) {
      return decideShutdown({
        kind: 'unknown',
        detail: new KubeApiError('get the agent DaemonSet', err).message,
      });
    }
  }

  /**
   * Merge-patches the annotation. A transient failure (no answer, 409, 429, 5xx) is retried
   * after 200 ms and 1 s: nothing else would retry it until the next event on the pod or the
   * next drift check, and a running pod may see no event for a long time.
   */
  async patchRedirection(namespace: string, name: string, value: RedirectionState | null): Promise<void> {
    const body = { metadata: { annotations: { [Annotation.redirection]: value } } };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#rest.mergePatch(`${podPath(namespace, name)}/status`, body);
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        const delay = PATCH_RETRY_DELAYS_MS[attempt];
        if (delay === undefined || !isTransient(err)) {
          throw new KubeApiError(`patch pods/status ${namespace}/${name}`, err);
        }
        this.#logger.debug(
          { pod: `${namespace}/${name}`, attempt: attempt + 1, err: errorMessage(err) },
          'patching the redirection annotation failed; retrying',
        );
        await new Promise<void>(resolve => this.#timers.setTimeout(resolve, delay));
      }
    }
  }
}

const PATCH_RETRY_DELAYS_MS = [200, 1_000] as const;

function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
}
