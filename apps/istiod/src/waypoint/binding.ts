/**
 * Which Services a waypoint serves. The waypoint xDS reads the binding only through
 * `WaypointBindingSource`, so the Gateway/binding controller can replace this implementation.
 *
 * `LabelWaypointBindings` applies the same `istio.io/use-waypoint` rules WDS does
 * (`wds/waypoint.ts`: the Service's label, else its namespace's; `istio.io/use-waypoint-namespace`;
 * `none` and self-managed gateways opt out), and the Gateway's `istio.io/waypoint-for` must accept
 * Services (`service` or `all`). Unlike WDS it does not wait for `status.addresses`: the proxy
 * can be programmed before its address is published.
 */
import { GatewayClassName, Label, WaypointFor } from '@ambient-mesh/mesh-api';
import type { Gateway, KubeObject, Service } from '../kube/objects.ts';
import { waypointRefFor } from '../wds/waypoint.ts';
import { keyString, type ServiceKey, type WaypointKey } from './types.ts';

export interface WaypointBindingSource {
  /** The Services bound to the waypoint, sorted by `namespace/name`. */
  servicesFor(waypoint: WaypointKey): readonly ServiceKey[];
  /** The waypoint a Service is bound to, if any. */
  waypointFor(service: ServiceKey): WaypointKey | undefined;
}

/** The objects the label binding reads. */
export interface BindingStore {
  services(): Iterable<Service>;
  service(key: ServiceKey): Service | undefined;
  namespace(name: string): KubeObject | undefined;
  gateway(key: WaypointKey): Gateway | undefined;
}

/** Gateway classes whose Gateways are programmed over Envoy xDS. */
export const WAYPOINT_CLASSES: ReadonlySet<string> = new Set([GatewayClassName.waypoint]);

export class LabelWaypointBindings implements WaypointBindingSource {
  readonly #store: BindingStore;
  #byWaypoint: Map<string, ServiceKey[]> | undefined;

  constructor(store: BindingStore) {
    this.#store = store;
  }

  /** Drops the cached reverse map; call after a Service, Namespace or Gateway change. */
  invalidate(): void {
    this.#byWaypoint = undefined;
  }

  waypointFor(service: ServiceKey): WaypointKey | undefined {
    const svc = this.#store.service(service);
    return svc === undefined ? undefined : this.#bind(svc);
  }

  servicesFor(waypoint: WaypointKey): readonly ServiceKey[] {
    if (this.#byWaypoint === undefined) {
      const map = new Map<string, ServiceKey[]>();
      for (const svc of this.#store.services()) {
        const wp = this.#bind(svc);
        if (wp === undefined) continue;
        const k = keyString(wp);
        let list = map.get(k);
        if (list === undefined) map.set(k, (list = []));
        list.push({ namespace: svc.metadata?.namespace ?? '', name: svc.metadata?.name ?? '' });
      }
      for (const list of map.values()) list.sort((a, b) => (keyString(a) < keyString(b) ? -1 : 1));
      this.#byWaypoint = map;
    }
    return this.#byWaypoint.get(keyString(waypoint)) ?? [];
  }

  #bind(svc: Service): WaypointKey | undefined {
    const ref = waypointRefFor(svc, this.#store.namespace(svc.metadata?.namespace ?? ''));
    if (ref === undefined) return undefined;
    const gw = this.#store.gateway(ref);
    if (gw === undefined || !WAYPOINT_CLASSES.has(gw.spec.gatewayClassName)) return undefined;
    const waypointFor = gw.metadata?.labels?.[Label.waypointFor] ?? WaypointFor.service;
    if (waypointFor !== WaypointFor.service && waypointFor !== WaypointFor.all) return undefined;
    return { namespace: ref.namespace, name: ref.name };
  }
}

/** The read side of the Gateway controller's binding index (`gateway/waypoint-bindings.ts`). */
export interface ServiceBindings {
  services(waypoint: string): ReadonlySet<string>;
  waypointOf(kind: 'service', key: string): string | undefined;
}

/**
 * A `WaypointBindingSource` over the Gateway controller's bindings (only Services with
 * `istio.io/WaypointBound=True`). To use it, build the index with
 * `bindings: () => bindingSourceFrom(gatewaySide.bindings)` and forward
 * `gatewaySide.bindings.onChange(ws => waypoints.bindingsChanged(ws))`.
 */
export function bindingSourceFrom(bindings: ServiceBindings): WaypointBindingSource {
  const split = (key: string): { namespace: string; name: string } => {
    const i = key.indexOf('/');
    return { namespace: key.slice(0, i), name: key.slice(i + 1) };
  };
  return {
    servicesFor: wp => [...bindings.services(keyString(wp))].sort().map(split),
    waypointFor: svc => {
      const wp = bindings.waypointOf('service', keyString(svc));
      return wp === undefined ? undefined : split(wp);
    },
  };
}
