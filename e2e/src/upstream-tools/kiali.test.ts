// Cluster tier: upstream Kiali (v1.82.0, built from the Go module proxy by
// tools/install-deps.d/kiali.sh) and Debian's Prometheus, both run on the host against a 2-node
// local cluster with our mesh, while a client Deployment sends requests to an echo Deployment in an
// ambient namespace. Prometheus scrapes istiod and every ztunnel (file_sd targets from their
// `prometheus.io/*` annotations, reached through LoadBalancer addresses); the cases assert on
// Kiali's JSON API. One cluster (own name and slot) is shared by the whole file.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1PodList } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ztunnelPods } from '../mesh/observe.ts';
import { createAppNamespace, createEchoService, ECHO_IMAGE, isPodReady } from '../mesh/workloads.ts';
import { ensureKiali, exposeScrapeTargets, HostObservability, kialiKubeconfig } from './kiali.ts';

const NS = 'tools-kiali';
const POLICY = 'echo-from-client';
let cluster: Cluster | undefined;
let obs: HostObservability | undefined;
let scratch = '';

function appVersion(app: string): string {
  const url = new URL(`../../../apps/${app}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

function deployment(name: string, node: string, container: object): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, version: 'v1' } },
        spec: {
          nodeName: node,
          serviceAccountName: name,
          terminationGracePeriodSeconds: 1,
          containers: [container],
        },
      },
    },
  };
}

/** Waits until the Deployment's pod is Ready and enrolled in the mesh. */
async function enrolled(c: Cluster, app: string): Promise<void> {
  await waitFor(
    `the ${app} pod enrolled and Ready`,
    async () => {
      const pods = await c.client.get<V1PodList>(`/api/v1/namespaces/${NS}/pods`, {
        labelSelector: `app=${app}`,
      });
      return pods.items.some(
        p => isPodReady(p) && p.metadata?.annotations?.['ambient.istio.io/redirection'] === 'enabled',
      )
        ? true
        : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

const kiali = <T>(path: string): Promise<T> => {
  if (obs === undefined) throw new Error('Kiali did not start (see beforeAll)');
  return obs.kiali<T>(path);
};

interface GraphNode {
  data: { id: string; workload?: string; namespace?: string; nodeType?: string };
}
interface GraphEdge {
  data: {
    source: string;
    target: string;
    isMTLS?: string;
    traffic?: { protocol?: string; rates?: Record<string, string> };
  };
}

describe('upstream Kiali against the ambient mesh on a local cluster', () => {
  beforeAll(async () => {
    const kialiBinary = await ensureKiali(l => {
      console.log(l);
    });
    ({ cluster } = await startMeshCluster({ name: 'kiali97', slot: 97, nodes: 2 }));
    const c = cluster;
    await createAppNamespace(c, NS, ['echo', 'client']);
    await createEchoService(c, NS);
    await c.client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: POLICY, namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'echo' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/client`] } }] }],
      },
    });
    await c.client.create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment('echo', 'node-1', { name: 'echo', image: ECHO_IMAGE, ports: [{ containerPort: 8080 }] }),
    );
    await enrolled(c, 'echo');
    // A new connection per request (6 s apart, longer than the echo server's keep-alive), so the
    // graph's TCP edge is fed all along.
    await c.client.create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment('client', 'node-0', {
        name: 'client',
        image: 'ambient-mesh/load-client:dev',
        args: [`http://echo.${NS}.svc.cluster.local/`, '--forever', '--interval-ms', '6000'],
      }),
    );
    await enrolled(c, 'client');

    scratch = mkdtempSync(join(tmpdir(), 'kiali97-'));
    obs = new HostObservability(scratch, c.layout.apiserverAddress);
    const groups = await exposeScrapeTargets(c.client, [MESH_NAMESPACE]);
    expect(groups.map(g => g.labels.app).sort()).toEqual(['istiod', 'ztunnel', 'ztunnel']);
    obs.writeTargets(groups);
    await obs.startPrometheus();
    const istiod = groups.find(g => g.labels.app === 'istiod')!;
    await obs.startKiali(kialiBinary, {
      kubeconfig: await kialiKubeconfig(
        c.client,
        MESH_NAMESPACE,
        c.kubeconfig,
        join(scratch, 'kiali-kubeconfig'),
      ),
      istiodVersionUrl: `http://${istiod.targets[0]}/version`,
      istioNamespace: MESH_NAMESPACE,
    });
  }, 900_000);

  afterAll(async () => {
    await obs?.stop();
    await cluster?.stop();
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
  }, 180_000);

  it('the control plane is Healthy and Kiali reads its version from istiod', async () => {
    // Kiali lists each istiod pod it reached (port-forward to /ready) and every component that is
    // not Healthy: istiod alone, Healthy, and nothing else. A port-forward may fail once on a loaded
    // machine, so the answer is waited for.
    type Component = { name: string; status: string; is_core: boolean };
    const healthy = (list: Component[]): boolean =>
      list.length > 0 && list.every(c => /^istiod-/.test(c.name) && c.status === 'Healthy');
    const components = await waitFor(
      'Kiali to report the control plane Healthy',
      async () => {
        const list = await kiali<Component[]>('/api/istio/status');
        if (!healthy(list)) throw new Error(`not Healthy: ${JSON.stringify(list)}`);
        return list;
      },
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    expect(components.length).toBeGreaterThan(0);
    for (const comp of components) {
      expect(comp.name).toMatch(/^istiod-/);
      expect(comp.status).toBe('Healthy');
    }
    const status = await kiali<{
      status: Record<string, string>;
      externalServices: { name: string; version?: string }[];
    }>('/api/status');
    expect(status.status['Mesh version']).toBe(appVersion('istiod'));
    expect(status.externalServices.find(s => s.name === 'Istio')?.version).toBe(appVersion('istiod'));
  }, 120_000);

  it('the namespace, its workloads and its Service are ambient', async () => {
    // Kiali's per-token namespace list may hold only the istio namespace for a while
    // (docs/compatibility.md), so the namespace is waited for.
    const ns = await waitFor(
      `Kiali to list namespace ${NS}`,
      async () =>
        (await kiali<{ name: string; isAmbient: boolean }[]>('/api/namespaces')).find(n => n.name === NS),
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(ns.isAmbient).toBe(true);
    const { workloads } = await kiali<{
      workloads: { name: string; istioAmbient: boolean; istioSidecar: boolean; type: string }[];
    }>(`/api/namespaces/${NS}/workloads`);
    expect(workloads.map(w => [w.name, w.type, w.istioAmbient, w.istioSidecar]).sort()).toEqual([
      ['client', 'Deployment', true, false],
      ['echo', 'Deployment', true, false],
    ]);
    const { services } = await kiali<{
      services: { name: string; istioAmbient: boolean; istioSidecar: boolean }[];
    }>(`/api/namespaces/${NS}/services?onlyDefinitions=false`);
    expect(services.find(s => s.name === 'echo')).toMatchObject({ istioAmbient: true, istioSidecar: false });
  }, 120_000);

  it('the graph shows a client→echo TCP edge, all mTLS, with a positive rate', async () => {
    const edge = await waitFor(
      'a client→echo edge with TCP traffic and its mTLS share in the namespace graph',
      async () => {
        const g = await kiali<{ elements: { nodes?: GraphNode[]; edges?: GraphEdge[] } }>(
          `/api/namespaces/graph?namespaces=${NS}&graphType=workload&duration=60s`,
        );
        const byId = new Map((g.elements.nodes ?? []).map(n => [n.data.id, n.data]));
        return (g.elements.edges ?? []).find(
          e =>
            byId.get(e.data.source)?.workload === 'client' &&
            byId.get(e.data.target)?.workload === 'echo' &&
            Number(e.data.traffic?.rates?.tcp ?? 0) > 0 &&
            // The mTLS share comes from the destination ztunnel's series (reporter="destination"),
            // which may reach a rate one scrape after the source's: wait for both.
            e.data.isMTLS !== undefined,
        )?.data;
      },
      { timeoutMs: 90_000, intervalMs: 2000 },
    );
    expect(edge.traffic?.protocol).toBe('tcp');
    expect(edge.isMTLS).toBe('100');
    expect(Number(edge.traffic?.rates?.tcp)).toBeGreaterThan(0);
  }, 120_000);

  it('our AuthorizationPolicy is listed in the Istio config', async () => {
    const list = await waitFor(
      `Kiali to list AuthorizationPolicy ${NS}/${POLICY}`,
      async () => {
        const r = await kiali<{ authorizationPolicies: { metadata: { name: string; namespace: string } }[] }>(
          `/api/namespaces/${NS}/istio?objects=authorizationpolicies`,
        );
        return r.authorizationPolicies.length > 0 ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(list.authorizationPolicies.map(p => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
      `${NS}/${POLICY}`,
    ]);
  }, 120_000);

  it('the mesh graph answers with our istiod and the ambient namespace', async () => {
    const infra = await waitFor(
      'the mesh graph to show istiod',
      async () => {
        const g = await kiali<{
          elements: { nodes: { data: { infraType: string; infraName: string; namespace: string } }[] };
        }>('/api/mesh/graph');
        const names = g.elements.nodes.map(n => `${n.data.infraType}:${n.data.infraName}`);
        return names.includes('istiod:istiod') ? names : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    expect(infra).toContain('istiod:istiod');
    expect(infra).toContain(`namespace:${NS}`);
    expect(infra).toContain('metricStore:Prometheus');
  }, 120_000);

  it("Kiali's log view parses our ztunnel's lines: upstream's text layout, level and time", async () => {
    const c = cluster!;
    const [z] = await ztunnelPods(c.client, c.layout);
    expect(z).toBeDefined();
    interface LogEntry {
      message: string;
      severity: string;
      timestampUnix: number;
    }
    const entries = await waitFor(
      `Kiali to return log lines of ztunnel ${z!.name}`,
      async () => {
        const r = await kiali<{ entries: LogEntry[] | null }>(
          `/api/namespaces/${MESH_NAMESPACE}/pods/${z!.name}/logs?container=istio-proxy&maxLines=200`,
        );
        return (r.entries ?? []).length > 0 ? r.entries! : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    for (const e of entries) expect(e.timestampUnix).toBeGreaterThan(0);
    // `<time>\t<level>\t<component>\t<message>[\t<fields>]`, as upstream ztunnel writes it.
    const info = entries.filter(e =>
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\tinfo\t[^\t]+\t\S/.test(e.message),
    );
    expect(info.length, JSON.stringify(entries.slice(0, 5))).toBeGreaterThan(0);
    // Kiali takes the severity from the first level word anywhere in the line (an info line whose
    // fields say "error" is tagged ERROR), so only some info lines need to read as INFO.
    expect(info.some(e => e.severity === 'INFO')).toBe(true);
  }, 120_000);

  it("Kiali reaches our ztunnel's /config_dump through its port-forward", async () => {
    // Kiali 1.82 reads port 15000's /config_dump of any pod as an Envoy dump; decoding a ztunnel's
    // (the ztunnel tab) came with Kiali 2.x, which the Go module proxy does not serve
    // (docs/compatibility.md). Our dump's fields against Kiali 2.x's types: apps/ztunnel's
    // kiali-compat.test.ts. Here: Kiali fetched it and parsed it as JSON without an error.
    const c = cluster!;
    const [z] = await ztunnelPods(c.client, c.layout);
    const dump = await waitFor(
      `Kiali to fetch the /config_dump of ztunnel ${z!.name}`,
      () => kiali<{ config_dump?: unknown }>(`/api/namespaces/${MESH_NAMESPACE}/pods/${z!.name}/config_dump`),
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    expect(dump).toHaveProperty('config_dump');
  }, 120_000);
});
