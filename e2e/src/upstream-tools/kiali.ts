/**
 * Upstream Kiali and Debian's Prometheus run as processes on the host, against a local cluster:
 *
 * - Kiali's server is built by tools/install-deps.d/kiali.sh (cached under
 *   ~/.cache/ambient-mesh/kiali/<version>; the script prints that folder last). It runs outside the
 *   cluster, as Kiali's own `remote_secret_path` mode allows: a kubeconfig holding the token of a
 *   `kiali` ServiceAccount, as upstream's Kiali would use in-cluster.
 * - Prometheus (tools/install-deps.d/prometheus.sh) is 2.42, which has no kubernetes_sd here; its
 *   targets come from a file_sd file written from the pods' `prometheus.io/scrape` and
 *   `prometheus.io/port` annotations, as upstream's `kubernetes-pods` job reads them.
 *
 * The root netns has no route to pod addresses (docs/local-cluster.md#network), so each scraped pod
 * is reached through a LoadBalancer Service of its own: no selector, one EndpointSlice with that
 * pod's address and annotated port. Both processes listen on the cluster's own host address
 * (10.211.<slot>.1), so files on other slots never collide.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod, V1PodList, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '@ambient-mesh/kube';
import { runBuildScript, waitFor } from '../exec.ts';
import { ManagedProcess } from '../managed-process.ts';

export const KIALI_VERSION = 'v1.82.0';
export const PROMETHEUS_PORT = 9090;
export const KIALI_PORT = 20001;
const KIALI_METRICS_PORT = 20002;

function installScript(name: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'tools', 'install-deps.d', name);
}

/** Runs kiali.sh (a no-op when cached) and returns the kiali binary's path. */
export async function ensureKiali(onProgress: (line: string) => void = () => undefined): Promise<string> {
  const dir = await runBuildScript(installScript('kiali.sh'), {
    progressPrefix: '[kiali]',
    onProgress,
    what: 'Kiali',
    needs: 'Go and the Go module proxy',
  });
  return join(dir, 'bin', 'kiali');
}

/** Where a pod asks to be scraped, from its `prometheus.io/*` annotations; undefined when it does not. */
export interface ScrapeRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly app: string;
  readonly ip: string;
  readonly port: number;
  readonly path: string;
}

/**
 * Reads upstream's pod annotations: `prometheus.io/scrape: "true"`, `prometheus.io/port` (required
 * here: there is no container-port fallback), `prometheus.io/path` (default `/metrics`). Pods that
 * are not Running or have no address are skipped, as kubernetes_sd would drop them.
 */
export function scrapeRequest(p: V1Pod): ScrapeRequest | undefined {
  const a = p.metadata?.annotations ?? {};
  const port = Number(a['prometheus.io/port']);
  const ip = p.status?.podIP;
  if (a['prometheus.io/scrape'] !== 'true' || !Number.isInteger(port) || port <= 0 || port > 65535)
    return undefined;
  if (p.status?.phase !== 'Running' || ip === undefined || ip === '') return undefined;
  return {
    namespace: p.metadata?.namespace ?? '',
    pod: p.metadata?.name ?? '',
    app: p.metadata?.labels?.app ?? '',
    ip,
    port,
    path: a['prometheus.io/path'] ?? '/metrics',
  };
}

/** One file_sd group: the reachable address and the labels upstream's kubernetes-pods job sets. */
export interface FileSdGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export function fileSdGroup(r: ScrapeRequest, address: string): FileSdGroup {
  return {
    targets: [address],
    labels: { __metrics_path__: r.path, namespace: r.namespace, pod: r.pod, app: r.app },
  };
}

/** Prometheus' configuration (JSON is YAML): one job over the file_sd file, scraped every 2 s. */
export function prometheusConfig(targetsFile: string): object {
  return {
    global: { scrape_interval: '2s', scrape_timeout: '2s', evaluation_interval: '2s' },
    scrape_configs: [
      {
        job_name: 'kubernetes-pods',
        file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }],
      },
    ],
  };
}

export interface KialiConfigOptions {
  readonly host: string;
  readonly kubeconfig: string;
  readonly staticDir: string;
  readonly prometheusUrl: string;
  /** istiod's `/version`, reachable from the host. */
  readonly istiodVersionUrl: string;
  readonly istioNamespace: string;
}

/**
 * Kiali's configuration: anonymous auth, every namespace, no Grafana or tracing, its API on
 * `host:20001/kiali`. The component list is the ambient control plane (istiod and ztunnel); Kiali's
 * default also lists the ingress and egress gateways, which an ambient install does not have.
 */
export function kialiConfig(o: KialiConfigOptions): object {
  return {
    istio_namespace: o.istioNamespace,
    auth: { strategy: 'anonymous' },
    deployment: {
      accessible_namespaces: ['**'],
      namespace: o.istioNamespace,
      instance_name: 'kiali',
      remote_secret_path: o.kubeconfig,
    },
    // Kiali 1.82 keeps a per-token namespace list that a single-namespace lookup (e.g. the istio
    // namespace, on every status call) seeds with that namespace alone; /api/namespaces then lists
    // only it until the entry expires. 2 s instead of the 10 s default keeps that short.
    kubernetes_config: { cache_token_namespace_duration: 2 },
    login_token: { signing_key: 'ambient-mesh-kiali-test-key-0001' },
    server: {
      address: o.host,
      port: KIALI_PORT,
      web_root: '/kiali',
      static_content_root_directory: o.staticDir,
      observability: { metrics: { enabled: false, port: KIALI_METRICS_PORT } },
    },
    external_services: {
      prometheus: { url: o.prometheusUrl },
      grafana: { enabled: false },
      tracing: { enabled: false },
      istio: {
        root_namespace: o.istioNamespace,
        url_service_version: o.istiodVersionUrl,
        component_status: {
          enabled: true,
          components: [
            { app_label: 'istiod', is_core: true, is_proxy: false, namespace: o.istioNamespace },
            { app_label: 'ztunnel', is_core: true, is_proxy: false, namespace: o.istioNamespace },
          ],
        },
      },
    },
  };
}

/** A kubeconfig with a bearer token (Kiali's remote-secret shape: one context, current). */
export function tokenKubeconfig(server: string, caData: string, token: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'Kubernetes', cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name: 'kiali', user: { token } }],
    contexts: [{ name: 'kiali', context: { cluster: 'Kubernetes', user: 'kiali' } }],
    'current-context': 'kiali',
  };
}

/**
 * The `kiali` ServiceAccount in `namespace` with read access to everything and port-forward to pods
 * (Kiali reaches istiod's `/ready` and `/debug/*` that way), as upstream's viewer-mode ClusterRole
 * does; returns a kubeconfig for it (a bound token good for an hour) written to `file`.
 */
export async function kialiKubeconfig(
  client: KubeClient,
  namespace: string,
  adminKubeconfig: string,
  file: string,
): Promise<string> {
  await client.ensure(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'kiali', namespace },
  });
  await client.ensure('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'kiali-viewer' },
    rules: [
      { apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'post'] },
    ],
  });
  await client.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'kiali-viewer' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kiali-viewer' },
    subjects: [{ kind: 'ServiceAccount', name: 'kiali', namespace }],
  });
  const tr = await client.create<{ status?: { token?: string } }>(
    `/api/v1/namespaces/${namespace}/serviceaccounts/kiali/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  const admin = JSON.parse(readFileSync(adminKubeconfig, 'utf8')) as {
    clusters?: { cluster?: { server?: string; 'certificate-authority-data'?: string } }[];
  };
  const cluster = admin.clusters?.[0]?.cluster;
  writeFileSync(
    file,
    JSON.stringify(
      tokenKubeconfig(
        cluster?.server ?? '',
        cluster?.['certificate-authority-data'] ?? '',
        tr.status?.token ?? '',
      ),
    ),
    { mode: 0o600 },
  );
  return file;
}

const SCRAPE_SERVICE_PREFIX = 'scrape-';

/**
 * Makes every pod that asks to be scraped reachable from the host: a selector-less LoadBalancer
 * Service (in the pod's namespace) plus an EndpointSlice with the pod's address. Returns the
 * file_sd groups with the LoadBalancer addresses. Services already made are reused.
 */
export async function exposeScrapeTargets(
  client: KubeClient,
  namespaces: readonly string[],
): Promise<FileSdGroup[]> {
  const requests: ScrapeRequest[] = [];
  for (const ns of namespaces) {
    const pods = await client.get<V1PodList>(`/api/v1/namespaces/${ns}/pods`);
    for (const p of pods.items) {
      const r = scrapeRequest(p);
      if (r !== undefined) requests.push(r);
    }
  }
  const groups: FileSdGroup[] = [];
  for (const r of requests) {
    const name = `${SCRAPE_SERVICE_PREFIX}${r.pod}`.slice(0, 63).replace(/-+$/, '');
    const base = `/api/v1/namespaces/${r.namespace}/services`;
    if (
      await client.ensure(base, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: r.namespace, labels: { 'ambient-mesh.test/scrape': 'true' } },
        spec: { type: 'LoadBalancer', ports: [{ name: 'metrics', port: r.port, targetPort: r.port }] },
      })
    ) {
      await client.create(`/apis/discovery.k8s.io/v1/namespaces/${r.namespace}/endpointslices`, {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name,
          namespace: r.namespace,
          labels: {
            'kubernetes.io/service-name': name,
            'endpointslice.kubernetes.io/managed-by': 'ambient-mesh-e2e',
          },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [r.ip], conditions: { ready: true } }],
        ports: [{ name: 'metrics', port: r.port, protocol: 'TCP' }],
      });
    }
    const ip = await waitFor(
      `a LoadBalancer address for ${r.namespace}/${name}`,
      async () => (await client.get<V1Service>(`${base}/${name}`)).status?.loadBalancer?.ingress?.[0]?.ip,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    groups.push(fileSdGroup(r, `${ip}:${r.port}`));
  }
  return groups;
}

/** Prometheus and Kiali as host processes; `stop()` ends both. */
export class HostObservability {
  readonly prometheusUrl: string;
  readonly kialiUrl: string;
  private readonly processes: ManagedProcess[] = [];
  private readonly targetsFile: string;
  private readonly dir: string;
  readonly host: string;

  constructor(dir: string, host: string) {
    this.dir = dir;
    this.host = host;
    mkdirSync(dir, { recursive: true });
    this.targetsFile = join(dir, 'targets.json');
    this.prometheusUrl = `http://${host}:${PROMETHEUS_PORT}`;
    this.kialiUrl = `http://${host}:${KIALI_PORT}/kiali`;
  }

  /** Replaces Prometheus' targets (file_sd re-reads the file within a second). */
  writeTargets(groups: readonly FileSdGroup[]): void {
    // Renamed into place, so Prometheus never reads half a file.
    writeFileSync(`${this.targetsFile}.tmp`, JSON.stringify(groups));
    renameSync(`${this.targetsFile}.tmp`, this.targetsFile);
  }

  async startPrometheus(binary = 'prometheus'): Promise<void> {
    if (!existsSync(this.targetsFile)) this.writeTargets([]);
    const configFile = join(this.dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(prometheusConfig(this.targetsFile)));
    const p = new ManagedProcess({
      name: 'prometheus',
      argv: [
        binary,
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(this.dir, 'prometheus-data')}`,
        `--web.listen-address=${this.host}:${PROMETHEUS_PORT}`,
        '--log.level=warn',
      ],
      logFile: join(this.dir, 'prometheus.log'),
    });
    this.processes.push(p);
    await this.waitHttp('Prometheus', `${this.prometheusUrl}/-/ready`, p);
  }

  async startKiali(
    binary: string,
    config: Omit<KialiConfigOptions, 'host' | 'staticDir' | 'prometheusUrl'>,
  ): Promise<void> {
    const staticDir = join(this.dir, 'kiali-console');
    mkdirSync(staticDir, { recursive: true });
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Kiali API only</title>\n');
    const configFile = join(this.dir, 'kiali.yaml');
    writeFileSync(
      configFile,
      JSON.stringify(
        kialiConfig({ ...config, host: this.host, staticDir, prometheusUrl: this.prometheusUrl }),
      ),
    );
    const p = new ManagedProcess({
      name: 'kiali',
      argv: [binary, `-config=${configFile}`],
      logFile: join(this.dir, 'kiali.log'),
    });
    this.processes.push(p);
    await this.waitHttp('Kiali', `${this.kialiUrl}/api/status`, p);
  }

  /** GET on Kiali's API; the parsed JSON, or an error naming the status and body. */
  async kiali<T>(path: string): Promise<T> {
    const res = await fetch(`${this.kialiUrl}${path}`, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`Kiali GET ${path}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  /** An instant PromQL query's result vector. */
  async promQuery(query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${this.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`, {
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as {
      data?: { result?: { metric: Record<string, string>; value: [number, string] }[] };
    };
    return body.data?.result ?? [];
  }

  async stop(): Promise<void> {
    for (const p of this.processes.reverse()) await p.stop();
  }

  private async waitHttp(what: string, url: string, p: ManagedProcess): Promise<void> {
    await waitFor(
      `${what} to answer ${url} (log: ${p.logFile})`,
      async () => {
        if (!p.running) throw new Error(`${what} exited (log: ${p.logFile})`);
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
        return res?.ok === true ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300, fatal: e => e instanceof Error && e.message.includes('exited') },
    );
  }
}
