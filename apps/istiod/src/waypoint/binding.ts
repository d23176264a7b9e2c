/**
 * Which Services (and ServiceEntries) a waypoint serves, as the waypoint xDS reads it. There is one binding
 * computation: the WDS index's (`gateway/binding.ts`, upstream's rules, what ztunnels are told
 * and what `istio.io/WaypointBound` reports), recorded in the Gateway side's `WaypointBindings`;
 * `bindingSourceFrom` adapts it. A Service is served once it is bound (`WaypointBound=True`),
 * which needs the waypoint Gateway's `status.addresses`.
 */
import { GatewayClassName } from '@ambient-mesh/mesh-api';
import { keyString, type ServiceKey, type WaypointKey } from './types.ts';

export interface WaypointBindingSource {
  /** The Services bound to the waypoint, sorted by `namespace/name`. */
  servicesFor(waypoint: WaypointKey): readonly ServiceKey[];
  /** The waypoint a Service is bound to, if any. */
  waypointFor(service: ServiceKey): WaypointKey | undefined;
  /** The ServiceEntries bound to the waypoint, sorted by `namespace/name` (none when absent). */
  serviceEntriesFor?(waypoint: WaypointKey): readonly ServiceKey[];
  /** The waypoint a ServiceEntry is bound to, if any. */
  waypointForEntry?(entry: ServiceKey): WaypointKey | undefined;
}

/** Gateway classes whose Gateways are programmed over Envoy xDS. */
export const WAYPOINT_CLASSES: ReadonlySet<string> = new Set([GatewayClassName.waypoint]);

/** The read side of the Gateway controller's binding index (`gateway/waypoint-bindings.ts`). */
export interface ServiceBindings {
  services(waypoint: string): ReadonlySet<string>;
  serviceEntries?(waypoint: string): ReadonlySet<string>;
  waypointOf(kind: 'service' | 'serviceentry', key: string): string | undefined;
}

/**
 * A `WaypointBindingSource` over the Gateway side's bindings (only Services with
 * `istio.io/WaypointBound=True`): build the index with
 * `bindings: bindingSourceFrom(gatewaySide.bindings)` and forward
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
    serviceEntriesFor: wp => [...(bindings.serviceEntries?.(keyString(wp)) ?? [])].sort().map(split),
    waypointForEntry: entry => {
      const wp = bindings.waypointOf('serviceentry', keyString(entry));
      return wp === undefined ? undefined : split(wp);
    },
  };
}
