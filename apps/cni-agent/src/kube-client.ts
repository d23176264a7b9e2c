/**
 * The Kubernetes side of the agent (`@kubernetes/client-node`): a Pod informer limited to this
 * node (`spec.nodeName=<node>`), a Namespace informer, a live Pod GET, and the merge-patch of the
 * `ambient.istio.io/redirection` annotation on `pods/status`. Objects become `PodView` /
 * `NamespaceView` here; nothing else in the agent sees the client's types.
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { Annotation } from './enrolment.ts';
import type { RedirectionState } from './enrolment.ts';
import { KubeApiError } from './errors.ts';
import type { NamespaceView, PodView } from './kube-types.ts';
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
  const kc = new KubeConfig();
  if (file !== null) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

const RESTART_DELAY_MS = 5_000;

export class KubeClient implements KubeApi {
  readonly #core: CoreV1Api;
  readonly #pods: ListWatch<V1Pod>;
  readonly #namespaces: ListWatch<V1Namespace>;
  readonly #logger: Logger;
  readonly #timers: Timers;
  #stopped = false;

  constructor(kc: KubeConfig, nodeName: string, logger: Logger, timers: Timers = systemTimers) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#logger = logger;
    this.#timers = timers;
    const fieldSelector = `spec.nodeName=${nodeName}`;
    this.#pods = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(kc),
      () => this.#core.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    this.#namespaces = new ListWatch<V1Namespace>(
      '/api/v1/namespaces',
      new Watch(kc),
      () => this.#core.listNamespace(),
      false,
    );
  }

  /** Starts both informers; resolves after their first list (cache synced). */
  async start(handlers: KubeEventHandlers): Promise<void> {
    this.#pods.on('add', pod => {
      handlers.podChanged(toPodView(pod));
    });
    this.#pods.on('update', pod => {
      handlers.podChanged(toPodView(pod));
    });
    this.#pods.on('delete', pod => {
      handlers.podDeleted(toPodView(pod));
    });
    const nsChanged = (ns: V1Namespace): void => {
      handlers.namespaceChanged(toNamespaceView(ns));
    };
    this.#namespaces.on('add', nsChanged);
    this.#namespaces.on('update', nsChanged);
    for (const [what, informer] of [
      ['pods', this.#pods],
      ['namespaces', this.#namespaces],
    ] as const) {
      informer.on('error', (err: unknown) => {
        if (this.#stopped) return;
        this.#logger.warn({ informer: what, err: errorMessage(err) }, 'informer failed; restarting');
        this.#timers.setTimeout(() => {
          if (!this.#stopped) {
            informer.start().catch((e: unknown) => {
              this.#logger.warn({ informer: what, err: errorMessage(e) }, 'informer restart failed');
            });
          }
        }, RESTART_DELAY_MS);
      });
    }
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
    return this.#pods.list().map(toPodView);
  }

  getPod(namespace: string, name: string): PodView | undefined {
    const pod = this.#pods.get(name, namespace);
    return pod === undefined ? undefined : toPodView(pod);
  }

  getNamespace(name: string): NamespaceView | undefined {
    const ns = this.#namespaces.get(name);
    return ns === undefined ? undefined : toNamespaceView(ns);
  }

  async fetchPod(namespace: string, name: string): Promise<PodView | undefined> {
    try {
      return toPodView(await this.#core.readNamespacedPod({ name, namespace }));
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw new KubeApiError(`get pod ${namespace}/${name}`, err);
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
        await this.#core.patchNamespacedPodStatus(
          { name, namespace, body },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return;
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

/** Worth another try: the API did not answer, or answered conflict, throttling or a server error. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof ApiException)) return true;
  const code = err.code;
  return code === 409 || code === 429 || code >= 500;
}
