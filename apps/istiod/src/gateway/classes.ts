/**
 * The GatewayClasses istiod provides, with upstream's names, controller names and defaults
 * (Istio 1.27 `gatewaycommon/classinfo.go`): `istio` (ingress, LoadBalancer Service, objects named
 * `<gateway>-istio`) and `istio-waypoint` (ClusterIP Service, objects named after the Gateway).
 */
import { GATEWAY_CONTROLLER_NAME, GATEWAY_MANAGED_BY_MESH, GatewayClassName } from '@ambient-mesh/mesh-api';
import type { GatewayStatusCondition } from './model.ts';

export interface GatewayClassInfo {
  readonly name: string;
  /** `spec.controllerName` of the class. */
  readonly controllerName: string;
  /** The `gateway.istio.io/managed` value on generated objects. */
  readonly controllerLabel: string;
  readonly description: string;
  readonly serviceType: 'ClusterIP' | 'LoadBalancer';
  /** Generated objects are named `<gateway>-<class>` unless disabled (waypoints). */
  readonly nameSuffix: boolean;
  /** Which internal addresses status reports: both IPs and hostnames, or hostnames only. */
  readonly addressTypes: 'both' | 'hostname';
  readonly waypoint: boolean;
}

/** Upstream's controller name of the waypoint class. */
export const MESH_CONTROLLER_NAME = 'istio.io/mesh-controller';
/** Upstream's `gateway.istio.io/managed` value for ingress gateways. */
export const GATEWAY_MANAGED_BY_GATEWAY_CONTROLLER = 'istio.io-gateway-controller';

export const INGRESS_CLASS: GatewayClassInfo = {
  name: GatewayClassName.ingress,
  controllerName: GATEWAY_CONTROLLER_NAME,
  controllerLabel: GATEWAY_MANAGED_BY_GATEWAY_CONTROLLER,
  description: 'The default Istio GatewayClass',
  serviceType: 'LoadBalancer',
  nameSuffix: true,
  addressTypes: 'hostname',
  waypoint: false,
};

export const WAYPOINT_CLASS: GatewayClassInfo = {
  name: GatewayClassName.waypoint,
  controllerName: MESH_CONTROLLER_NAME,
  controllerLabel: GATEWAY_MANAGED_BY_MESH,
  description: 'The default Istio waypoint GatewayClass',
  serviceType: 'ClusterIP',
  nameSuffix: false,
  addressTypes: 'both',
  waypoint: true,
};

export const BUILTIN_CLASSES: readonly GatewayClassInfo[] = [INGRESS_CLASS, WAYPOINT_CLASS];

/** The class info of a class name istiod manages, else undefined (that Gateway is ignored). */
export function classInfoFor(
  className: string,
  installed: (name: string) => { readonly controllerName: string } | undefined,
): GatewayClassInfo | undefined {
  const builtin = BUILTIN_CLASSES.find(c => c.name === className);
  const live = installed(className);
  if (live !== undefined) {
    // A class of that name owned by another controller is not ours, whatever its name.
    const byController = BUILTIN_CLASSES.find(c => c.controllerName === live.controllerName);
    return byController === undefined ? undefined : { ...byController, name: className };
  }
  return builtin;
}

/** The GatewayClass object istiod creates when it is missing. */
export function gatewayClassObject(info: GatewayClassInfo): Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
} {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: info.name },
    spec: { controllerName: info.controllerName, description: info.description },
  };
}

export const GATEWAY_CLASS_ACCEPTED = 'Accepted';

/** The status conditions istiod writes on its GatewayClasses (upstream's message). */
export function gatewayClassConditions(generation: number): GatewayStatusCondition[] {
  return [
    {
      type: GATEWAY_CLASS_ACCEPTED,
      status: 'True',
      reason: 'Accepted',
      message: 'Handled by Istio controller',
      observedGeneration: generation,
    },
  ];
}
