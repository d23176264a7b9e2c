/**
 * Builders for the waypoint xDS tests and benchmark: Services bound to a waypoint, their pods,
 * HTTPRoutes (GAMMA, parentRef to the Service), DestinationRules, ReferenceGrants, and the node of
 * a waypoint proxy.
 */
import type { core } from '@ambient-mesh/xds-types';
import { toStruct } from '@ambient-mesh/xds-types';
import type { KubeObject, Pod, Service } from '../kube/objects.ts';
import { makePod, makeService, makeWaypoint } from './fixtures.ts';
import type { Gateway } from '../kube/objects.ts';

export function makeBoundService(
  name: string,
  namespace: string,
  waypoint: string,
  clusterIP: string,
  port = 80,
): Service {
  return makeService(
    name,
    namespace,
    {
      clusterIP,
      clusterIPs: [clusterIP],
      selector: { app: name },
      ports: [{ name: 'http', port, targetPort: 8080 }],
    },
    { 'istio.io/use-waypoint': waypoint },
  );
}

export function makeBackendPod(
  app: string,
  namespace: string,
  ip: string,
  labels: Record<string, string> = {},
): Pod {
  return makePod({
    name: `${app}-${ip.replaceAll('.', '-')}`,
    namespace,
    node: 'node-1',
    ip,
    labels: { app, ...labels },
  });
}

/** A waypoint Gateway whose status has its Service's hostname, as our controller writes it (so it binds). */
export function makeWaypointGateway(name: string, namespace: string): Gateway {
  return makeWaypoint(name, namespace, `${name}.${namespace}.svc.cluster.local`);
}

export interface RouteSpec {
  readonly service: string;
  readonly port?: number;
  readonly rules: readonly unknown[];
  readonly created?: string;
  readonly generation?: number;
}

export function makeHttpRoute(
  name: string,
  namespace: string,
  spec: RouteSpec,
): KubeObject & { spec: unknown } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name,
      namespace,
      generation: spec.generation ?? 1,
      creationTimestamp: spec.created ?? '2026-01-01T00:00:00Z',
    },
    spec: {
      parentRefs: [
        {
          group: '',
          kind: 'Service',
          name: spec.service,
          ...(spec.port !== undefined ? { port: spec.port } : {}),
        },
      ],
      rules: spec.rules,
    },
  };
}

export function makeDestinationRule(
  name: string,
  namespace: string,
  spec: Record<string, unknown>,
): KubeObject & { spec: unknown } {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec,
  };
}

export function makeReferenceGrant(
  name: string,
  namespace: string,
  fromNamespace: string,
): KubeObject & { spec: unknown } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name, namespace },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: fromNamespace }],
      to: [{ group: '', kind: 'Service' }],
    },
  };
}

/** The node of a waypoint proxy pod `<gateway>-<rs>-<id>` (labels carry the gateway name). */
export function waypointNode(gateway: string, namespace: string, ip = '10.9.0.1'): core.NodeInit {
  return {
    id: `waypoint~${ip}~${gateway}-5d9c7b6f4-abcde.${namespace}~${namespace}.svc.cluster.local`,
    metadata: toStruct({
      NAMESPACE: namespace,
      INSTANCE_IPS: ip,
      SERVICE_ACCOUNT: gateway,
      LABELS: { 'gateway.networking.k8s.io/gateway-name': gateway },
    }),
  };
}
