/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send. */
/**
 * The golden fixture of istiod's acceptance (5 pods on 2 nodes, 3 Services — one with a named
 * targetPort, one headless —, 3 AuthorizationPolicies and a STRICT PeerAuthentication), created
 * as real objects on the local cluster. It mirrors `goldenFixture()` of `@ambient-mesh/istiod/testing`
 * with what a real cluster needs: runnable images, owners that exist (the garbage collector
 * deletes pods whose owner is missing), fixed ClusterIPs, and the node names of the local cluster.
 *
 * The owners (a ReplicaSet, two StatefulSets, a Job) are created after their pods, with as many
 * replicas as there are pods: each controller adopts the existing pods (a controller owner
 * reference, which is what istiod names the workload after) and has nothing to create. The
 * StatefulSet pods carry the identity their controller expects (hostname, subdomain, pod-name
 * label) and the StatefulSets update `OnDelete`, so the controller never replaces them.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { waitFor } from '../exec.ts';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';

export const GOLDEN_NS = 'golden';
/** Fixed VIPs inside the local cluster's service CIDR (10.96.0.0/16), clear of kube-dns (10.96.0.10). */
export const WEB_VIP = '10.96.100.10';
export const API_VIP = '10.96.100.11';

export const FIXTURE_POD_NAMES = [
  'web-7d4b9c-abcde',
  'web-7d4b9c-fghij',
  'api-0',
  'db-0',
  'report-28912345-xyz12',
] as const;

const HBONE = { 'ambient.istio.io/redirection': 'enabled' };

/** Labels the two nodes with a region and zones, so Workloads carry a locality. */
export async function labelNodes(client: KubeClient, nodes: readonly [string, string]): Promise<void> {
  const zones = ['z1', 'z2'];
  for (const [i, node] of nodes.entries()) {
    await client.mergePatch(`/api/v1/nodes/${node}`, {
      metadata: {
        labels: { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': zones[i] },
      },
    });
  }
}

function ownerTemplate(labels: Record<string, string>, restartPolicy?: string): Record<string, unknown> {
  return {
    metadata: { labels },
    spec: {
      ...(restartPolicy === undefined ? {} : { restartPolicy }),
      containers: [{ name: 'app', image: 'ambient-mesh/shell:0.1.0', command: ['sleep', '86400'] }],
    },
  };
}

function pod(options: {
  name: string;
  node: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  serviceAccount: string;
  /** StatefulSet identity: hostname = pod name, subdomain = the StatefulSet's service. */
  statefulSetService?: string;
  /** What the controller would have set; istiod names workloads after controllers only for such pods. */
  generateName: string;
  echo?: { portName: string; port: number };
  neverReady?: boolean;
}): V1Pod {
  const container = options.echo
    ? {
        name: 'app',
        image: 'ambient-mesh/echo:0.1.0',
        env: [{ name: 'PORT', value: String(options.echo.port) }],
        ports: [{ name: options.echo.portName, containerPort: options.echo.port }],
      }
    : { name: 'app', image: 'ambient-mesh/shell:0.1.0', command: ['sleep', '86400'] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name,
      generateName: options.generateName,
      namespace: GOLDEN_NS,
      labels:
        options.statefulSetService === undefined
          ? options.labels
          : { ...options.labels, 'statefulset.kubernetes.io/pod-name': options.name },
      annotations: options.annotations ?? {},
    },
    spec: {
      nodeName: options.node,
      ...(options.statefulSetService === undefined
        ? {}
        : { hostname: options.name, subdomain: options.statefulSetService }),
      serviceAccountName: options.serviceAccount,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      containers: [
        options.neverReady === true
          ? { ...container, readinessProbe: { exec: { command: ['false'] }, periodSeconds: 1 } }
          : container,
      ],
    },
  };
}

/**
 * Creates the fixture in namespace `golden` and waits until every pod has an IP and the expected
 * readiness (db-0 never becomes Ready). Returns the pods' IPs by name.
 */
export async function createGoldenFixture(
  client: KubeClient,
  nodes: readonly [string, string],
): Promise<Map<string, string>> {
  const [nodeA, nodeB] = nodes;
  const ns = GOLDEN_NS;
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  for (const sa of ['web', 'api', 'db', 'default']) {
    await client.ensure(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace: ns },
    });
  }
  const webLabels = { app: 'web', version: 'v1', 'pod-template-hash': '7d4b9c' };
  const pods: V1Pod[] = [
    pod({
      name: 'web-7d4b9c-abcde',
      generateName: 'web-7d4b9c-',
      node: nodeA,
      labels: webLabels,
      annotations: HBONE,
      serviceAccount: 'web',
      echo: { portName: 'http-web', port: 8080 },
    }),
    pod({
      name: 'web-7d4b9c-fghij',
      generateName: 'web-7d4b9c-',
      node: nodeB,
      labels: webLabels,
      annotations: HBONE,
      serviceAccount: 'web',
      echo: { portName: 'http-web', port: 8080 },
    }),
    pod({
      name: 'api-0',
      generateName: 'api-',
      node: nodeA,
      labels: { app: 'api', 'service.istio.io/canonical-revision': 'rev2' },
      annotations: HBONE,
      serviceAccount: 'api',
      statefulSetService: 'api',
    }),
    pod({
      name: 'db-0',
      generateName: 'db-',
      node: nodeB,
      labels: { app: 'db' },
      serviceAccount: 'db',
      statefulSetService: 'db',
      neverReady: true,
    }),
    pod({
      name: 'report-28912345-xyz12',
      generateName: 'report-28912345-',
      node: nodeB,
      labels: { 'job-name': 'report-28912345' },
      annotations: HBONE,
      serviceAccount: 'default',
    }),
  ];
  for (const p of pods) await client.create(`/api/v1/namespaces/${ns}/pods`, p);

  const services = [
    {
      name: 'web',
      spec: {
        clusterIP: WEB_VIP,
        selector: { app: 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 'http-web', protocol: 'TCP' }],
      },
    },
    {
      name: 'api',
      spec: {
        clusterIP: API_VIP,
        selector: { app: 'api' },
        ports: [{ name: 'grpc', port: 9090, targetPort: 9091, protocol: 'TCP' }],
        internalTrafficPolicy: 'Local',
      },
    },
    {
      name: 'db',
      spec: {
        clusterIP: 'None',
        selector: { app: 'db' },
        ports: [{ name: 'pg', port: 5432, targetPort: 5432, protocol: 'TCP' }],
        publishNotReadyAddresses: true,
      },
    },
  ];
  for (const s of services) {
    await client.create(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: ns },
      spec: s.spec,
    });
  }

  const policies = [
    {
      name: 'allow-web',
      spec: {
        selector: { matchLabels: { app: 'web' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/golden/sa/api'] } }] }],
      },
    },
    {
      name: 'deny-db-port',
      spec: {
        selector: { matchLabels: { app: 'db' } },
        action: 'DENY',
        rules: [{ to: [{ operation: { ports: ['5433'] } }] }],
      },
    },
    {
      name: 'ns-allow',
      spec: { action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['golden'] } }] }] },
    },
  ];
  for (const p of policies) await createAuthorizationPolicy(client, p.name, p.spec);
  await client.create(`/apis/security.istio.io/v1/namespaces/${ns}/peerauthentications`, {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'default', namespace: ns },
    spec: { mtls: { mode: 'STRICT' } },
  });

  const ips = await waitFor(
    'the golden pods to run with IPs and settled readiness',
    async () => {
      const ips = new Map<string, string>();
      for (const name of FIXTURE_POD_NAMES) {
        const p = await client.get<V1Pod>(`/api/v1/namespaces/${ns}/pods/${name}`);
        const ip = p.status?.podIP ?? '';
        const ready = p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
        const running = p.status?.containerStatuses?.every(c => c.state?.running !== undefined) === true;
        if (ip === '' || !running || ready === (name === 'db-0')) return undefined;
        ips.set(name, ip);
      }
      return ips;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  await createOwners(client, webLabels);
  return ips;
}

/** The controllers of the fixture pods, created after them so they adopt instead of creating. */
async function createOwners(client: KubeClient, webLabels: Record<string, string>): Promise<void> {
  const ns = GOLDEN_NS;
  await client.create(`/apis/apps/v1/namespaces/${ns}/replicasets`, {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'web-7d4b9c', namespace: ns },
    spec: { replicas: 2, selector: { matchLabels: webLabels }, template: ownerTemplate(webLabels) },
  });
  for (const name of ['api', 'db']) {
    await client.create(`/apis/apps/v1/namespaces/${ns}/statefulsets`, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, namespace: ns },
      spec: {
        replicas: 1,
        serviceName: name,
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'OnDelete' },
        selector: { matchLabels: { app: name } },
        template: ownerTemplate({ app: name }),
      },
    });
  }
  const jobLabels = { 'job-name': 'report-28912345' };
  await client.create(`/apis/batch/v1/namespaces/${ns}/jobs`, {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'report-28912345', namespace: ns },
    spec: {
      manualSelector: true,
      selector: { matchLabels: jobLabels },
      parallelism: 1,
      completions: 1,
      template: ownerTemplate(jobLabels, 'Never'),
    },
  });
  const expected: Record<string, string> = {
    'web-7d4b9c-abcde': 'ReplicaSet/web-7d4b9c',
    'web-7d4b9c-fghij': 'ReplicaSet/web-7d4b9c',
    'api-0': 'StatefulSet/api',
    'db-0': 'StatefulSet/db',
    'report-28912345-xyz12': 'Job/report-28912345',
  };
  await waitFor(
    'the controllers to adopt the golden pods (and create none)',
    async () => {
      const pods = await client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${ns}/pods`);
      if (pods.items.length !== FIXTURE_POD_NAMES.length) {
        const names = pods.items.map(p => p.metadata?.name ?? '').join(', ');
        throw new Error(`the controllers created pods instead of adopting: ${names}`);
      }
      return pods.items.every(p => {
        const ref = p.metadata?.ownerReferences?.find(o => o.controller === true);
        return ref !== undefined && `${ref.kind}/${ref.name}` === expected[p.metadata?.name ?? ''];
      })
        ? true
        : undefined;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 250,
      fatal: err => err instanceof Error && err.message.startsWith('the controllers created'),
    },
  );
}

export function createAuthorizationPolicy(
  client: KubeClient,
  name: string,
  spec: Record<string, unknown>,
): Promise<unknown> {
  return client.create(`/apis/security.istio.io/v1/namespaces/${GOLDEN_NS}/authorizationpolicies`, {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: GOLDEN_NS },
    spec,
  });
}
