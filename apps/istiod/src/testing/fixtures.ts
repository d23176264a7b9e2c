/**
 * Kubernetes object builders and the golden fixture shared by istiod's tests and benchmarks:
 * 5 pods on 2 nodes, 3 services (one with a named targetPort, one headless), 3
 * AuthorizationPolicies and a STRICT PeerAuthentication.
 */
import type {
  AuthorizationPolicy,
  Gateway,
  Namespace,
  Node,
  PeerAuthentication,
  Pod,
  Service,
} from '../kube/objects.ts';

export interface PodSpecInput {
  readonly name: string;
  readonly namespace?: string;
  readonly node: string;
  readonly ip: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly serviceAccount?: string;
  readonly ports?: { name?: string; containerPort: number }[];
  readonly ready?: boolean;
  readonly owner?: { kind: string; name: string };
  /** Defaults to `<owner name>-` when there is an owner. */
  readonly generateName?: string;
  readonly phase?: string;
}

export function makePod(p: PodSpecInput): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'default',
      uid: `uid-${p.name}`,
      // Controllers name their pods from generateName; istiod names workloads only for those.
      ...(p.owner ? { generateName: p.generateName ?? `${p.owner.name}-` } : {}),
      labels: p.labels ?? {},
      annotations: p.annotations ?? {},
      ...(p.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', ...p.owner, controller: true }] } : {}),
    },
    spec: {
      nodeName: p.node,
      serviceAccountName: p.serviceAccount ?? 'default',
      containers: [{ name: 'app', ports: p.ports ?? [] }],
    },
    status: {
      phase: p.phase ?? 'Running',
      podIP: p.ip,
      podIPs: [{ ip: p.ip }],
      conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True' }],
    },
  };
}

export function makeService(
  name: string,
  namespace: string,
  spec: NonNullable<Service['spec']>,
  labels: Record<string, string> = {},
): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec };
}

export function makeNode(name: string, labels: Record<string, string> = {}): Node {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } };
}

export function makeNamespace(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function makeAuthorizationPolicy(
  name: string,
  namespace: string,
  spec: Record<string, unknown>,
  annotations: Record<string, string> = {},
): AuthorizationPolicy {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace, annotations, creationTimestamp: new Date('2026-01-01T00:00:00Z') },
    spec,
  };
}

export function makePeerAuthentication(
  name: string,
  namespace: string,
  spec: Record<string, unknown>,
): PeerAuthentication {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace, creationTimestamp: new Date('2026-01-01T00:00:00Z') },
    spec,
  };
}

export function makeWaypoint(name: string, namespace: string, address?: string): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, labels: {} },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
    ...(address === undefined ? {} : { status: { addresses: [{ type: 'Hostname', value: address }] } }),
  };
}

const HBONE = { 'ambient.istio.io/redirection': 'enabled' };

/** The golden fixture (namespace `golden`). */
export function goldenFixture(): {
  nodes: Node[];
  namespaces: Namespace[];
  pods: Pod[];
  services: Service[];
  policies: AuthorizationPolicy[];
  peerAuthentications: PeerAuthentication[];
} {
  const ns = 'golden';
  return {
    nodes: [
      makeNode('node-a', { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': 'z1' }),
      makeNode('node-b', { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': 'z2' }),
    ],
    namespaces: [makeNamespace(ns, { 'istio.io/dataplane-mode': 'ambient' }), makeNamespace('istio-system')],
    pods: [
      makePod({
        name: 'web-7d4b9c-abcde',
        namespace: ns,
        node: 'node-a',
        ip: '10.244.1.10',
        labels: { app: 'web', version: 'v1', 'pod-template-hash': '7d4b9c' },
        annotations: HBONE,
        serviceAccount: 'web',
        ports: [{ name: 'http-web', containerPort: 8080 }],
        owner: { kind: 'ReplicaSet', name: 'web-7d4b9c' },
      }),
      makePod({
        name: 'web-7d4b9c-fghij',
        namespace: ns,
        node: 'node-b',
        ip: '10.244.2.10',
        labels: { app: 'web', version: 'v1', 'pod-template-hash': '7d4b9c' },
        annotations: HBONE,
        serviceAccount: 'web',
        ports: [{ name: 'http-web', containerPort: 8080 }],
        owner: { kind: 'ReplicaSet', name: 'web-7d4b9c' },
      }),
      makePod({
        name: 'api-0',
        namespace: ns,
        node: 'node-a',
        ip: '10.244.1.11',
        labels: { app: 'api', 'service.istio.io/canonical-revision': 'rev2' },
        annotations: HBONE,
        serviceAccount: 'api',
        owner: { kind: 'StatefulSet', name: 'api' },
      }),
      makePod({
        name: 'db-0',
        namespace: ns,
        node: 'node-b',
        ip: '10.244.2.11',
        labels: { app: 'db' },
        serviceAccount: 'db',
        owner: { kind: 'StatefulSet', name: 'db' },
        ready: false,
      }),
      makePod({
        name: 'report-28912345-xyz12',
        namespace: ns,
        node: 'node-b',
        ip: '10.244.2.12',
        labels: { 'job-name': 'report-28912345' },
        annotations: HBONE,
        owner: { kind: 'Job', name: 'report-28912345' },
      }),
    ],
    services: [
      makeService('web', ns, {
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        selector: { app: 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 'http-web', protocol: 'TCP' }],
      }),
      makeService('api', ns, {
        clusterIP: '10.96.0.11',
        clusterIPs: ['10.96.0.11'],
        ipFamilies: ['IPv4'],
        selector: { app: 'api' },
        ports: [{ name: 'grpc', port: 9090, targetPort: 9091, protocol: 'TCP' }],
        internalTrafficPolicy: 'Local',
      }),
      makeService('db', ns, {
        clusterIP: 'None',
        clusterIPs: ['None'],
        ipFamilies: ['IPv4'],
        selector: { app: 'db' },
        ports: [{ name: 'pg', port: 5432, targetPort: 5432, protocol: 'TCP' }],
        publishNotReadyAddresses: true,
      }),
    ],
    policies: [
      makeAuthorizationPolicy('allow-web', ns, {
        selector: { matchLabels: { app: 'web' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/golden/sa/api'] } }] }],
      }),
      makeAuthorizationPolicy('deny-db-port', ns, {
        selector: { matchLabels: { app: 'db' } },
        action: 'DENY',
        rules: [{ to: [{ operation: { ports: ['5433'] } }] }],
      }),
      makeAuthorizationPolicy('ns-allow', ns, {
        action: 'ALLOW',
        rules: [{ from: [{ source: { namespaces: ['golden'] } }] }],
      }),
    ],
    peerAuthentications: [makePeerAuthentication('default', ns, { mtls: { mode: 'STRICT' } })],
  };
}
