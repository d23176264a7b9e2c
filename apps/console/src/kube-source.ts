/**
 * The console's view of the cluster: one informer per collection it reads (no poll per request),
 * and `snapshot()` over their caches. Namespaces, pods and services must have listed once before
 * the console is ready; Gateways, AuthorizationPolicies and PeerAuthentications are optional (their CRDs may be absent:
 * the informer keeps retrying, and the views treat the collection as empty meanwhile).
 */
import { Informer, clientSource, type KubeClient, type KubeObject, type Timers } from '@ambient-mesh/kube';
import type { MeshSnapshot } from './snapshot.ts';

export const COLLECTIONS = {
  namespaces: { path: '/api/v1/namespaces', required: true },
  pods: { path: '/api/v1/pods', required: true },
  services: { path: '/api/v1/services', required: true },
  gateways: { path: '/apis/gateway.networking.k8s.io/v1/gateways', required: false },
  authorizationPolicies: { path: '/apis/security.istio.io/v1/authorizationpolicies', required: false },
  peerAuthentications: { path: '/apis/security.istio.io/v1/peerauthentications', required: false },
} as const;
export type Collection = keyof typeof COLLECTIONS;

export interface KubeSource {
  snapshot(): MeshSnapshot;
  synced(): boolean;
  /** Resolves once every required collection listed. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export function kubeSource(
  client: KubeClient,
  options: {
    readonly timers?: Timers;
    readonly onError?: (collection: Collection, err: unknown) => void;
  } = {},
): KubeSource {
  const informers = {} as Record<Collection, Informer<KubeObject>>;
  for (const name of Object.keys(COLLECTIONS) as Collection[]) {
    informers[name] = new Informer<KubeObject>({
      name,
      source: clientSource<KubeObject>(client, COLLECTIONS[name].path),
      ...(options.timers === undefined ? {} : { timers: options.timers }),
      onError: err => options.onError?.(name, err),
    });
  }
  const required = (Object.keys(COLLECTIONS) as Collection[]).filter(n => COLLECTIONS[n].required);
  const ready = Promise.all(required.map(n => informers[n].start())).then(() => undefined);
  for (const n of Object.keys(COLLECTIONS) as Collection[]) {
    if (!COLLECTIONS[n].required) void informers[n].start().catch(() => undefined);
  }
  const list = <T>(n: Collection): T[] => informers[n].cache.list() as unknown as T[];
  return {
    ready,
    synced: () => required.every(n => informers[n].hasSynced),
    snapshot: () => ({
      namespaces: list('namespaces'),
      pods: list('pods'),
      services: list('services'),
      gateways: list('gateways'),
      authorizationPolicies: list('authorizationPolicies'),
      peerAuthentications: list('peerAuthentications'),
    }),
    stop: async () => {
      await Promise.all(Object.values(informers).map(i => i.stop()));
    },
  };
}
