// The console's graph: API latency with 200 workloads and 1,000 edges, and first paint of the graph
// page in Debian's Chromium. The console runs in process on loopback with a fixed cluster snapshot
// and a Prometheus stand-in answering the same synthetic vectors every time (1,000 L4 edges, half of
// them with an L7 edge too), so the figures are the console's own work.
// Baselines in the same run: buildGraph alone on the same samples (the pure part of a request), and
// the overview page's first paint (the same bundle, no graph).
// Run: npx node --conditions=@ambient-mesh/source benchmarks/console/run.ts
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  build,
  buildGraph,
  loadConfig,
  workloadViews,
  type AppDeps,
  type MeshSnapshot,
  type PrometheusClient,
  type Sample,
} from '@ambient-mesh/console';
import { createPlatform, silentLogger } from '@ambient-mesh/runtime';
import { chromium } from 'playwright-core';
import { build as viteBuild } from 'vite';

const WORKLOADS = Number(process.env.BENCH_WORKLOADS ?? 200);
const EDGES = Number(process.env.BENCH_EDGES ?? 1000);
const ROUNDS = 50;
const PAINTS = 3;
const NS = 'bench';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const names = Array.from({ length: WORKLOADS }, (_, i) => `w-${String(i).padStart(3, '0')}`);
const snapshot: MeshSnapshot = {
  namespaces: [{ metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient' } } }],
  pods: names.map(name => ({
    metadata: { name, namespace: NS, labels: { app: name } },
    status: { phase: 'Running' },
  })),
  services: [],
  gateways: [],
  authorizationPolicies: [],
};

/** 1,000 distinct source -> destination pairs over the 200 workloads. */
const pairs: [string, string][] = [];
for (let i = 0; pairs.length < EDGES; i++) {
  const s = names[i % WORKLOADS]!;
  const d = names[(i * 7 + 1 + Math.floor(i / WORKLOADS)) % WORKLOADS]!;
  if (s !== d && !pairs.some(([a, b]) => a === s && b === d)) pairs.push([s, d]);
}
const labels = (s: string, d: string, extra: Record<string, string>) => ({
  source_workload_namespace: NS,
  source_workload: s,
  destination_service_namespace: NS,
  destination_service_name: d,
  destination_workload_namespace: NS,
  destination_workload: d,
  connection_security_policy: 'mutual_tls',
  ...extra,
});
const l4: Sample[] = pairs.flatMap(([s, d]) => [
  { labels: labels(s, d, { reporter: 'destination' }), value: 1000 },
  { labels: labels(s, d, { reporter: 'source' }), value: 1000 },
]);
const l7: Sample[] = pairs.slice(0, EDGES / 2).flatMap(([s, d]) => [
  { labels: labels(s, d, { response_code: '200' }), value: 10 },
  { labels: labels(s, d, { response_code: '503' }), value: 0.1 },
]);
const prometheus: PrometheusClient = {
  query: q => Promise.resolve({ ok: true, samples: q.includes('istio_requests_total') ? l7 : l4 }),
  queryRange: () => Promise.resolve({ ok: true, series: [] }),
};

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const ms = (n: number): string => `${n.toFixed(1)} ms`;

const web = mkdtempSync(join(tmpdir(), 'console-bench-web-'));
const appDir = dirname(createRequire(import.meta.url).resolve('@ambient-mesh/console/package.json'));
await viteBuild({
  configFile: join(appDir, 'vite.config.ts'),
  build: { outDir: web, emptyOutDir: true },
  logLevel: 'error',
});
const source: NonNullable<AppDeps['source']> = {
  snapshot: () => snapshot,
  synced: () => true,
  ready: Promise.resolve(),
  stop: () => Promise.resolve(),
};
const app = await build(loadConfig({ CONSOLE_LISTEN_ADDRESS: '127.0.0.1:0', CONSOLE_WEB_ROOT: web }), {
  platform: createPlatform({ component: 'console', logger: silentLogger() }),
  source,
  prometheus,
});
try {
  const graphUrl = new URL(`/api/graph?namespaces=${NS}`, app.url);
  const api: number[] = [];
  const pure: number[] = [];
  let edges = 0;
  for (let i = 0; i < ROUNDS + 5; i++) {
    let t = performance.now();
    const view = (await (await fetch(graphUrl)).json()) as { edges: unknown[] };
    const apiMs = performance.now() - t;
    t = performance.now();
    buildGraph({ namespaces: [NS], workloads: workloadViews(snapshot), l4: [...l4, ...l4], l7 });
    const pureMs = performance.now() - t;
    if (i >= 5) {
      api.push(apiMs);
      pure.push(pureMs);
    }
    edges = view.edges.length;
  }
  console.log(`| case | p50 | p90 | max |\n|---|---|---|---|`);
  console.log(
    `| GET /api/graph, ${WORKLOADS} workloads, ${edges} edges | ${ms(quantile(api, 0.5))} | ${ms(quantile(api, 0.9))} | ${ms(Math.max(...api))} |`,
  );
  console.log(
    `| baseline: buildGraph alone | ${ms(quantile(pure, 0.5))} | ${ms(quantile(pure, 0.9))} | ${ms(Math.max(...pure))} |`,
  );

  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run npm run setup`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    /** Navigation to the first `selector`; a page error or a failure panel is reported instead. */
    const paint = async (path: string, selector: string): Promise<number[] | string> => {
      const out: number[] = [];
      for (let i = 0; i < PAINTS; i++) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        const errors: string[] = [];
        page.on('pageerror', e => errors.push(e.message));
        const t = performance.now();
        await page.goto(new URL(path, app.url).href);
        await page
          .locator(`${selector}, [data-testid="graph-failed"]`)
          .first()
          .waitFor({ state: 'attached', timeout: 60_000 });
        const elapsed = performance.now() - t;
        const failed = (await page.getByTestId('graph-failed').count()) > 0;
        await page.close();
        if (failed || errors.length > 0) return `did not draw: ${errors[0] ?? 'graph-failed'}`;
        out.push(elapsed);
      }
      return out;
    };
    const row = (what: string, r: number[] | string): string =>
      typeof r === 'string'
        ? `| ${what} | ${r} | |`
        : `| ${what} | ${ms(quantile(r, 0.5))} | ${ms(Math.max(...r))} |`;
    const graph = await paint(`/graph?namespaces=${NS}`, '[data-testid="graph-edge"]');
    const overview = await paint('/overview', `[data-testid="namespace-${NS}"]`);
    console.log(
      `\n| first paint (navigation to first element, ${PAINTS} fresh pages) | p50 | max |\n|---|---|---|`,
    );
    console.log(row(`graph page, ${edges} edges`, graph));
    console.log(row('baseline: overview page', overview));
  } finally {
    await browser.close();
  }
} finally {
  await app.shutdown();
  rmSync(web, { recursive: true, force: true });
}
