/**
 * The console in a real browser: Debian's Chromium driven by playwright-core (no browser download),
 * against the console server with a recorded cluster snapshot and recorded Prometheus answers. It
 * asserts on the page's DOM (badges, rows, graph edges' protocol and colour), never on pixels, and
 * saves a screenshot of each view under reports/screenshots.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build as viteBuild } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, silentLogger } from '@ambient-mesh/runtime';
import { build, type Bound } from '../app.ts';
import { loadConfig } from '../config.ts';
import { manyWorkloads, sampleSnapshot } from '../testing/fixtures.ts';
import {
  fixedSource,
  recordedLogs,
  recordedPrometheus,
  recordedSyncz,
  recordedTracing,
  recordedZtunnelDump,
  unreachablePrometheus,
} from '../testing/sources.ts';

/** Debian's chromium package; CHROMIUM_PATH overrides. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const APP_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOTS = join(APP_ROOT, 'reports', 'screenshots');
const WAIT = { timeout: 15_000 };

describe('console in Chromium (recorded data)', () => {
  const web = mkdtempSync(join(tmpdir(), 'console-web-'));
  let browser: Browser | undefined;
  let page: Page;
  let app: Bound;
  let down: Bound | undefined;
  let started: Bound | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`no Chromium at ${CHROMIUM}: run npm run setup (tools/install-deps.d/chromium.sh)`);
    mkdirSync(SHOTS, { recursive: true });
    await viteBuild({
      configFile: join(APP_ROOT, 'vite.config.ts'),
      build: { outDir: web, emptyOutDir: true },
      logLevel: 'error',
    });
    const config = loadConfig({ CONSOLE_LISTEN_ADDRESS: '127.0.0.1:0', CONSOLE_WEB_ROOT: web });
    const platform = () => createPlatform({ component: 'console', logger: silentLogger() });
    const snapshot = manyWorkloads(sampleSnapshot(), 1000);
    app = started = await build(config, {
      platform: platform(),
      source: fixedSource(snapshot),
      prometheus: recordedPrometheus(),
      readLog: recordedLogs(),
      readZtunnelDump: recordedZtunnelDump(),
      readSyncz: recordedSyncz(),
      tracing: recordedTracing(),
    });
    const unreachable = unreachablePrometheus();
    const downApp = await build(config, {
      platform: platform(),
      source: fixedSource(snapshot),
      prometheus: unreachable,
      readSyncz: () => Promise.reject(new Error('connection refused')),
    });
    down = downApp;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await started?.shutdown();
    await down?.shutdown();
    rmSync(web, { recursive: true, force: true });
  });

  it('overview: the control plane and ambient namespaces carry the Ambient badge', async () => {
    await page.goto(new URL('/overview', app.url).href);
    const cp = page.getByTestId('control-plane');
    await cp.getByTestId('ambient-badge').waitFor(WAIT);
    await expect.poll(() => cp.textContent(), WAIT).toContain('ztunnels: 2');
    await expect
      .poll(() => page.getByTestId('namespace-sample').getByTestId('ambient-badge').count(), WAIT)
      .toBe(1);
    await expect
      .poll(() => page.getByTestId('namespace-legacy').getByTestId('ambient-badge').count(), WAIT)
      .toBe(0);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  });

  it('workloads: L4 and L7 badges, and the link to the waypoint', async () => {
    await page.goto(new URL('/workloads?namespace=sample', app.url).href);
    const echo = page.getByTestId('workload-echo');
    await echo.waitFor(WAIT);
    await expect.poll(() => echo.getByTestId('mode-badge').getAttribute('data-mode'), WAIT).toBe('L7');
    await expect.poll(() => echo.getByTestId('waypoint-link').textContent(), WAIT).toBe('sample/waypoint');
    expect(
      await page.getByTestId('workload-client').getByTestId('mode-badge').getAttribute('data-mode'),
    ).toBe('L4');
    await page.screenshot({ path: join(SHOTS, 'workloads.png') });
  });

  it('workloads: 1000 rows are virtualised and the last one scrolls into view', async () => {
    await page.goto(new URL('/workloads?namespace=load', app.url).href);
    const table = page.getByTestId('workloads');
    await page.getByTestId('workload-w-0000').waitFor(WAIT);
    await expect.poll(() => table.getAttribute('data-count'), WAIT).toBe('1000');
    await expect.poll(() => page.locator('[data-testid^="workload-w-"]').count(), WAIT).toBeLessThan(100);
    await page.getByTestId('workloads-scroller').evaluate(el => {
      el.scrollTop = el.scrollHeight;
    });
    await page.getByTestId('workload-w-0999').waitFor(WAIT);
  });

  it('graph: a blue TCP edge and a green HTTP edge from client to echo, with rates and mTLS', async () => {
    await page.goto(new URL('/graph?namespaces=sample', app.url).href);
    const tcp = page.locator(
      '[data-testid="graph-edge"][data-protocol="tcp"][data-source="sample/client"][data-target="sample/echo"]',
    );
    await tcp.waitFor(WAIT);
    await expect.poll(() => tcp.getAttribute('data-color'), WAIT).toBe('#0066cc');
    expect(Number(await tcp.getAttribute('data-rate'))).toBeGreaterThan(0);
    await expect.poll(() => tcp.getAttribute('data-mtls'), WAIT).toBe('true');
    await expect.poll(() => tcp.locator('line').getAttribute('stroke'), WAIT).toBe('#0066cc');
    const http = page.locator(
      '[data-testid="graph-edge"][data-protocol="http"][data-source="sample/client"][data-target="sample/echo"]',
    );
    // 5 % of the recorded requests failed: degraded (orange), as Kiali colours it.
    await expect.poll(() => http.getAttribute('data-color'), WAIT).toBe('#ec7a08');
    await expect.poll(() => http.textContent(), WAIT).toContain('mTLS · 10.00 rps');
    expect(
      await page.locator('[data-testid="graph-node"][data-id="sample/echo"]').getAttribute('data-mode'),
    ).toBe('L7');
    await expect.poll(() => page.getByTestId('metrics-unavailable').count(), WAIT).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph.png') });
  });

  it('graph: the traffic filter keeps only TCP (ztunnel) or HTTP (waypoint) edges, and namespaces add and drop nodes', async () => {
    await page.goto(new URL('/graph?namespaces=sample', app.url).href);
    const edges = (protocol: string) =>
      page.locator(`[data-testid="graph-edge"][data-protocol="${protocol}"]`);
    await edges('http').first().waitFor(WAIT);
    await expect.poll(() => edges('tcp').count(), WAIT).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'TCP (ztunnel, L4)' }).click();
    await page.locator('[data-testid="graph"][data-traffic="tcp"]').waitFor(WAIT);
    await edges('tcp').first().waitFor(WAIT);
    // The topology redraws after the new data arrives: wait for the filtered edges to go.
    await expect.poll(() => edges('http').count(), WAIT).toBe(0);
    await page.getByRole('button', { name: 'HTTP (waypoint, L7)' }).click();
    await page.locator('[data-testid="graph"][data-traffic="http"]').waitFor(WAIT);
    await edges('http').first().waitFor(WAIT);
    // The topology redraws after the new data arrives: wait for the filtered edges to go.
    await expect.poll(() => edges('tcp').count(), WAIT).toBe(0);
    // Nodes stay whatever the filter: it hides traffic, not workloads.
    await expect
      .poll(() => page.locator('[data-testid="graph-node"][data-id="sample/client"]').count(), WAIT)
      .toBe(1);
    await page.screenshot({ path: join(SHOTS, 'graph-http-only.png') });
    await page.getByRole('button', { name: 'All traffic' }).click();
    await page.locator('[data-testid="graph"][data-traffic="all"]').waitFor(WAIT);
    // By namespace: adding legacy draws its workloads, dropping sample removes sample's (but
    // the ends of edges into legacy).
    await page.getByLabel('legacy', { exact: true }).check();
    await page
      .locator('[data-testid="graph-node"][data-id="legacy/db"]')
      .waitFor({ state: 'attached', ...WAIT });
    await page.getByLabel('sample', { exact: true }).uncheck();
    await page
      .locator('[data-testid="graph-node"][data-id="sample/echo"]')
      .waitFor({ state: 'detached', ...WAIT });
    // sample/client stays as the end of its edge to legacy's db.
    await expect
      .poll(() => page.locator('[data-testid="graph-node"][data-id="legacy/db"]').count(), WAIT)
      .toBe(1);
  });

  it('graph: clicking an edge explains it: the reporting proxy and the PromQL behind it', async () => {
    await page.goto(new URL('/graph?namespaces=sample', app.url).href);
    const edge = (protocol: string) =>
      page.locator(
        `[data-testid="graph-edge"][data-protocol="${protocol}"][data-source="sample/client"][data-target="sample/echo"]`,
      );
    await edge('tcp').waitFor(WAIT);
    await edge('tcp').dispatchEvent('click');
    const panel = page.getByTestId('edge-explain');
    await panel.waitFor(WAIT);
    await expect.poll(() => panel.getAttribute('data-component'), WAIT).toBe('ztunnel');
    await expect.poll(() => panel.getAttribute('data-reporter'), WAIT).toBe('destination');
    await expect.poll(() => panel.getByTestId('edge-pods').textContent(), WAIT).toContain('ztunnel-b');
    await expect
      .poll(() => panel.getByTestId('edge-promql').first().textContent(), WAIT)
      .toBe(
        'sum(rate(istio_tcp_sent_bytes_total{reporter="destination",source_workload_namespace="sample",source_workload="client",destination_workload_namespace="sample",destination_workload="echo"}[1m]))',
      );
    await expect.poll(() => edge('tcp').getAttribute('data-selected'), WAIT).toBe('true');
    await page.screenshot({ path: join(SHOTS, 'graph-edge-explain.png') });
    await edge('http').dispatchEvent('click');
    await page.locator('[data-testid="edge-explain"][data-component="waypoint"]').waitFor(WAIT);
    await expect
      .poll(() => page.getByTestId('edge-promql').first().textContent(), WAIT)
      .toContain('istio_requests_total{reporter="waypoint"');
    await expect
      .poll(() => page.getByTestId('edge-pods').textContent(), WAIT)
      .toContain('waypoint-7d9f8b6c5-x1');
  });

  it("graph: a clicked edge lists the AuthorizationPolicies that apply to it and ztunnel's verdict", async () => {
    await page.goto(new URL('/graph?namespaces=sample', app.url).href);
    const edge = page.locator(
      '[data-testid="graph-edge"][data-protocol="tcp"][data-source="sample/client"][data-target="sample/echo"]',
    );
    await edge.waitFor(WAIT);
    await edge.dispatchEvent('click');
    // The connection reaches echo from its waypoint, whose identity l4-only does not allow.
    const policies = page.locator('[data-testid="edge-policies"][data-verdict="DENY"]');
    await policies.waitFor(WAIT);
    await expect.poll(() => policies.getByTestId('edge-verdict').textContent(), WAIT).toBe('DENY');
    await expect
      .poll(() => policies.textContent(), WAIT)
      .toContain('spiffe://cluster.local/ns/sample/sa/waypoint');
    const names = async (testId: string) =>
      policies
        .getByTestId(testId)
        .evaluateAll(els => els.map(e => `${e.dataset.action} ${e.dataset.policy}`));
    // sample's STRICT PeerAuthentication, converted by istiod: the waypoint has an identity.
    await expect
      .poll(() => names('edge-policy-l4'), WAIT)
      .toEqual(['ALLOW sample/l4-only', 'DENY istio-system/istio_converted_static_strict']);
    const mtls = policies.getByTestId('edge-mtls');
    await expect.poll(() => mtls.getAttribute('data-strict'), WAIT).toBe('true');
    await expect.poll(() => mtls.getAttribute('data-plaintext'), WAIT).toBe('false');
    await expect.poll(() => names('edge-policy-l7'), WAIT).toEqual(['ALLOW sample/echo-get-only']);
    await expect.poll(() => names('edge-policy-not-applied'), WAIT).toEqual(['ALLOW sample/bad-when']);
    // The waypoint's L7 verdict for a request shape: GET / is allowed, POST is not.
    const l7 = policies.locator('[data-testid="edge-l7-verdict"][data-waypoint="sample/waypoint"]');
    await l7.waitFor(WAIT);
    await expect.poll(() => l7.getAttribute('data-verdict'), WAIT).toBe('ALLOW');
    await expect
      .poll(() => policies.locator('[data-testid="edge-policy-l7"]').getAttribute('data-matches'), WAIT)
      .toBe('true');
    await page.screenshot({ path: join(SHOTS, 'graph-edge-policies.png') });
    await page.getByLabel('request method').fill('POST');
    await page.getByLabel('request path').fill('/orders');
    await page.getByLabel('request header').fill('x-user: alice');
    await page.getByRole('button', { name: 'Evaluate' }).click();
    const denied = page.locator('[data-testid="edge-l7-verdict"][data-verdict="DENY"]');
    await denied.waitFor(WAIT);
    await expect
      .poll(() => denied.getByTestId('edge-l7-request').textContent(), WAIT)
      .toContain('POST echo.sample.svc.cluster.local/orders x-user: alice');
    await expect
      .poll(() => page.getByTestId('edge-policies').getAttribute('data-overall'), WAIT)
      .toBe('DENY');
    await expect
      .poll(() => page.locator('[data-testid="edge-policy-l7"]').getAttribute('data-matches'), WAIT)
      .toBe('false');
    await page.screenshot({ path: join(SHOTS, 'graph-edge-l7-verdict.png') });
  });

  it('graph: the waypoint view groups workloads by the waypoint serving them, with the waypoint shown', async () => {
    await page.goto(new URL('/graph?namespaces=sample', app.url).href);
    await page.locator('[data-testid="graph-node"][data-id="sample/echo"]').waitFor(WAIT);
    await expect.poll(() => page.getByTestId('waypoint-group').count(), WAIT).toBe(0);
    await page.getByLabel('Show waypoints').check();
    await page.getByLabel('Waypoint view').check();
    const group = page.locator('[data-testid="waypoint-group"][data-waypoint="sample/waypoint"]');
    await group.waitFor(WAIT);
    await expect.poll(() => group.getAttribute('data-members'), WAIT).toBe('sample/echo');
    // The group's box holds echo and the waypoint's own node; the client is outside.
    const inGroup = page.locator('g[data-type="waypoint-group"][data-id="waypoint-group:sample/waypoint"]');
    await inGroup.locator('[data-testid="graph-node"][data-id="sample/waypoint"]').waitFor(WAIT);
    const members: string[] = await inGroup
      .locator('[data-testid="graph-node"]')
      .evaluateAll(els => els.map(e => `${e.dataset.id}`));
    expect(members.sort()).toEqual(['sample/echo', 'sample/waypoint']);
    await page.screenshot({ path: join(SHOTS, 'graph-waypoint-view.png') });
    await page.getByLabel('Waypoint view').uncheck();
    await group.waitFor({ state: 'detached', ...WAIT });
  });

  it('graph: 1,000 workloads are laid out in a grid (no Dagre), and drawn', async () => {
    await page.goto(new URL('/graph?namespaces=load', app.url).href);
    await page.locator('[data-testid="graph"][data-layout="Grid"][data-nodes="1000"]').waitFor(WAIT);
    await page
      .locator('[data-testid="graph-node"][data-id="load/w-0999"]')
      .waitFor({ state: 'attached', ...WAIT });
    await expect.poll(() => page.getByTestId('grid-layout').count(), WAIT).toBe(1);
    await expect.poll(() => page.getByTestId('graph-failed').count(), WAIT).toBe(0);
  });

  it('graph: Prometheus down shows "Metrics unavailable" and still the workloads', async () => {
    await page.goto(new URL('/graph?namespaces=sample', down!.url).href);
    const alert = page.getByTestId('metrics-unavailable');
    await alert.waitFor(WAIT);
    await expect.poll(() => alert.textContent(), WAIT).toContain('cannot reach Prometheus');
    await page.locator('[data-testid="graph-node"][data-id="sample/client"]').waitFor(WAIT);
    await expect.poll(() => page.getByTestId('graph-edge').count(), WAIT).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph-metrics-unavailable.png') });
  });

  it('Istio config: validation warnings on broken config', async () => {
    await page.goto(new URL('/istio', app.url).href);
    await page.locator('[data-testid="validation"][data-code="KIA1317"]').waitFor(WAIT);
    const row = page.getByTestId('config-AuthorizationPolicy-sample-client-paths');
    await expect.poll(() => row.textContent(), WAIT).toContain('KIA1317');
    await expect
      .poll(() => page.locator('[data-testid="validation"][data-code="KIA1313"]').count(), WAIT)
      .toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'istio-config.png'), fullPage: true });
  });

  it('Istio config: a malformed policy is shown with its error', async () => {
    await page.goto(new URL('/istio', app.url).href);
    const row = page.getByTestId('config-AuthorizationPolicy-sample-bad-when');
    await row.getByTestId('config-error').waitFor(WAIT);
    const detail = page.locator(
      '[data-testid="config-error-detail"][data-object="AuthorizationPolicy/sample/bad-when"]',
    );
    await expect.poll(() => detail.textContent(), WAIT).toContain('spec.rules[0].when[0].key');
    await expect.poll(() => page.getByTestId('config-error').count(), WAIT).toBe(1);
  });

  it('waypoints: the waypoint with its enrolled services and workloads, labelled by', async () => {
    await page.goto(new URL('/workloads?namespace=sample', app.url).href);
    await page.getByTestId('workload-echo').getByRole('link', { name: 'sample/waypoint' }).click();
    const detail = page.locator('[data-testid="waypoint-detail"][data-waypoint="sample/waypoint"]');
    await detail.waitFor(WAIT);
    await expect
      .poll(() => detail.getByTestId('waypoint-programmed').getAttribute('data-status'), WAIT)
      .toBe('True');
    const svc = detail.getByTestId('enrolled-service-echo');
    await svc.waitFor(WAIT);
    await expect.poll(() => svc.getAttribute('data-labelled-by'), WAIT).toBe('service');
    // Its proxy's xDS sync state from istiod's /debug/syncz: RDS sent but not ACKed yet.
    const proxy = detail.locator('[data-testid="proxy-sync"][data-pod="waypoint-7d9f8b6c5-x1"]');
    await proxy.waitFor(WAIT);
    await expect.poll(() => proxy.getAttribute('data-connected'), WAIT).toBe('true');
    expect(
      await proxy
        .getByTestId('proxy-sync-type')
        .evaluateAll((els: { getAttribute(name: string): string | null }[]) =>
          els.map(e => `${e.getAttribute('data-type')}:${e.getAttribute('data-state')}`),
        ),
    ).toEqual(['CDS:SYNCED', 'LDS:SYNCED', 'EDS:SYNCED', 'RDS:STALE']);
    await page.screenshot({ path: join(SHOTS, 'waypoint.png') });
    await detail.getByRole('tab', { name: /Enrolled workloads/ }).click();
    await detail.getByTestId('enrolled-workload-echo').waitFor(WAIT);
  });

  it('waypoints: without istiod the sync state says why, the rest of the page stays', async () => {
    await page.goto(new URL('/waypoints?namespace=sample&name=waypoint', down!.url).href);
    const detail = page.locator('[data-testid="waypoint-detail"][data-waypoint="sample/waypoint"]');
    await detail.getByTestId('sync-error').waitFor(WAIT);
    await expect.poll(() => detail.getByTestId('sync-error').textContent(), WAIT).toContain('/debug/syncz');
    await expect
      .poll(() => detail.getByTestId('proxy-sync').getAttribute('data-connected'), WAIT)
      .toBe('false');
    await detail.getByTestId('enrolled-service-echo').waitFor(WAIT);
  });

  it("workload traces: the waypoint's spans, each end linked to its workload page", async () => {
    await page.goto(new URL('/workloads?namespace=sample&workload=echo', app.url).href);
    await page.getByRole('tab', { name: 'Traces' }).click();
    const spans = page.locator('[data-testid="traces"][data-count="2"]');
    await spans.waitFor(WAIT);
    expect(
      await page
        .getByTestId('span')
        .evaluateAll((els: { getAttribute(name: string): string | null }[]) =>
          els.map(e => `${e.getAttribute('data-span')}:${e.getAttribute('data-error')}`),
        ),
    ).toEqual(['1a2b3c4d5e6f7081:true', '00f067aa0ba902b7:false']);
    await expect
      .poll(() => page.getByTestId('span-source').first().getAttribute('data-workload'), WAIT)
      .toBe('sample/client');
    await expect
      .poll(() => page.getByTestId('span-destination').first().getAttribute('data-workload'), WAIT)
      .toBe('sample/echo');
    await page.screenshot({ path: join(SHOTS, 'workload-traces.png') });
    // The caller's link leads to the client's page, whose Traces tab shows the same calls.
    await page.getByTestId('span-source').first().click();
    await page.waitForURL(/workload=client/, WAIT);
    await page.getByRole('tab', { name: 'Traces' }).click();
    await page.locator('[data-testid="traces"][data-count="2"]').waitFor(WAIT);
    // Without a tracing backend the tab says so.
    await page.goto(new URL('/workloads?namespace=sample&workload=echo', down!.url).href);
    await page.getByRole('tab', { name: 'Traces' }).click();
    const off = page.getByTestId('tracing-unavailable');
    await off.waitFor(WAIT);
    await expect.poll(() => off.getAttribute('data-code'), WAIT).toBe('TRACING_NOT_CONFIGURED');
  });

  it('workload logs: app, ztunnel and waypoint lines merged by time, with toggles', async () => {
    await page.goto(new URL('/workloads?namespace=sample&workload=echo', app.url).href);
    const line = page.getByTestId('log-line');
    await line.first().waitFor(WAIT);
    expect(
      await line.evaluateAll((els: { getAttribute(name: string): string | null }[]) =>
        els.map(e => e.getAttribute('data-source')),
      ),
    ).toEqual(['app', 'ztunnel', 'waypoint', 'app']);
    await expect.poll(() => page.getByText('Cannot read the log of ztunnel ztunnel-b').count(), WAIT).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'logs.png') });
    await page.getByLabel('ztunnel').uncheck();
    await page.locator('[data-testid="logs"][data-count="3"]').waitFor(WAIT);
    await expect
      .poll(() => page.locator('[data-testid="log-line"][data-source="ztunnel"]').count(), WAIT)
      .toBe(0);
  });

  it('workload metrics: L7 request, error and latency series from the waypoint, L4 TCP series from ztunnel', async () => {
    await page.goto(new URL('/workloads?namespace=sample&workload=echo', app.url).href);
    await page.getByRole('tab', { name: 'Metrics' }).click();
    const series = (chart: string, layer: string) =>
      page.locator(
        `[data-testid="metric-chart"][data-chart="${chart}"] [data-testid="metric-series"][data-layer="${layer}"]`,
      );
    await series('request_rate', 'L7').waitFor(WAIT);
    expect(Number(await series('request_rate', 'L7').getAttribute('data-points'))).toBeGreaterThan(0);
    await expect.poll(() => series('request_rate', 'L4').count(), WAIT).toBe(0);
    await expect.poll(() => series('latency', 'L7').count(), WAIT).toBe(3);
    await expect.poll(() => series('error_rate', 'L7').textContent(), WAIT).toMatch(/now \d+\.\d%/);
    const l4 = series('tcp_sent', 'L4');
    await expect.poll(() => l4.getAttribute('data-reporter'), WAIT).toBe('destination');
    expect(Number(await l4.getAttribute('data-points'))).toBeGreaterThan(0);
    await expect.poll(() => series('tcp_sent', 'L7').textContent(), WAIT).toContain('no data');
    await expect
      .poll(() => page.locator('[data-testid="metric-chart"][data-chart="tcp_sent"] polyline').count(), WAIT)
      .toBe(1);
    await page.screenshot({ path: join(SHOTS, 'workload-metrics.png'), fullPage: true });
    await page.getByRole('button', { name: 'Outbound' }).click();
    await page.locator('[data-testid="metrics"][data-direction="outbound"]').waitFor(WAIT);
    await page
      .locator(
        '[data-testid="metric-chart"][data-chart="tcp_sent"] [data-testid="metric-series"][data-layer="L4"][data-reporter="source"]',
      )
      .waitFor(WAIT);
  });

  it('service metrics: the service page charts its inbound L4 and L7 series', async () => {
    await page.goto(new URL('/services?namespace=sample', app.url).href);
    await page.getByTestId('service-echo').getByRole('link', { name: 'echo' }).click();
    await page.locator('[data-testid="service-detail"][data-service="sample/echo"]').waitFor(WAIT);
    const chart = page.locator('[data-testid="metric-chart"][data-chart="tcp_received"]');
    await chart.locator('[data-testid="metric-series"][data-layer="L4"]').waitFor(WAIT);
    expect(
      Number(
        await page
          .locator(
            '[data-testid="metric-chart"][data-chart="request_rate"] [data-testid="metric-series"][data-layer="L7"]',
          )
          .getAttribute('data-points'),
      ),
    ).toBeGreaterThan(0);
    await expect
      .poll(() => page.getByTestId('service-detail').textContent(), WAIT)
      .toContain('waypoint: sample/waypoint');
    await page.screenshot({ path: join(SHOTS, 'service-metrics.png') });
  });

  it('metrics: Prometheus down shows "Metrics unavailable" on the charts, not a blank page', async () => {
    await page.goto(new URL('/services?namespace=sample&name=echo', down!.url).href);
    const alert = page.getByTestId('metrics-unavailable');
    await alert.waitFor(WAIT);
    await expect.poll(() => alert.textContent(), WAIT).toContain('cannot reach Prometheus');
    await expect.poll(() => page.getByTestId('metric-chart').count(), WAIT).toBe(5);
  });

  it("ztunnel detail: reached from the workload's pod, its config dump's workloads, services, policies and certificates, filtered", async () => {
    await page.goto(new URL('/workloads?namespace=sample&workload=echo', app.url).href);
    const pod = page.getByTestId('pod-echo-7d9f8b6c5-x1');
    await pod.waitFor(WAIT);
    await expect.poll(() => pod.getAttribute('data-protocol'), WAIT).toBe('HBONE');
    await pod.getByTestId('ztunnel-link').click();
    const detail = page.locator('[data-testid="ztunnel-detail"][data-ztunnel="istio-system/ztunnel-a"]');
    await detail.waitFor(WAIT);
    const workloads = page.getByTestId('ztunnel-workloads');
    await workloads.waitFor(WAIT);
    await expect.poll(() => workloads.getAttribute('data-count'), WAIT).toBe('3');
    await expect.poll(() => page.getByTestId('ztunnel-node').getAttribute('data-node'), WAIT).toBe('node-1');
    await page.screenshot({ path: join(SHOTS, 'ztunnel.png') });
    // Filters run in the backend: namespace sample and this node only leave the client.
    await page.getByLabel('filter namespace').selectOption('sample');
    await page.getByLabel('Only workloads on this node').check();
    await page.locator('[data-testid="ztunnel-workloads"][data-count="1"]').waitFor(WAIT);
    await expect
      .poll(() => page.getByTestId('ztunnel-workloads-row').getAttribute('data-key'), WAIT)
      .toBe('sample/client-7c9d8-abcde');
    await page.getByRole('tab', { name: /Services/ }).click();
    await page.locator('[data-testid="ztunnel-services-row"][data-key="sample/echo"]').waitFor(WAIT);
    expect(
      await page.locator('[data-testid="ztunnel-services-row"][data-key="sample/echo"]').textContent(),
    ).toContain('10.96.20.30');
    await page.getByRole('tab', { name: /Policies/ }).click();
    await page.locator('[data-testid="ztunnel-policies-row"][data-key="sample/deny-client"]').waitFor(WAIT);
    await page.getByRole('tab', { name: /Certificates/ }).click();
    const cert = page.locator(
      '[data-testid="ztunnel-certificates-row"][data-key="spiffe://cluster.local/ns/sample/sa/client"]',
    );
    await cert.waitFor(WAIT);
    await expect.poll(() => cert.textContent(), WAIT).toContain('305419896');
    await page.screenshot({ path: join(SHOTS, 'ztunnel-certificates.png') });
    await page.getByPlaceholder('Name, address or identity').fill('sa/echo');
    await page.locator('[data-testid="ztunnel-certificates"][data-count="1"]').waitFor(WAIT);
    await page
      .locator(
        '[data-testid="ztunnel-certificates-row"][data-key="spiffe://cluster.local/ns/sample/sa/echo"]',
      )
      .waitFor(WAIT);
    // The Metrics tab: the ztunnel's own connections and bytes, as client and as server.
    await page.getByRole('tab', { name: 'Metrics' }).click();
    const opened = page.locator(
      '[data-testid="metric-chart"][data-chart="tcp_opened"] [data-testid="metric-series"][data-reporter="source"]',
    );
    await opened.waitFor(WAIT);
    await expect.poll(() => opened.getAttribute('data-layer'), WAIT).toBe('L4');
    expect(Number(await opened.getAttribute('data-points'))).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('metric-chart').count(), WAIT).toBe(6);
    // Its process: resident memory and CPU.
    for (const chart of ['memory', 'cpu']) {
      const series = page.locator(
        `[data-testid="metric-chart"][data-chart="${chart}"] [data-testid="metric-series"]`,
      );
      await series.waitFor(WAIT);
      expect(Number(await series.getAttribute('data-points'))).toBeGreaterThan(0);
    }
    expect(
      await page
        .locator('[data-testid="metric-chart"][data-chart="memory"] [data-testid="metric-series"]')
        .textContent(),
    ).toContain('MiB');
    // The process charts sit below the traffic ones: in view for the screenshot.
    await page.locator('[data-testid="metric-chart"][data-chart="memory"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'ztunnel-metrics.png') });
  }, 60_000);

  it("ztunnel detail: a ztunnel that does not answer says so, and the overview links every node's ztunnel", async () => {
    await page.goto(new URL('/overview', app.url).href);
    await page.getByTestId('control-plane').getByRole('link', { name: 'node-2' }).click();
    const alert = page.getByTestId('ztunnel-error');
    await alert.waitFor(WAIT);
    await expect.poll(() => alert.textContent(), WAIT).toContain('connection refused');
    await expect.poll(() => alert.textContent(), WAIT).toContain('pods/portforward');
  });
});
