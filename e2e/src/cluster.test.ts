/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send and receive. */
// Cluster tier: the acceptance list on a real local cluster (needs root and the
// Kubernetes binaries, which the e2e `test` script builds or reuses via tools/build-k8s.sh).
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './cluster.ts';
import { runCommand, waitFor } from './exec.ts';
import type { KubeList } from '@ambient-mesh/kube';
import { podNetnsName } from './layout.ts';
import { leftovers, pidsMentioning } from './reaper.ts';

const NS = 'default';
let cluster: Cluster;

const echoDeployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'echo', namespace: NS },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'echo' } },
    template: {
      metadata: { labels: { app: 'echo' } },
      spec: {
        terminationGracePeriodSeconds: 3,
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'DoNotSchedule',
            labelSelector: { matchLabels: { app: 'echo' } },
          },
        ],
        containers: [
          {
            name: 'echo',
            image: 'ambient-mesh/echo:0.1.0',
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            ],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          },
        ],
      },
    },
  },
};

function clientPod(name: string, node: string, args: string[]): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      containers: [{ name: 'client', image: 'ambient-mesh/load-client:0.1.0', args }],
    },
  };
}

async function echoPods(): Promise<V1Pod[]> {
  const list = await cluster.client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${NS}/pods`, {
    labelSelector: 'app=echo',
  });
  return list.items;
}

/** Runs a pod to completion and returns its phase and log (read through the apiserver, like kubectl logs). */
async function runToCompletion(pod: V1Pod): Promise<{ phase: string; log: string }> {
  await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod);
  const name = pod.metadata!.name!;
  const phase = await waitFor(
    `pod ${name} to finish`,
    async () => {
      const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${name}`);
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p.status.phase : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const log = await cluster.client.get<string>(`/api/v1/namespaces/${NS}/pods/${name}/log`);
  return { phase, log };
}

describe('local cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'e2e',
      slot: 1,
      nodes: 2,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('registers 2 Ready nodes', async () => {
    const nodes =
      await cluster.client.get<
        KubeList<{ metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }>
      >('/api/v1/nodes');
    expect(nodes.items.map(n => n.metadata.name).sort()).toEqual(['node-0', 'node-1']);
    for (const n of nodes.items)
      expect(n.status.conditions.find(c => c.type === 'Ready')?.status).toBe('True');
  });

  it('runs a 3-replica echo Deployment Running and Ready across both nodes, reachable by IP and by Service DNS name', async () => {
    await cluster.client.create(`/apis/apps/v1/namespaces/${NS}/deployments`, echoDeployment);
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    const pods = await waitFor(
      '3 Running and Ready echo pods',
      async () => {
        const items = await echoPods();
        const ready = items.filter(
          p =>
            p.status?.phase === 'Running' &&
            p.status.conditions?.some(c => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 ? ready : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(new Set(pods.map(p => p.spec?.nodeName))).toEqual(new Set(['node-0', 'node-1']));

    const onNode1 = pods.find(p => p.spec?.nodeName === 'node-1')!;
    const byIp = await runToCompletion(
      clientPod('client-ip', 'node-0', [`http://${onNode1.status!.podIP}:8080/by-ip`]),
    );
    expect(byIp.phase).toBe('Succeeded');
    const summary = JSON.parse(byIp.log.trim()) as { lastBody: string };
    const answer = JSON.parse(summary.lastBody);
    expect(answer).toMatchObject({ pod: onNode1.metadata!.name, node: 'node-1', url: '/by-ip' });

    // Ready pods reach kube-proxy's Service rules a moment later (EndpointSlice, then kube-proxy's
    // sync), and the new Service reaches cluster DNS through its watch: wait until the name resolves
    // through the kube-dns VIP and the Service answers, from node-0, before counting requests.
    const probe = [
      "const r = new (require('node:dns').promises.Resolver)({ timeout: 500, tries: 1 });",
      `r.setServers([${JSON.stringify(cluster.layout.dnsServiceIp)}]);`,
      "r.resolve4('echo.default.svc.cluster.local').then(([ip]) => require('node:http')",
      '  .get(`http://${ip}/`, res => process.exit(res.statusCode === 200 ? 0 : 1))',
      "  .on('error', () => process.exit(1)), () => process.exit(1));",
    ].join(' ');
    await waitFor(
      'echo.default.svc.cluster.local to resolve and answer from node-0',
      async () => {
        const r = await runCommand(
          ['nsenter', `--net=/run/netns/${cluster.nodes[0]!.netns}`, '--', process.execPath, '-e', probe],
          { allowFailure: true, timeoutMs: 5_000 },
        );
        return r.code === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const byDns = await runToCompletion(
      clientPod('client-dns', 'node-0', ['http://echo.default.svc.cluster.local/by-name', '--count', '6']),
    );
    expect(byDns.phase).toBe('Succeeded');
    expect(JSON.parse(byDns.log.trim())).toMatchObject({ ok: 6, failed: 0 });
  }, 240_000);

  it('mounts a projected token that validates through TokenReview and is bound to the pod', async () => {
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'token-reader', namespace: NS },
      spec: {
        nodeName: 'node-1',
        restartPolicy: 'Never',
        containers: [
          {
            name: 'reader',
            image: 'ambient-mesh/shell',
            command: ['/bin/sh', '-c', 'cat /var/run/secrets/tokens/istio-token'],
            volumeMounts: [{ name: 'istio-token', mountPath: '/var/run/secrets/tokens' }],
          },
        ],
        volumes: [
          {
            name: 'istio-token',
            projected: {
              sources: [
                {
                  serviceAccountToken: {
                    audience: 'istio-ca',
                    expirationSeconds: 43200,
                    path: 'istio-token',
                  },
                },
              ],
            },
          },
        ],
      },
    };
    const { phase, log } = await runToCompletion(pod);
    expect(phase).toBe('Succeeded');
    const created = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/token-reader`);
    const review = await cluster.client.create<{
      status: {
        authenticated?: boolean;
        audiences?: string[];
        user?: { username?: string; extra?: Record<string, string[]> };
      };
    }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: log.trim(), audiences: ['istio-ca'] },
    });
    expect(review.status.authenticated).toBe(true);
    expect(review.status.audiences).toEqual(['istio-ca']);
    expect(review.status.user?.username).toBe('system:serviceaccount:default:default');
    expect(review.status.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['token-reader']);
    expect(review.status.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([
      created.metadata!.uid,
    ]);
  }, 120_000);

  it('deleting the Deployment removes its pods, their netns and their processes', async () => {
    const pods = await echoPods();
    expect(pods).toHaveLength(3);
    const netns = pods.map(p => podNetnsName(cluster.layout, p.metadata!.uid!));
    for (const ns of netns) expect(existsSync(`/run/netns/${ns}`)).toBe(true);
    // This cluster's echo processes: those inside its pods' netns (other clusters may run echo too).
    const ours = new Set<number>();
    for (const ns of netns) {
      const r = await runCommand(['ip', 'netns', 'pids', ns]);
      for (const pid of r.stdout.split('\n').filter(Boolean)) ours.add(Number(pid));
    }
    expect(pidsMentioning('workloads/echo.ts').filter(pid => ours.has(pid))).toHaveLength(3);
    await cluster.client.delete(`/apis/apps/v1/namespaces/${NS}/deployments/echo`, {
      propagationPolicy: 'Foreground',
    });
    await waitFor('echo pods gone', async () => ((await echoPods()).length === 0 ? true : undefined), {
      timeoutMs: 60_000,
    });
    for (const ns of netns) expect(existsSync(`/run/netns/${ns}`)).toBe(false);
    const echoProcesses = pidsMentioning('workloads/echo.ts').filter(pid => ours.has(pid));
    expect(echoProcesses).toEqual([]);
  }, 120_000);

  it('stop leaves no netns, process, link or nft table behind', async () => {
    await cluster.stop();
    const left = await leftovers(cluster.layout, runCommand);
    expect(left).toEqual({ netns: [], processes: [], links: [], nftTables: [] });
  }, 180_000);
});
