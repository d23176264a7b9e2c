// The apiserver mode's mesh as real Kubernetes objects: fake Nodes kept Ready by renewing their
// Leases (no kubelet owns them, and ours only watch pods with their own spec.nodeName), and pods
// bound to those nodes whose status (phase, IPs, Ready) is written through the status
// subresource. No owner references: the garbage collector would delete pods of absent owners.
import { KubeApiError, type KubeClient } from '@ambient-mesh/e2e';

export interface MeshShape {
  readonly pods: number;
  readonly services: number;
  readonly policies: number;
  readonly fakeNodes: number;
  readonly namespaces: number;
}

export const NS_PREFIX = 'bench-';
export const FAKE_NODE_PREFIX = 'istiodbn-fake-';

export const nsName = (shape: MeshShape, svc: number): string => `${NS_PREFIX}${svc % shape.namespaces}`;
const appOf = (svc: number): string => `app-${svc}`;
/** 10.250.0.0/16, outside the cluster's pod and service CIDRs (never routed). */
const fakeIp = (second: number, i: number): string => `10.${second}.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
const microTime = (): string => new Date().toISOString().replace('Z', '000Z');

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export function podRef(shape: MeshShape, i: number): PodRef {
  return { namespace: nsName(shape, i % shape.services), name: `pod-${i}` };
}

/** Resource names a complete WDS holds for the mesh (docs/protocols.md#wds-resource-names). */
export function expectedNames(shape: MeshShape): { addresses: string[]; authorizations: string[] } {
  const addresses: string[] = [];
  for (let i = 0; i < shape.pods; i++) {
    const p = podRef(shape, i);
    addresses.push(`Kubernetes//Pod/${p.namespace}/${p.name}`);
  }
  for (let s = 0; s < shape.services; s++) {
    const ns = nsName(shape, s);
    addresses.push(`${ns}/${appOf(s)}.${ns}.svc.cluster.local`);
  }
  const authorizations = Array.from(
    { length: shape.policies },
    (_, p) => `${nsName(shape, p % shape.services)}/policy-${p}`,
  );
  return { addresses, authorizations };
}

/**
 * Runs `task` for 0..count-1 with at most `concurrency` in flight; each task is retried (up to 5
 * attempts, linear backoff) on any error but 409 AlreadyExists, which counts as done. Progress
 * every 10%.
 */
export async function pool(
  what: string,
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
  progress: (line: string) => void,
): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  const step = Math.max(1, Math.floor(count / 10));
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await task(i);
          break;
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 409) break;
          if (attempt >= 5) throw err;
          await new Promise(resolve => setTimeout(resolve, 200 * attempt));
        }
      }
      done++;
      if (done % step === 0 || done === count) progress(`${what}: ${done}/${count}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
  return performance.now() - t0;
}

export interface PhaseTiming {
  readonly what: string;
  readonly count: number;
  readonly ms: number;
}

/** Creates the namespaces, service accounts, fake nodes, services, policies and pods; patches pod status. */
export async function createMesh(
  client: KubeClient,
  shape: MeshShape,
  concurrency: number,
  progress: (line: string) => void,
): Promise<PhaseTiming[]> {
  const out: PhaseTiming[] = [];
  const phase = async (what: string, count: number, task: (i: number) => Promise<unknown>): Promise<void> => {
    out.push({ what, count, ms: await pool(what, count, concurrency, task, progress) });
  };
  const fakeNode = (i: number): string => `${FAKE_NODE_PREFIX}${i}`;

  await phase('fake nodes (Node + status + Lease)', shape.fakeNodes, async i => {
    const name = fakeNode(i);
    await client.ensure('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'topology.kubernetes.io/region': 'r1',
          'topology.kubernetes.io/zone': `z${i % 3}`,
        },
      },
    });
    const now = new Date().toISOString();
    await client.mergePatch(`/api/v1/nodes/${name}/status`, {
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'fake node of the istiod benchmark',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        addresses: [{ type: 'InternalIP', address: fakeIp(251, i) }],
      },
    });
    await client.ensure('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace: 'kube-node-lease' },
      spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() },
    });
  });
  await phase('namespaces', shape.namespaces, i =>
    client.ensure('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: `${NS_PREFIX}${i}` },
    }),
  );
  await phase('service accounts', shape.services, s =>
    client.ensure(`/api/v1/namespaces/${nsName(shape, s)}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: `sa-${s}`, namespace: nsName(shape, s) },
    }),
  );
  await phase('services', shape.services, s =>
    client.create(`/api/v1/namespaces/${nsName(shape, s)}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: appOf(s), namespace: nsName(shape, s) },
      spec: {
        selector: { app: appOf(s) },
        ports: [{ name: 'http', port: 80, targetPort: s % 2 === 0 ? 'http' : 8080, protocol: 'TCP' }],
      },
    }),
  );
  await phase('AuthorizationPolicies', shape.policies, p => {
    const s = p % shape.services;
    const ns = nsName(shape, s);
    return client.create(`/apis/security.istio.io/v1/namespaces/${ns}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: `policy-${p}`, namespace: ns },
      spec: {
        selector: { matchLabels: { app: appOf(s) } },
        action: p % 5 === 0 ? 'DENY' : 'ALLOW',
        rules: [
          {
            from: [
              {
                source: {
                  principals: [`cluster.local/ns/${nsName(shape, s + 1)}/sa/sa-${(s + 1) % shape.services}`],
                },
              },
            ],
            to: [{ operation: { ports: ['8080'] } }],
          },
        ],
      },
    });
  });
  await phase('pods', shape.pods, i => {
    const svc = i % shape.services;
    const ref = podRef(shape, i);
    return client.create(`/api/v1/namespaces/${ref.namespace}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: ref.name,
        namespace: ref.namespace,
        labels: { app: appOf(svc), version: 'v1' },
        annotations: { 'ambient.istio.io/redirection': 'enabled' },
      },
      spec: {
        nodeName: fakeNode(i % shape.fakeNodes),
        serviceAccountName: `sa-${svc}`,
        automountServiceAccountToken: false,
        // The fake nodes are kept Ready; this only guards against eviction if a renewal is late.
        tolerations: [{ operator: 'Exists' }],
        containers: [{ name: 'app', image: 'bench/none:0', ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    });
  });
  await phase('pod status (Running, IP, Ready)', shape.pods, i => {
    const ref = podRef(shape, i);
    const now = new Date().toISOString();
    const ip = fakeIp(250, i);
    return client.mergePatch(`/api/v1/namespaces/${ref.namespace}/pods/${ref.name}/status`, {
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        hostIP: fakeIp(251, i % shape.fakeNodes),
        startTime: now,
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
          { type: 'Initialized', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
          { type: 'Ready', status: 'True', lastTransitionTime: now },
        ],
      },
    });
  });
  return out;
}

/** Renews the fake nodes' Leases every `intervalMs` so the node lifecycle controller keeps them Ready. */
export function keepFakeNodesAlive(
  client: KubeClient,
  shape: MeshShape,
  intervalMs: number,
): { stop(): void; failures(): number } {
  let failures = 0;
  let running = false;
  const renew = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      await pool(
        'lease renewal',
        shape.fakeNodes,
        8,
        i =>
          client
            .mergePatch(
              `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${FAKE_NODE_PREFIX}${i}`,
              {
                spec: { renewTime: microTime() },
              },
            )
            .catch(() => {
              failures++;
            }),
        () => undefined,
      );
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => {
    void renew();
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
    },
    failures: () => failures,
  };
}
