/**
 * The gateway controller's Kubernetes side on `@ambient-mesh/kube`: its informers (GatewayClass,
 * Gateway, and the Services the controller generated, by their `gateway.istio.io/managed` label),
 * server-side apply of generated objects, and the status writes (Gateway, GatewayClass, and the
 * Service `istio.io/WaypointBound` condition), each keeping other controllers' conditions.
 */
import {
  Informer,
  KubeClient,
  clientSource,
  isConflict,
  mergeConditions,
  patchStatusConditions,
  type Condition,
  type KubeConfigHandle,
  type Timers,
} from '@ambient-mesh/kube';
import { Label } from '@ambient-mesh/mesh-api';
import type { KubeObject } from '../kube/objects.ts';
import { WAYPOINT_BOUND } from './binding.ts';
import { GATEWAY_FIELD_MANAGER, type GatewayInformerFactory, type GatewayKubeApi } from './controller.ts';
import { GATEWAY_OWNED_CONDITIONS } from './status.ts';
import type { ServiceConditionPatcher } from './waypoint-status.ts';

const GATEWAY_API = '/apis/gateway.networking.k8s.io/v1';

const PATHS = {
  GatewayClass: { path: `${GATEWAY_API}/gatewayclasses` },
  Gateway: { path: `${GATEWAY_API}/gateways` },
  GatewayService: { path: '/api/v1/services', query: { labelSelector: Label.gatewayManaged } },
} as const;

export function kubeGatewayInformers(
  kc: KubeConfigHandle,
  options: { readonly timers?: Timers; readonly onError?: (kind: string, err: unknown) => void } = {},
): GatewayInformerFactory {
  const client = new KubeClient(kc);
  return kind => {
    const p = PATHS[kind];
    return new Informer<KubeObject>({
      name: kind,
      source: clientSource<KubeObject>(client, p.path, 'query' in p ? { query: p.query } : {}),
      ...(options.timers === undefined ? {} : { timers: options.timers }),
      onError: err => options.onError?.(kind, err),
    });
  };
}

type WithStatus = KubeObject & { status?: { conditions?: Condition[] } };

export function kubeGatewayApi(
  kc: KubeConfigHandle,
): GatewayKubeApi & { patchServiceConditions: ServiceConditionPatcher } {
  const client = new KubeClient(kc);
  return {
    async apply(obj) {
      await client.apply(obj, { fieldManager: GATEWAY_FIELD_MANAGER, force: true });
    },
    async patchGatewayStatus(namespace, name, status) {
      const path = `${GATEWAY_API}/namespaces/${namespace}/gateways/${name}`;
      for (let attempt = 1; ; attempt++) {
        const live = await client.get<WithStatus>(path);
        const conditions = mergeConditions(live.status?.conditions, status.conditions, {
          ownedTypes: GATEWAY_OWNED_CONDITIONS,
          now: () => new Date(),
        });
        try {
          await client.mergePatch(`${path}/status`, {
            metadata: { resourceVersion: live.metadata?.resourceVersion },
            status: { conditions, addresses: status.addresses },
          });
          return;
        } catch (err) {
          if (!isConflict(err) || attempt >= 5) throw err;
        }
      }
    },
    async patchGatewayClassStatus(name, conditions) {
      await patchStatusConditions(client, `${GATEWAY_API}/gatewayclasses/${name}`, {
        conditions,
        ownedTypes: ['Accepted'],
        now: () => new Date(),
      });
    },
    async patchServiceConditions(namespace, name, conditions) {
      await patchStatusConditions(client, `/api/v1/namespaces/${namespace}/services/${name}`, {
        conditions,
        ownedTypes: [WAYPOINT_BOUND],
        now: () => new Date(),
      });
    },
  };
}
