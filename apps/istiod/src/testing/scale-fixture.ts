/**
 * A synthetic mesh for benchmarks: `pods` pods spread over `nodes` fake nodes and
 * `namespaces` namespaces, `services` services (each selecting an equal share of its
 * namespace's pods, half with a named target port) and `policies` selector-scoped policies.
 */
import type { AuthorizationPolicy, Namespace, Node, Pod, Service } from '../kube/objects.ts';
import { makeAuthorizationPolicy, makeNamespace, makeNode, makePod, makeService } from './fixtures.ts';

export interface ScaleOptions {
  readonly pods: number;
  readonly services: number;
  readonly policies: number;
  readonly nodes: number;
  readonly namespaces: number;
}

export interface ScaleFixture {
  readonly nodes: Node[];
  readonly namespaces: Namespace[];
  readonly pods: Pod[];
  readonly services: Service[];
  readonly policies: AuthorizationPolicy[];
}

function ip(base: number, i: number): string {
  return `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

export function scaleFixture(o: ScaleOptions): ScaleFixture {
  const nsName = (i: number): string => `ns-${i % o.namespaces}`;
  const appOf = (svc: number): string => `app-${svc}`;
  const pods: Pod[] = [];
  for (let i = 0; i < o.pods; i++) {
    const svc = i % o.services;
    pods.push(
      makePod({
        name: `pod-${i}`,
        namespace: nsName(svc),
        node: `node-${i % o.nodes}`,
        ip: ip(10, i + 1),
        labels: { app: appOf(svc), version: 'v1', 'pod-template-hash': 'abc12' },
        annotations: { 'ambient.istio.io/redirection': 'enabled' },
        serviceAccount: `sa-${svc}`,
        ports: [{ name: 'http', containerPort: 8080 }],
        owner: { kind: 'ReplicaSet', name: `${appOf(svc)}-abc12` },
      }),
    );
  }
  const services: Service[] = [];
  for (let s = 0; s < o.services; s++) {
    services.push(
      makeService(appOf(s), nsName(s), {
        clusterIP: ip(172, s + 1),
        clusterIPs: [ip(172, s + 1)],
        ipFamilies: ['IPv4'],
        selector: { app: appOf(s) },
        ports: [{ name: 'http', port: 80, targetPort: s % 2 === 0 ? 'http' : 8080, protocol: 'TCP' }],
      }),
    );
  }
  const policies: AuthorizationPolicy[] = [];
  for (let p = 0; p < o.policies; p++) {
    const s = p % o.services;
    policies.push(
      makeAuthorizationPolicy(`policy-${p}`, nsName(s), {
        selector: { matchLabels: { app: appOf(s) } },
        action: p % 5 === 0 ? 'DENY' : 'ALLOW',
        rules: [
          {
            from: [
              { source: { principals: [`cluster.local/ns/${nsName(s + 1)}/sa/sa-${(s + 1) % o.services}`] } },
            ],
            to: [{ operation: { ports: ['8080'] } }],
          },
        ],
      }),
    );
  }
  return {
    nodes: Array.from({ length: o.nodes }, (_, i) =>
      makeNode(`node-${i}`, {
        'topology.kubernetes.io/region': 'r1',
        'topology.kubernetes.io/zone': `z${i % 3}`,
      }),
    ),
    namespaces: Array.from({ length: o.namespaces }, (_, i) => makeNamespace(`ns-${i}`)),
    pods,
    services,
    policies,
  };
}
