/**
 * A small mesh for tests: `sample` (ambient) with client and echo, `legacy` (not in the mesh),
 * istio-system with istiod and two ztunnels, plus deliberately broken config for the validations.
 * `manyWorkloads(n)` adds a namespace with n single-pod workloads (the list's virtualisation).
 */
import type { MeshSnapshot, PodObject } from '../snapshot.ts';

const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };

function pod(
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
  extra: Partial<PodObject> = {},
): PodObject {
  return {
    metadata: {
      name: `${name}-7d9f8b6c5-x1`,
      namespace,
      labels: { app: name, 'pod-template-hash': '7d9f8b6c5', ...labels },
      annotations: { 'ambient.istio.io/redirection': 'enabled' },
      ownerReferences: [{ kind: 'ReplicaSet', name: `${name}-7d9f8b6c5` }],
    },
    spec: {
      nodeName: 'node-1',
      serviceAccountName: name,
      containers: [{ name, ports: [{ containerPort: 8080 }] }],
    },
    status: ready,
    ...extra,
  };
}

function withIp(p: PodObject, podIP: string): PodObject {
  return { ...p, status: { ...p.status, podIP } };
}

export { pod as fixturePod, withIp };

export function sampleSnapshot(): MeshSnapshot {
  return {
    namespaces: [
      { metadata: { name: 'istio-system' } },
      { metadata: { name: 'sample', labels: { 'istio.io/dataplane-mode': 'ambient' } } },
      { metadata: { name: 'legacy' } },
      {
        metadata: {
          name: 'broken',
          labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'ghost' },
        },
      },
    ],
    pods: [
      pod('istio-system', 'istiod', { app: 'istiod' }),
      {
        metadata: {
          name: 'ztunnel-a',
          namespace: 'istio-system',
          labels: { app: 'ztunnel' },
          ownerReferences: [{ kind: 'DaemonSet', name: 'ztunnel' }],
        },
        spec: { nodeName: 'node-1' },
        status: ready,
      },
      {
        metadata: {
          name: 'ztunnel-b',
          namespace: 'istio-system',
          labels: { app: 'ztunnel' },
          ownerReferences: [{ kind: 'DaemonSet', name: 'ztunnel' }],
        },
        spec: { nodeName: 'node-2' },
        status: ready,
      },
      withIp(pod('sample', 'client'), '10.1.0.10'),
      withIp(pod('sample', 'echo'), '10.1.0.20'),
      withIp(
        pod('sample', 'waypoint', {
          'gateway.istio.io/managed': 'istio.io-mesh-controller',
          'gateway.networking.k8s.io/gateway-name': 'waypoint',
        }),
        '10.1.0.30',
      ),
      pod(
        'legacy',
        'db',
        {},
        {
          metadata: {
            name: 'db-0',
            namespace: 'legacy',
            labels: { app: 'db', 'istio.io/use-waypoint': 'waypoint' },
            ownerReferences: [{ kind: 'StatefulSet', name: 'db' }],
          },
        },
      ),
      pod(
        'legacy',
        'sidecar-app',
        {},
        {
          metadata: {
            name: 'sidecar-app-1',
            namespace: 'legacy',
            labels: { app: 'sidecar-app' },
            annotations: { 'sidecar.istio.io/status': '{}' },
          },
        },
      ),
      pod('broken', 'both', { 'sidecar.istio.io/inject': 'true' }),
    ],
    services: [
      {
        metadata: { name: 'echo', namespace: 'sample', labels: { 'istio.io/use-waypoint': 'waypoint' } },
        spec: { selector: { app: 'echo' } },
      },
      { metadata: { name: 'client', namespace: 'sample' }, spec: { selector: { app: 'client' } } },
      { metadata: { name: 'db', namespace: 'legacy' }, spec: { selector: { app: 'db' } } },
    ],
    gateways: [
      {
        metadata: { name: 'waypoint', namespace: 'sample', labels: { 'istio.io/waypoint-for': 'service' } },
        spec: { gatewayClassName: 'istio-waypoint' },
        status: { conditions: [{ type: 'Programmed', status: 'True', reason: 'Programmed' }] },
      },
    ],
    authorizationPolicies: [
      {
        metadata: { name: 'echo-get-only', namespace: 'sample' },
        spec: {
          targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
          rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
        },
      },
      {
        metadata: { name: 'client-paths', namespace: 'sample' },
        spec: {
          selector: { matchLabels: { app: 'client' } },
          rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
        },
      },
      {
        metadata: { name: 'l4-only', namespace: 'sample' },
        spec: {
          selector: { matchLabels: { app: 'echo' } },
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/sample/sa/client'] } }] }],
        },
      },
      {
        // Malformed: a condition key istiod does not know (the CRD schema lets it through).
        metadata: { name: 'bad-when', namespace: 'sample' },
        spec: {
          selector: { matchLabels: { app: 'echo' } },
          rules: [{ when: [{ key: 'no.such.attribute', values: ['x'] }] }],
        },
      },
    ],
    peerAuthentications: [
      { metadata: { name: 'strict', namespace: 'sample' }, spec: { mtls: { mode: 'STRICT' } } },
    ],
  };
}

export function manyWorkloads(base: MeshSnapshot, count: number, namespace = 'load'): MeshSnapshot {
  const pods: PodObject[] = [];
  for (let i = 0; i < count; i++) pods.push(pod(namespace, `w-${String(i).padStart(4, '0')}`));
  return {
    ...base,
    namespaces: [
      ...base.namespaces,
      { metadata: { name: namespace, labels: { 'istio.io/dataplane-mode': 'ambient' } } },
    ],
    pods: [...base.pods, ...pods],
  };
}
