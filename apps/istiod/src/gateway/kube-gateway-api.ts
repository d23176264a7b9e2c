/**
 * The gateway controller's Kubernetes side on `@ambient-mesh/kube`: its informers (GatewayClass,
 * Gateway, and the Services the controller generated, by their `gateway.istio.io/managed` label),
 * server-side apply of generated objects, and the status writes (Gateway with its listeners,
 * GatewayClass, HTTPRoute/GRPCRoute/TCPRoute parents, and the Service and ServiceEntry `istio.io/WaypointBound`
 * condition),
 * each keeping other controllers' conditions (and other controllers' route parents).
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
import { TAG_LABEL } from './revision-scope.ts';
import { GATEWAY_FIELD_MANAGER, type GatewayInformerFactory, type GatewayKubeApi } from './controller.ts';
import { CONTROLLER_NAME } from '../waypoint/resolve-route.ts';
import {
  ROUTE_OWNED_CONDITIONS,
  sameParentRef,
  type RouteParentWire,
  type RouteStatusPatcher,
} from './route-status.ts';
import { GATEWAY_OWNED_CONDITIONS, LISTENER_OWNED_CONDITIONS } from './status.ts';
import type { ServiceConditionPatcher } from './waypoint-status.ts';

const GATEWAY_API = '/apis/gateway.networking.k8s.io/v1';

const PATHS = {
  GatewayClass: { path: `${GATEWAY_API}/gatewayclasses` },
  Gateway: { path: `${GATEWAY_API}/gateways` },
  GatewayService: { path: '/api/v1/services', query: { labelSelector: Label.gatewayManaged } },
  Namespace: { path: '/api/v1/namespaces' },
  RevisionTag: {
    path: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
    query: { labelSelector: TAG_LABEL },
  },
  // Class defaults (labelled) and `infrastructure.parametersRef` targets (any name): all ConfigMaps.
  ConfigMap: { path: '/api/v1/configmaps' },
  // Ingress route status and listener checks (`ingress-routes.ts`).
  HTTPRoute: { path: `${GATEWAY_API}/httproutes` },
  GRPCRoute: { path: `${GATEWAY_API}/grpcroutes` },
  // v1alpha2, experimental channel: without its CRD the informer keeps retrying (no TLSRoutes).
  TLSRoute: { path: '/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes' },
  Service: { path: '/api/v1/services' },
  ReferenceGrant: { path: '/apis/gateway.networking.k8s.io/v1beta1/referencegrants' },
  Secret: { path: '/api/v1/secrets' },
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

type WithStatus = KubeObject & {
  status?: {
    conditions?: Condition[];
    listeners?: { name?: string; conditions?: Condition[] }[];
    parents?: (Partial<Omit<RouteParentWire, 'parentRef'>> & {
      parentRef?: Partial<RouteParentWire['parentRef']>;
    })[];
  };
};

/** Each route kind's collection (TCPRoute is v1alpha2, experimental channel). */
const ROUTE_PATHS = {
  HTTPRoute: `${GATEWAY_API}/namespaces/{ns}/httproutes`,
  GRPCRoute: `${GATEWAY_API}/namespaces/{ns}/grpcroutes`,
  TCPRoute: '/apis/gateway.networking.k8s.io/v1alpha2/namespaces/{ns}/tcproutes',
  TLSRoute: '/apis/gateway.networking.k8s.io/v1alpha2/namespaces/{ns}/tlsroutes',
} as const;

function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[]): boolean {
  const key = (c: Condition): string =>
    JSON.stringify([c.type, c.status, c.reason, c.message, c.observedGeneration]);
  return (a ?? []).map(key).join() === b.map(key).join();
}

export function kubeGatewayApi(kc: KubeConfigHandle): GatewayKubeApi & {
  patchServiceConditions: ServiceConditionPatcher;
  patchServiceEntryConditions: ServiceConditionPatcher;
  patchRouteStatus: RouteStatusPatcher;
} {
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
        const listeners = status.listeners.map(l => ({
          ...l,
          conditions: mergeConditions(
            live.status?.listeners?.find(x => x.name === l.name)?.conditions,
            l.conditions,
            { ownedTypes: LISTENER_OWNED_CONDITIONS, now: () => new Date() },
          ),
        }));
        try {
          await client.mergePatch(`${path}/status`, {
            metadata: { resourceVersion: live.metadata?.resourceVersion },
            status: { conditions, addresses: status.addresses, listeners },
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
    async patchRouteStatus(kind, namespace, name, parents) {
      const path = `${ROUTE_PATHS[kind].replace('{ns}', namespace)}/${name}`;
      for (let attempt = 1; ; attempt++) {
        const live = await client.get<WithStatus>(path);
        const existing = live.status?.parents ?? [];
        const theirs = existing.filter(p => p.controllerName !== CONTROLLER_NAME);
        const ourOld = existing.filter(p => p.controllerName === CONTROLLER_NAME);
        let unchanged = ourOld.length === parents.length;
        const ours = parents.map((p, i) => {
          const old = ourOld.find(o => sameParentRef(namespace, o.parentRef ?? {}, p.parentRef));
          if (old === undefined || ourOld[i] !== old || !sameConditions(old.conditions, p.conditions))
            unchanged = false;
          return {
            ...p,
            conditions: mergeConditions(old?.conditions, p.conditions, {
              ownedTypes: ROUTE_OWNED_CONDITIONS,
              now: () => new Date(),
            }),
          };
        });
        if (unchanged) return;
        try {
          await client.mergePatch(`${path}/status`, {
            metadata: { resourceVersion: live.metadata?.resourceVersion },
            status: { parents: [...theirs, ...ours] },
          });
          return;
        } catch (err) {
          if (!isConflict(err) || attempt >= 5) throw err;
        }
      }
    },
    async patchServiceConditions(namespace, name, conditions) {
      await patchStatusConditions(client, `/api/v1/namespaces/${namespace}/services/${name}`, {
        conditions,
        ownedTypes: [WAYPOINT_BOUND],
        now: () => new Date(),
      });
    },
    async patchServiceEntryConditions(namespace, name, conditions) {
      // Keeps ZtunnelAccepted and status.addresses (the source status writer's) as they are.
      await patchStatusConditions(
        client,
        `/apis/networking.istio.io/v1/namespaces/${namespace}/serviceentries/${name}`,
        { conditions, ownedTypes: [WAYPOINT_BOUND], now: () => new Date() },
      );
    },
  };
}
