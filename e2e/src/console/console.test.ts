// Cluster tier: the console against a live mesh. One 2-node local cluster for the file, with the
// mesh, Debian's Prometheus and client -> echo traffic; the console runs in this process (its
// informers on the cluster's apiserver, its graph on Prometheus) and Debian's Chromium, driven by
// playwright-core, checks the page's DOM: ambient badges and the blue L4 edge with a non-zero rate.
//
// Prometheus runs in node-0's network namespace (the root netns has no route to pod IPs, by design)
// and listens on the node's address, which the host reaches. It scrapes the pods by Istio's
// conventions: the targets file is written from the pods' prometheus.io/{scrape,port,path}
// annotations (Debian's Prometheus 2.42 is used as file_sd, like a kubernetes_sd would).
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { build as buildConsole, loadConfig, type Bound } from '@ambient-mesh/console';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build as viteBuild } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { ManagedProcess } from '../managed-process.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import {
  createAppNamespace,
  createEchoService,
  echoPod,
  httpCode,
  readyPod,
  type MeshPod,
} from '../mesh/workloads.ts';

const NS = 'con-sample';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', '..', 'reports', 'screenshots', 'console');
const WAIT = { timeout: 20_000 };

let cluster: Cluster;
let prometheus: ManagedProcess | undefined;
let consoleApp: Bound | undefined;
let browser: Browser | undefined;
let page: Page;
let client: MeshPod;
const web = mkdtempSync(join(tmpdir(), 'console-e2e-web-'));
const started = Date.now();

/** file_sd targets of every running pod that asks to be scraped. */
async function writeTargets(file: string): Promise<number> {
  const pods = (await cluster.client.list<V1Pod>('/api/v1/pods')).items;
  const groups = [];
  for (const p of pods) {
    const a = p.metadata?.annotations ?? {};
    if (a['prometheus.io/scrape'] !== 'true' || p.status?.podIP === undefined || p.status.phase !== 'Running')
      continue;
    groups.push({
      targets: [`${p.status.podIP}:${a['prometheus.io/port'] ?? '15020'}`],
      labels: {
        __metrics_path__: a['prometheus.io/path'] ?? '/metrics',
        namespace: p.metadata?.namespace ?? '',
        pod: p.metadata?.name ?? '',
      },
    });
  }
  // Written whole then renamed: Prometheus never reads half a file.
  writeFileSync(`${file}.tmp`, JSON.stringify(groups));
  renameSync(`${file}.tmp`, file);
  return groups.length;
}

async function startPrometheus(): Promise<string> {
  const node = cluster.nodes[0]!;
  const dir = join(cluster.layout.stateDir, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const targets = join(dir, 'targets.json');
  expect(await writeTargets(targets)).toBeGreaterThanOrEqual(2);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 2s, evaluation_interval: 2s }',
      'scrape_configs:',
      '  - job_name: pods',
      '    honor_labels: true',
      '    file_sd_configs: [{ files: ["' + targets + '"], refresh_interval: 2s }]',
      '',
    ].join('\n'),
  );
  const url = `http://${node.address}:9090`;
  prometheus = new ManagedProcess({
    name: 'prometheus',
    logFile: join(cluster.layout.stateDir, 'logs', 'prometheus.log'),
    argv: [
      'ip',
      'netns',
      'exec',
      node.netns,
      'prometheus',
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${node.address}:9090`,
    ],
  });
  await waitFor(
    'Prometheus ready',
    async () => {
      const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      return r?.ok === true ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  return url;
}

describe('the console on a live ambient mesh', () => {
  beforeAll(async () => {
    ({ cluster } = await startMeshCluster({ name: 'con', slot: 82, nodes: 2 }));
    await createAppNamespace(cluster, NS, ['echo', 'client']);
    await createEchoService(cluster, NS);
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('echo', {
        namespace: NS,
        node: 'node-1',
        serviceAccount: 'echo',
        labels: { app: 'echo' },
        containerPorts: [8080],
      }),
    );
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } }),
    );
    client = await readyPod(cluster, NS, 'client');
    await readyPod(cluster, NS, 'echo');
    const promUrl = await startPrometheus();

    const appDir = dirname(createRequire(import.meta.url).resolve('@ambient-mesh/console/package.json'));
    await viteBuild({
      configFile: join(appDir, 'vite.config.ts'),
      build: { outDir: web, emptyOutDir: true },
      logLevel: 'error',
    });
    consoleApp = await buildConsole(
      loadConfig({
        CONSOLE_LISTEN_ADDRESS: '127.0.0.1:0',
        CONSOLE_WEB_ROOT: web,
        KUBECONFIG: cluster.kubeconfig,
        PROMETHEUS_URL: promUrl,
        LOG_LEVEL: 'warn',
      }),
    );
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    console.log(`[console] setup took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await consoleApp?.shutdown();
    await prometheus?.stop();
    // Unset when the mesh did not come up (startMeshCluster stops what it started).
    await (cluster as Cluster | undefined)?.stop();
    rmSync(web, { recursive: true, force: true });
    console.log(`[console] wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('shows the Ambient badge on the control plane, the namespace and the workloads (L4)', async () => {
    const url = new URL('/overview', consoleApp!.url).href;
    await waitFor(
      'the console to list the cluster',
      async () => ((await fetch(new URL('/healthz/ready', url))).ok ? true : undefined),
      { timeoutMs: 30_000 },
    );
    await page.goto(url);
    await page.getByTestId('control-plane').getByTestId('ambient-badge').waitFor(WAIT);
    expect(await page.getByTestId(`namespace-${NS}`).getByTestId('ambient-badge').count()).toBe(1);
    expect(await page.getByTestId('namespace-default').getByTestId('ambient-badge').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    await page.goto(new URL(`/workloads?namespace=${NS}`, url).href);
    await page.getByTestId('workload-echo').waitFor(WAIT);
    expect(await page.getByTestId('workload-echo').getByTestId('mode-badge').getAttribute('data-mode')).toBe(
      'L4',
    );
    expect(
      await page.getByTestId('workload-client').getByTestId('mode-badge').getAttribute('data-mode'),
    ).toBe('L4');
    await page.screenshot({ path: join(SHOTS, 'workloads.png') });
  }, 90_000);

  it('draws the blue L4 edge from client to echo with a non-zero rate from Prometheus', async () => {
    // Traffic until Prometheus has two scrapes apart with the counters grown (a rate), bounded.
    const edge = await waitFor(
      'a tcp edge client -> echo in the graph API',
      async () => {
        expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/`)).toBe(200);
        const res = await fetch(new URL(`/api/graph?namespaces=${NS}`, consoleApp!.url));
        const view = (await res.json()) as {
          metricsUnavailable?: unknown;
          edges: { protocol: string; source: string; target: string; bytesPerSecond: number }[];
        };
        expect(view.metricsUnavailable).toBeUndefined();
        return view.edges.find(
          e =>
            e.protocol === 'tcp' &&
            e.source.endsWith('/client') &&
            e.target.endsWith('/echo') &&
            e.bytesPerSecond > 0,
        );
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    await page.goto(new URL(`/graph?namespaces=${NS}`, consoleApp!.url).href);
    const drawn = page.locator(
      `[data-testid="graph-edge"][data-protocol="tcp"][data-source="${edge.source}"][data-target="${edge.target}"]`,
    );
    await drawn.waitFor(WAIT);
    expect(await drawn.getAttribute('data-color')).toBe('#0066cc');
    expect(Number(await drawn.getAttribute('data-rate'))).toBeGreaterThan(0);
    expect(await drawn.getAttribute('data-mtls')).toBe('true');
    expect(await page.getByTestId('metrics-unavailable').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph.png') });
  }, 150_000);
});
