// Cluster tier: the console against a live mesh. One 2-node local cluster for the file, with the
// mesh, the in-cluster Prometheus and client -> echo traffic; the console runs in this process (its
// informers on the cluster's apiserver, its graph on Prometheus, pod logs through the apiserver) and
// Debian's Chromium, driven by playwright-core, checks the page's DOM. The cases run in order on the
// one mesh: ambient badges; the blue L4 edge; the merged log view (an app line and a ztunnel line of
// one connection); the ztunnel page of echo's node from its live config dump (port-forward); echo's
// L4 metric chart; validation warnings and a malformed policy; then a waypoint: the green L7 edge
// beside the L4 one, the traffic filter and edge explain, the waypoint node, the waypoint view with
// its enrolled services, and the echo Service's L7 request chart. Each view's
// screenshot goes to e2e/reports/screenshots/console.
//
// Prometheus is the in-cluster one, deploy/prometheus installed by `installAddons` of the install
// package (on the local cluster the prom/prometheus image is Debian's Prometheus with a pod
// discovery wrapper, e2e/src/workloads/prometheus.ts); the test and the console reach it through
// a pod port-forward, since the host has no route to pod IPs.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { build as buildConsole, loadConfig, type Bound } from '@ambient-mesh/console';
import { MESH_NAMESPACE, addonSelector, installAddons } from '@ambient-mesh/install';
import { PortForwarder, loadKubeConfig, type PortForwarding } from '@ambient-mesh/kube';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build as viteBuild } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { GATEWAY_PATH, readyWaypoint, waypointGateway } from '../mesh/waypoint.ts';
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
let prometheusForward: PortForwarding | undefined;
let consoleApp: Bound | undefined;
let browser: Browser | undefined;
let page: Page;
let client: MeshPod;
let echo: MeshPod;
const web = mkdtempSync(join(tmpdir(), 'console-e2e-web-'));
const started = Date.now();

/**
 * deploy/prometheus through `installAddons` (as `npm run up` installs it), reached from this
 * process through a pod port-forward to its 9090 (`kubectl -n istio-system port-forward`): the
 * host has no route to pod IPs. It discovers the pods to scrape itself (their prometheus.io/*
 * annotations), the waypoint too once it runs.
 */
async function startPrometheus(): Promise<string> {
  await installAddons(
    { client: cluster.client },
    {
      addons: ['prometheus'],
      timeoutMs: 180_000,
      progress: l => {
        console.log(`[prometheus] ${l}`);
      },
    },
  );
  const pod = (
    await cluster.client.list<V1Pod>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
      labelSelector: addonSelector('prometheus'),
    })
  ).items.find(p => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined);
  expect(pod?.metadata?.name).toBeDefined();
  prometheusForward = await new PortForwarder(loadKubeConfig({ file: cluster.kubeconfig })).listen(
    { namespace: MESH_NAMESPACE, name: pod!.metadata!.name! },
    9090,
    { address: '127.0.0.1', port: 0 },
  );
  const url = `http://127.0.0.1:${prometheusForward.port}`;
  // Ready, and scraping ztunnel (its targets come from the pods API every 2 s).
  await waitFor(
    "Prometheus scraping the ztunnels' metrics",
    async () => {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('up{app="ztunnel"} == 1')}`, {
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
      if (r?.ok !== true) return undefined;
      const body = (await r.json()) as { data?: { result?: unknown[] } };
      return (body.data?.result?.length ?? 0) >= 2 ? true : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 1000 },
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
        env: { LOG_REQUESTS: 'true' },
      }),
    );
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } }),
    );
    client = await readyPod(cluster, NS, 'client');
    echo = await readyPod(cluster, NS, 'echo');
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
    await prometheusForward?.close();
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
  it("shows the ztunnel of echo's node, reached from echo's pod, with echo in its live config dump", async () => {
    await page.goto(new URL(`/workloads?namespace=${NS}&workload=echo`, consoleApp!.url).href);
    const pod = page.getByTestId('pod-echo');
    await pod.waitFor(WAIT);
    expect(await pod.getAttribute('data-protocol')).toBe('HBONE');
    await pod.getByTestId('ztunnel-link').click();
    await page.getByTestId('ztunnel-detail').waitFor(WAIT);
    expect(await page.getByTestId('ztunnel-node').getAttribute('data-node')).toBe('node-1');
    // Read through a port-forward to the ztunnel's loopback admin port.
    await page.locator(`[data-testid="ztunnel-workloads-row"][data-key="${NS}/echo"]`).waitFor(WAIT);
    expect(await page.getByTestId('ztunnel-error').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'ztunnel.png') });
    // This node only, in the sample namespace: echo, not the client on node-0.
    await page.getByLabel('filter namespace').selectOption(NS);
    await page.getByLabel('Only workloads on this node').check();
    await page.locator('[data-testid="ztunnel-workloads"][data-count="1"]').waitFor(WAIT);
    expect(await page.getByTestId('ztunnel-workloads-row').getAttribute('data-key')).toBe(`${NS}/echo`);
    await page.getByRole('tab', { name: /Services/ }).click();
    await page.locator(`[data-testid="ztunnel-services-row"][data-key="${NS}/echo"]`).waitFor(WAIT);
    await page.getByRole('tab', { name: /Certificates/ }).click();
    await page
      .locator(`[data-testid="ztunnel-certificates-row"][data-key="spiffe://cluster.local/ns/${NS}/sa/echo"]`)
      .waitFor(WAIT);
    // Its Metrics tab: the connections it accepted for echo (as server), by its pod label.
    await page.getByRole('tab', { name: 'Metrics' }).click();
    const accepted = page.locator(
      '[data-testid="metric-chart"][data-chart="tcp_opened"] [data-testid="metric-series"][data-reporter="destination"]:not([data-points="0"])',
    );
    await accepted.waitFor(WAIT);
    expect(Number(await accepted.getAttribute('data-points'))).toBeGreaterThan(0);
    // Its process: resident memory and CPU, from the ztunnel's own metrics port.
    for (const chart of ['memory', 'cpu']) {
      const series = page.locator(
        `[data-testid="metric-chart"][data-chart="${chart}"] [data-testid="metric-series"]:not([data-points="0"])`,
      );
      await series.waitFor(WAIT);
      expect(Number(await series.getAttribute('data-points'))).toBeGreaterThan(0);
    }
    // The process charts sit below the traffic ones: in view for the screenshot.
    await page.locator('[data-testid="metric-chart"][data-chart="memory"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'ztunnel-metrics.png') });
  }, 90_000);

  it("charts echo's inbound L4 bytes from ztunnel (reporter=destination) on its Metrics tab", async () => {
    type View = {
      charts: { id: string; series: { layer: string; reporter: string; points: unknown[] }[] }[];
    };
    await waitFor(
      'L4 points in the metrics API',
      async () => {
        expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/`)).toBe(200);
        const res = await fetch(
          new URL(`/api/metrics?kind=workload&namespace=${NS}&name=echo&direction=inbound`, consoleApp!.url),
        );
        const view = (await res.json()) as View;
        const l4 = view.charts.find(c => c.id === 'tcp_sent')?.series.find(x => x.layer === 'L4');
        return l4 !== undefined && l4.points.length > 0 ? l4 : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    await page.goto(new URL(`/workloads?namespace=${NS}&workload=echo`, consoleApp!.url).href);
    await page.getByRole('tab', { name: 'Metrics' }).click();
    const l4 = page.locator(
      '[data-testid="metric-chart"][data-chart="tcp_sent"] [data-testid="metric-series"][data-layer="L4"]',
    );
    await l4.waitFor(WAIT);
    expect(await l4.getAttribute('data-reporter')).toBe('destination');
    expect(Number(await l4.getAttribute('data-points'))).toBeGreaterThan(0);
    expect(await page.getByTestId('metrics-unavailable').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'workload-metrics.png') });
  }, 90_000);

  it("merges the app line and the ztunnel line of one connection in the workload's Logs tab", async () => {
    const sent = Date.now();
    const nonce = `console-log-${sent.toString(36)}`;
    expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/${nonce}`)).toBe(200);
    type Line = { source: string; text: string; time: string };
    // The app logs the request with the peer's address; the ztunnels log the connection when it closes.
    const { app, ztunnel } = await waitFor(
      'the app and ztunnel lines of the request in /api/logs',
      async () => {
        const res = await fetch(new URL(`/api/logs?namespace=${NS}&workload=echo`, consoleApp!.url));
        const view = (await res.json()) as { lines: Line[] };
        const appLine = view.lines.find(l => l.source === 'app' && l.text.includes(nonce));
        if (appLine === undefined) return undefined;
        // Same connection: the client's address on both sides, the ztunnel line written (when the
        // connection closed) after the request was sent and within seconds of the app's line; the
        // client sends nothing else to echo meanwhile.
        const near = (l: Line): boolean =>
          Date.parse(l.time) >= sent - 1000 &&
          Math.abs(Date.parse(l.time) - Date.parse(appLine.time)) < 10_000;
        const z = view.lines.find(
          l =>
            l.source === 'ztunnel' && l.text.includes(`${client.ip}:`) && l.text.includes('echo') && near(l),
        );
        return z === undefined ? undefined : { app: appLine, ztunnel: z };
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    // Node's http server prints an IPv4 peer as IPv4-mapped IPv6 (`::ffff:10.244.0.4`).
    expect(app.text).toMatch(new RegExp(`from (::ffff:)?${client.ip.replaceAll('.', '\\.')}:\\d+$`));
    console.log(`[console] app: ${app.text}\n[console] ztunnel: ${ztunnel.text}`);

    await page.goto(new URL(`/workloads?namespace=${NS}&workload=echo`, consoleApp!.url).href);
    await page.locator('[data-testid="log-line"][data-source="app"]', { hasText: nonce }).waitFor(WAIT);
    await page
      .locator('[data-testid="log-line"][data-source="ztunnel"]', { hasText: `${client.ip}:` })
      .first()
      .waitFor(WAIT);
    // The top of the view: the first lines say it all, and the file stays small.
    await page.screenshot({ path: join(SHOTS, 'logs.png'), clip: { x: 0, y: 0, width: 1400, height: 560 } });
  }, 120_000);

  it('shows a validation warning on broken config, and a malformed policy with its error', async () => {
    const path = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;
    // Both select nothing, so they cannot disturb the traffic of the other cases.
    await cluster.client.create(path, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'paths-without-waypoint', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'nothing-here' } },
        rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
      },
    });
    await cluster.client.create(path, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'bad-condition', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'nothing-here' } },
        rules: [{ when: [{ key: 'no.such.attribute', values: ['x'] }] }],
      },
    });
    await page.goto(new URL('/istio', consoleApp!.url).href);
    const warning = page.locator('[data-testid="validation"][data-code="KIA1317"]', {
      hasText: `${NS}/paths-without-waypoint`,
    });
    await warning.waitFor({ timeout: 40_000 });
    expect(await warning.textContent()).toContain('ztunnel enforces only L4');
    const row = page.getByTestId(`config-AuthorizationPolicy-${NS}-bad-condition`);
    await row.getByTestId('config-error').waitFor(WAIT);
    const detail = page.locator(
      `[data-testid="config-error-detail"][data-object="AuthorizationPolicy/${NS}/bad-condition"]`,
    );
    expect(await detail.textContent()).toContain('spec.rules[0].when[0].key');
    await page.screenshot({ path: join(SHOTS, 'istio-config.png'), fullPage: true });
  }, 90_000);

  it('after a waypoint is applied: the green L7 edge beside the blue L4 one, the waypoint node, and the waypoint view with its enrolled services', async () => {
    await cluster.client.create(GATEWAY_PATH(NS), waypointGateway(NS));
    await cluster.client.mergePatch(`/api/v1/namespaces/${NS}/services/echo`, {
      metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } },
    });
    const wp = await readyWaypoint(cluster.client, cluster.layout, NS);
    console.log(`[console] waypoint ${wp.name} on ${wp.node}`);

    // Through the Service: the waypoint (L7). To the pod's address: past the waypoint (L4 only).
    type Edge = {
      protocol: string;
      source: string;
      target: string;
      requestsPerSecond: number;
      bytesPerSecond: number;
    };
    const edges = await waitFor(
      'an http and a tcp edge client -> echo in the graph API',
      async () => {
        expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/`)).toBe(200);
        expect(await httpCode(client, `http://${echo.ip}:8080/`)).toBe(200);
        const res = await fetch(new URL(`/api/graph?namespaces=${NS}`, consoleApp!.url));
        const view = (await res.json()) as { edges: Edge[] };
        const between = view.edges.filter(e => e.source.endsWith('/client') && e.target.endsWith('/echo'));
        const http = between.find(e => e.protocol === 'http' && e.requestsPerSecond > 0);
        const tcp = between.find(e => e.protocol === 'tcp' && e.bytesPerSecond > 0);
        return http !== undefined && tcp !== undefined ? { http, tcp } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    await page.goto(new URL(`/graph?namespaces=${NS}`, consoleApp!.url).href);
    const edge = (protocol: string) =>
      page.locator(
        `[data-testid="graph-edge"][data-protocol="${protocol}"][data-source="${edges.http.source}"][data-target="${edges.http.target}"]`,
      );
    await edge('http').waitFor(WAIT);
    expect(await edge('http').getAttribute('data-color')).toBe('#3e8635');
    expect(Number(await edge('http').getAttribute('data-rate'))).toBeGreaterThan(0);
    expect(await edge('tcp').getAttribute('data-color')).toBe('#0066cc');
    expect(await page.locator('[data-testid="graph-node"][data-type="waypoint"]').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph-l7.png') });
    // The traffic filter: HTTP keeps the waypoint's edge only; the edge explains itself.
    await page.getByRole('button', { name: 'HTTP (waypoint, L7)' }).click();
    await page.locator('[data-testid="graph"][data-traffic="http"]').waitFor(WAIT);
    await edge('http').waitFor(WAIT);
    expect(await page.locator('[data-testid="graph-edge"][data-protocol="tcp"]').count()).toBe(0);
    await edge('http').dispatchEvent('click');
    const explain = page.locator('[data-testid="edge-explain"][data-component="waypoint"]');
    await explain.waitFor(WAIT);
    expect(await explain.getAttribute('data-reporter')).toBe('waypoint');
    expect(await explain.getByTestId('edge-promql').first().textContent()).toContain(
      'istio_requests_total{reporter="waypoint"',
    );
    // Prometheus's `pod` target label names the waypoint pod that reported the requests.
    expect(await explain.getByTestId('edge-pods').textContent()).toContain(wp.name);
    await page.screenshot({ path: join(SHOTS, 'graph-edge-explain.png') });
    await page.getByRole('button', { name: 'TCP (ztunnel, L4)' }).click();
    await page.locator('[data-testid="graph"][data-traffic="tcp"]').waitFor(WAIT);
    await edge('tcp').waitFor(WAIT);
    expect(await page.locator('[data-testid="graph-edge"][data-protocol="http"]').count()).toBe(0);
    await edge('tcp').dispatchEvent('click');
    await page.locator('[data-testid="edge-explain"][data-component="ztunnel"]').waitFor(WAIT);
    await page.getByRole('button', { name: 'All traffic' }).click();
    await page.locator('[data-testid="graph"][data-traffic="all"]').waitFor(WAIT);
    await page.getByLabel('Show waypoints').check();
    await page
      .locator(`[data-testid="graph-node"][data-type="waypoint"][data-id="${NS}/waypoint"]`)
      .waitFor(WAIT);
    await page.screenshot({ path: join(SHOTS, 'graph-waypoints.png') });

    await page.goto(new URL(`/waypoints?namespace=${NS}&name=waypoint`, consoleApp!.url).href);
    const detail = page.locator(`[data-testid="waypoint-detail"][data-waypoint="${NS}/waypoint"]`);
    await detail.waitFor(WAIT);
    expect(await detail.getByTestId('waypoint-programmed').getAttribute('data-status')).toBe('True');
    // Its proxy's xDS sync state from istiod's /debug/syncz (as istioctl proxy-status): every type
    // it subscribed to is SYNCED once it ACKed the last push.
    const proxy = detail.locator(`[data-testid="proxy-sync"][data-pod="${wp.name}"][data-connected="true"]`);
    await proxy.waitFor(WAIT);
    const cells = proxy.getByTestId('proxy-sync-type');
    await waitFor(
      'every xDS type of the waypoint SYNCED',
      async () => {
        const states = await cells.evaluateAll((els: { getAttribute(name: string): string | null }[]) =>
          els.map(e => e.getAttribute('data-state')),
        );
        return states.length > 0 && states.every(x => x === 'SYNCED' || x === 'IGNORED') ? states : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 1000 },
    );
    expect(
      await proxy.locator('[data-testid="proxy-sync-type"][data-type="LDS"]').getAttribute('data-state'),
    ).toBe('SYNCED');
    const svc = detail.getByTestId('enrolled-service-echo');
    await svc.waitFor(WAIT);
    expect(await svc.getAttribute('data-labelled-by')).toBe('service');
    await page.screenshot({ path: join(SHOTS, 'waypoint.png') });
    await detail.getByRole('tab', { name: /Enrolled workloads/ }).click();
    expect(await detail.getByTestId('enrolled-workload-echo').getAttribute('data-labelled-by')).toBe(
      'service',
    );

    // The echo Service's page charts the waypoint's L7 requests.
    await waitFor(
      'L7 request points for the echo Service in the metrics API',
      async () => {
        expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/`)).toBe(200);
        const res = await fetch(
          new URL(`/api/metrics?kind=service&namespace=${NS}&name=echo`, consoleApp!.url),
        );
        const view = (await res.json()) as {
          charts: { id: string; series: { layer: string; points: unknown[] }[] }[];
        };
        const l7 = view.charts.find(c => c.id === 'request_rate')?.series.find(x => x.layer === 'L7');
        return l7 !== undefined && l7.points.length > 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    await page.goto(new URL(`/services?namespace=${NS}&name=echo`, consoleApp!.url).href);
    const l7 = page.locator(
      '[data-testid="metric-chart"][data-chart="request_rate"] [data-testid="metric-series"][data-layer="L7"]',
    );
    await l7.waitFor(WAIT);
    expect(Number(await l7.getAttribute('data-points'))).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'service-metrics.png') });
  }, 420_000);

  it("explains an edge's verdict live: the waypoint's L7 rule for a request shape, as the waypoint enforces it, and PeerAuthentication STRICT against plaintext from outside the mesh", async () => {
    await cluster.client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-blocked', namespace: NS },
      spec: {
        action: 'DENY',
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        rules: [{ to: [{ operation: { paths: ['/blocked'] } }] }],
      },
    });
    await cluster.client.create(`/apis/security.istio.io/v1/namespaces/${NS}/peerauthentications`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: NS },
      spec: { mtls: { mode: 'STRICT' } },
    });
    // The real waypoint enforces the rule: /blocked is denied, / still passes.
    await waitFor(
      'the waypoint denying /blocked',
      async () =>
        (await httpCode(client, `http://echo.${NS}.svc.cluster.local/blocked`)) === 403 ? true : undefined,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(await httpCode(client, `http://echo.${NS}.svc.cluster.local/`)).toBe(200);

    // The console decides the same for the same request shape, naming the waypoint.
    const edgeId = { source: `${NS}/client`, target: `${NS}/echo` };
    await page.goto(new URL(`/graph?namespaces=${NS}&traffic=http`, consoleApp!.url).href);
    const edge = page.locator(
      `[data-testid="graph-edge"][data-protocol="http"][data-source="${edgeId.source}"][data-target="${edgeId.target}"]`,
    );
    await edge.waitFor(WAIT);
    await edge.dispatchEvent('click');
    const l7 = page.locator(`[data-testid="edge-l7-verdict"][data-waypoint="${NS}/waypoint"]`);
    await l7.waitFor(WAIT);
    expect(await l7.getAttribute('data-verdict')).toBe('ALLOW');
    // In-mesh client: STRICT holds, it connects with mTLS.
    const mtls = page.getByTestId('edge-mtls');
    await page.locator('[data-testid="edge-mtls"][data-strict="true"]').waitFor(WAIT);
    expect(await mtls.getAttribute('data-plaintext')).toBe('false');
    await page.getByLabel('request path').fill('/blocked');
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await page.locator(`[data-testid="edge-l7-verdict"][data-verdict="DENY"]`).waitFor(WAIT);
    const rule = page.locator(`[data-testid="edge-policy-l7"][data-policy="${NS}/deny-blocked"]`);
    expect(await rule.getAttribute('data-matches')).toBe('true');
    expect(await page.getByTestId('edge-policies').getAttribute('data-overall')).toBe('DENY');
    await page.screenshot({ path: join(SHOTS, 'graph-edge-l7-verdict.png'), fullPage: true });

    // Plaintext from outside the mesh (Prometheus, in istio-system): STRICT denies it at echo's ztunnel.
    const res = await fetch(
      new URL(
        `/api/graph/edge/policies?source=${MESH_NAMESPACE}/prometheus&target=${NS}/echo`,
        consoleApp!.url,
      ),
    );
    const outside = (await res.json()) as {
      verdict: string;
      decidingPolicy: string;
      mtls: { strict: boolean; plaintext: boolean };
    };
    expect(outside).toMatchObject({
      verdict: 'DENY',
      decidingPolicy: `${MESH_NAMESPACE}/istio_converted_static_strict`,
      mtls: { strict: true, plaintext: true },
    });
  }, 180_000);
});
