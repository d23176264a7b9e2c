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
import type { PrometheusClient } from '../prometheus.ts';
import { manyWorkloads, sampleSnapshot } from '../testing/fixtures.ts';
import { fixedSource, recordedLogs, recordedPrometheus } from '../testing/sources.ts';

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
    });
    const unreachable: PrometheusClient = {
      query: () =>
        Promise.resolve({
          ok: false,
          code: 'METRICS_UNAVAILABLE',
          message: 'cannot reach Prometheus at http://127.0.0.1:1',
        }),
    };
    const downApp = await build(config, {
      platform: platform(),
      source: fixedSource(snapshot),
      prometheus: unreachable,
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
    expect(await cp.textContent()).toContain('ztunnels: 2');
    expect(await page.getByTestId('namespace-sample').getByTestId('ambient-badge').count()).toBe(1);
    expect(await page.getByTestId('namespace-legacy').getByTestId('ambient-badge').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  });

  it('workloads: L4 and L7 badges, and the link to the waypoint', async () => {
    await page.goto(new URL('/workloads?namespace=sample', app.url).href);
    const echo = page.getByTestId('workload-echo');
    await echo.waitFor(WAIT);
    expect(await echo.getByTestId('mode-badge').getAttribute('data-mode')).toBe('L7');
    expect(await echo.getByTestId('waypoint-link').textContent()).toBe('sample/waypoint');
    expect(
      await page.getByTestId('workload-client').getByTestId('mode-badge').getAttribute('data-mode'),
    ).toBe('L4');
    await page.screenshot({ path: join(SHOTS, 'workloads.png') });
  });

  it('workloads: 1000 rows are virtualised and the last one scrolls into view', async () => {
    await page.goto(new URL('/workloads?namespace=load', app.url).href);
    const table = page.getByTestId('workloads');
    await page.getByTestId('workload-w-0000').waitFor(WAIT);
    expect(await table.getAttribute('data-count')).toBe('1000');
    expect(await page.locator('[data-testid^="workload-w-"]').count()).toBeLessThan(100);
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
    expect(await tcp.getAttribute('data-color')).toBe('#0066cc');
    expect(Number(await tcp.getAttribute('data-rate'))).toBeGreaterThan(0);
    expect(await tcp.getAttribute('data-mtls')).toBe('true');
    expect(await tcp.locator('line').getAttribute('stroke')).toBe('#0066cc');
    const http = page.locator(
      '[data-testid="graph-edge"][data-protocol="http"][data-source="sample/client"][data-target="sample/echo"]',
    );
    // 5 % of the recorded requests failed: degraded (orange), as Kiali colours it.
    expect(await http.getAttribute('data-color')).toBe('#ec7a08');
    expect(await http.textContent()).toContain('mTLS · 10.00 rps');
    expect(
      await page.locator('[data-testid="graph-node"][data-id="sample/echo"]').getAttribute('data-mode'),
    ).toBe('L7');
    expect(await page.getByTestId('metrics-unavailable').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph.png') });
  });

  it('graph: 1,000 workloads are laid out in a grid (no Dagre), and drawn', async () => {
    await page.goto(new URL('/graph?namespaces=load', app.url).href);
    await page.locator('[data-testid="graph"][data-layout="Grid"][data-nodes="1000"]').waitFor(WAIT);
    await page
      .locator('[data-testid="graph-node"][data-id="load/w-0999"]')
      .waitFor({ state: 'attached', ...WAIT });
    expect(await page.getByTestId('grid-layout').count()).toBe(1);
    expect(await page.getByTestId('graph-failed').count()).toBe(0);
  });

  it('graph: Prometheus down shows "Metrics unavailable" and still the workloads', async () => {
    await page.goto(new URL('/graph?namespaces=sample', down!.url).href);
    const alert = page.getByTestId('metrics-unavailable');
    await alert.waitFor(WAIT);
    expect(await alert.textContent()).toContain('cannot reach Prometheus');
    await page.locator('[data-testid="graph-node"][data-id="sample/client"]').waitFor(WAIT);
    expect(await page.getByTestId('graph-edge').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'graph-metrics-unavailable.png') });
  });

  it('Istio config: validation warnings on broken config', async () => {
    await page.goto(new URL('/istio', app.url).href);
    await page.locator('[data-testid="validation"][data-code="KIA1317"]').waitFor(WAIT);
    const row = page.getByTestId('config-AuthorizationPolicy-sample-client-paths');
    expect(await row.textContent()).toContain('KIA1317');
    expect(await page.locator('[data-testid="validation"][data-code="KIA1313"]').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'istio-config.png'), fullPage: true });
  });

  it('Istio config: a malformed policy is shown with its error', async () => {
    await page.goto(new URL('/istio', app.url).href);
    const row = page.getByTestId('config-AuthorizationPolicy-sample-bad-when');
    await row.getByTestId('config-error').waitFor(WAIT);
    const detail = page.locator(
      '[data-testid="config-error-detail"][data-object="AuthorizationPolicy/sample/bad-when"]',
    );
    expect(await detail.textContent()).toContain('spec.rules[0].when[0].key');
    expect(await page.getByTestId('config-error').count()).toBe(1);
  });

  it('waypoints: the waypoint with its enrolled services and workloads, labelled by', async () => {
    await page.goto(new URL('/workloads?namespace=sample', app.url).href);
    await page.getByTestId('workload-echo').getByRole('link', { name: 'sample/waypoint' }).click();
    const detail = page.locator('[data-testid="waypoint-detail"][data-waypoint="sample/waypoint"]');
    await detail.waitFor(WAIT);
    expect(await detail.getByTestId('waypoint-programmed').getAttribute('data-status')).toBe('True');
    const svc = detail.getByTestId('enrolled-service-echo');
    await svc.waitFor(WAIT);
    expect(await svc.getAttribute('data-labelled-by')).toBe('service');
    await page.screenshot({ path: join(SHOTS, 'waypoint.png') });
    await detail.getByRole('tab', { name: /Enrolled workloads/ }).click();
    await detail.getByTestId('enrolled-workload-echo').waitFor(WAIT);
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
    expect(await page.getByText('Cannot read the log of ztunnel ztunnel-b').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'logs.png') });
    await page.getByLabel('ztunnel').uncheck();
    await page.locator('[data-testid="logs"][data-count="3"]').waitFor(WAIT);
    expect(await page.locator('[data-testid="log-line"][data-source="ztunnel"]').count()).toBe(0);
  });
});
