/**
 * Builders for the ingress gateway tests: Gateways of class `istio`, HTTPRoutes whose parents
 * are Gateways, TLS Secrets, ReferenceGrants to Secrets, and the node of a `router~` proxy.
 */
import type { core } from '@ambient-mesh/xds-types';
import { toStruct } from '@ambient-mesh/xds-types';
import type { Gateway, KubeObject } from '../kube/objects.ts';

export interface IngressListenerSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS' | 'TCP' | 'TLS';
  readonly hostname?: string;
  readonly tls?: Record<string, unknown>;
  readonly allowedRoutes?: Record<string, unknown>;
}

export function makeIngressGateway(
  name: string,
  namespace: string,
  listeners: readonly IngressListenerSpec[],
): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, labels: {} },
    spec: { gatewayClassName: 'istio', listeners: listeners as Gateway['spec']['listeners'] },
  };
}

export interface GatewayRouteSpec {
  readonly parentRefs: readonly Record<string, unknown>[];
  readonly hostnames?: readonly string[];
  readonly rules: readonly unknown[];
  readonly created?: string;
}

/** An HTTPRoute (or GRPCRoute) whose parentRefs name Gateways (group and kind default). */
export function makeGatewayRoute(
  name: string,
  namespace: string,
  spec: GatewayRouteSpec,
  kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute',
): KubeObject & { spec: unknown } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: {
      name,
      namespace,
      generation: 1,
      creationTimestamp: spec.created ?? '2026-01-01T00:00:00Z',
    },
    spec: {
      parentRefs: spec.parentRefs,
      ...(spec.hostnames === undefined ? {} : { hostnames: spec.hostnames }),
      rules: spec.rules,
    },
  };
}

/** A `kubernetes.io/tls` Secret of a PEM certificate chain and key. */
export function makeTlsSecret(name: string, namespace: string, certPem: string, keyPem: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': Buffer.from(certPem).toString('base64'),
      'tls.key': Buffer.from(keyPem).toString('base64'),
    },
  } as KubeObject;
}

/** A ReferenceGrant letting Gateways of `fromNamespace` use Secrets of `namespace`. */
export function makeSecretGrant(name: string, namespace: string, fromNamespace: string): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name, namespace },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: fromNamespace }],
      to: [{ group: '', kind: 'Secret' }],
    },
  } as KubeObject;
}

/** The node of an ingress gateway pod `<gateway>-istio-<rs>-<id>` (labels carry the gateway name). */
export function routerNode(gateway: string, namespace: string, ip = '10.9.1.1'): core.NodeInit {
  return {
    id: `router~${ip}~${gateway}-istio-5d9c7b6f4-abcde.${namespace}~${namespace}.svc.cluster.local`,
    metadata: toStruct({
      NAMESPACE: namespace,
      INSTANCE_IPS: ip,
      SERVICE_ACCOUNT: `${gateway}-istio`,
      LABELS: { 'gateway.networking.k8s.io/gateway-name': gateway },
    }),
  };
}
